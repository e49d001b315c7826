"""Packaging for nnengine.

``kernels/`` sits at the top of the repository so every compute kernel is easy to
find, and it installs as ``nnengine.kernels`` (see docs/ARCHITECTURE.md).
"""
import re

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "([^"]+)"', open("nnengine/version.py", encoding="utf-8").read()).group(1)

KERNEL_PACKAGES = ["nnengine.kernels"] + [
    "nnengine.kernels." + name for name in find_packages(where="kernels")
]

setup(
    name="nnengine",
    version=VERSION,
    description="A from-scratch neural-network engine: autograd, numba/CuPy kernels, a Keras-style API.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["nnengine", "nnengine.*"]) + KERNEL_PACKAGES,
    package_dir={"nnengine.kernels": "kernels"},
    package_data={"nnengine.kernels.cuda": ["*.cu", "*.cuh"]},
    install_requires=["numpy>=1.24", "numba>=0.59", "h5py>=3.8"],
    extras_require={
        # mpi4py and MPICH (a wheel: no system MPI needed) so that the tests can run the 2-process checks of
        # nnengine.distributed under mpiexec
        "dev": ["pytest>=7", "hypothesis>=6.80", "pytest-cov>=4", "mpi4py>=4", "mpich>=4"],
        # data-parallel training over MPI (nnengine.distributed); bring your cluster's MPI or MPICH's wheel
        "mpi": ["mpi4py>=4", "mpich>=4"],
        # the GPU backend: CuPy built for the machine's CUDA major version
        "cuda12": ["cupy-cuda12x>=13"],
        "cuda13": ["cupy-cuda13x>=14"],
        "gpu": ["cupy-cuda12x>=13"],           # the older name of cuda12
        # CI's compile check of every CUDA source for sm_90 through NVRTC, on machines without a GPU
        "cuda-check": ["cupy-cuda13x==14.2.0", "nvidia-cuda-nvrtc==13.0.*", "nvidia-cuda-runtime==13.0.*"],
        # examples/digits.py: scikit-learn's bundled digits and a matplotlib chart; never needed by nnengine
        "examples": ["scikit-learn>=1.2", "matplotlib>=3.6"],
    },
)
