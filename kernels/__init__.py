"""Compute kernels (floor 1), installed as ``nnengine.kernels``.

Pure compute on arrays: nothing here knows of Tensor, autograd or layers, and
nothing here imports the rest of nnengine. ``cpu/`` holds the numba kernels,
``cuda/`` the CUDA C sources with their loader and launchers, and
``activation_codes.py`` the one table of fusable activations that both kernel
languages and the backends share. The numba backend ("cpu") and the CuPy backend
("cuda") in ``nnengine/backends`` call them.
"""
