"""CUDA kernels for the GPU (floor 1): our CUDA C sources and the Python that launches them.

Sources: ``common.cuh`` (warp reductions, NaN-aware max, the activation and reduction codes),
``elementwise.cuh`` (device functions of the elementwise operations), ``nn.cu`` (dense
epilogue and its backward, row softmax, softmax cross-entropy), ``reduce.cu`` (sum, max and
argmax over axes), ``index.cu`` (scatter-add), ``optim.cu`` (in-place optimizer updates) and
``gemm.cu`` (our tiled GEMM).

Python: ``loader`` (expand, compile once per process, NVRTC compile check), ``launch`` (launch
configurations, pure arithmetic), and one launcher module per source (``nn``, ``reduce``,
``optim``, ``gemm``) plus ``elementwise`` (CuPy ElementwiseKernels over our operations).
Nothing here imports CuPy at import time; it is imported when a kernel is first launched.
"""
