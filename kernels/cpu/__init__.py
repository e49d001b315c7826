"""numba kernels for the CPU (floor 1): pure compute on numpy arrays.

Every kernel is a module-level ``@njit(cache=True, error_model="numpy")``
function, so numba compiles it once per dtype signature and keeps the machine
code on disk between processes. ``error_model="numpy"`` gives IEEE semantics
(x / 0 is inf, as in numpy) instead of Python's ZeroDivisionError check, whose
per-element branch stops LLVM from vectorising any loop that divides (measured:
an Adam update over 1M floats took 4.3 ms with the check and 1.2 ms without).
Kernels take contiguous arrays (the backend makes them so) and write
into an ``out`` array they are given; they know nothing of Tensor or autograd.

Modules: ``elementwise`` (unary, binary with broadcasting, comparisons, where),
``reduce`` (sum, max, argmax, index_add), ``gemm`` (our blocked parallel matrix
product), ``nn`` (fused dense, softmax, softmax cross-entropy), ``optim``
(in-place SGD, Adam, RMSprop, Adagrad) and ``config`` (threads and thresholds).
"""
