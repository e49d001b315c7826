"""Compute kernels (floor 1), installed as ``nnengine.kernels``.

Pure compute on arrays: nothing here knows of Tensor, autograd or layers.
``cpu/`` holds the numba kernels and ``cuda/`` the CUDA C sources with their
loader; the numba and CuPy backends in ``nnengine/backends`` call them. Until
those backends land, every device is served by the numpy reference backend.
"""
