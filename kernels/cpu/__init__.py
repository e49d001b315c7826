"""numba kernels for the CPU (floor 1): pure compute on numpy arrays.

Every kernel is a module-level ``@njit(cache=True)`` function, so numba compiles
it once per dtype signature and keeps the machine code on disk between
processes. Kernels take contiguous arrays (the backend makes them so) and write
into an ``out`` array they are given; they know nothing of Tensor or autograd.

Modules: ``elementwise`` (unary, binary with broadcasting, comparisons, where),
``reduce`` (sum, max, argmax, index_add), ``gemm`` (our blocked parallel matrix
product), ``nn`` (fused dense, softmax, softmax cross-entropy), ``optim``
(in-place SGD, Adam, RMSprop, Adagrad) and ``config`` (threads and thresholds).
"""
