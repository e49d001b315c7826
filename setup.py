"""Packaging for nnengine.

``kernels/`` sits at the top of the repository so every compute kernel is easy to
find, and it installs as ``nnengine.kernels`` (see docs/ARCHITECTURE.md).
"""
import os
import re
import subprocess
import sys
import tempfile

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

VERSION = re.search(r'__version__ = "([^"]+)"', open("nnengine/version.py", encoding="utf-8").read()).group(1)

KERNEL_PACKAGES = ["nnengine.kernels"] + [
    "nnengine.kernels." + name for name in find_packages(where="kernels")
]

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildAheadOfTimeKernels(build_ext):
    """Builds ``nnengine.kernels.cpu._aot`` (kernels/cpu/aot.py) with numba's pycc, or warns and goes on.

    The extension only makes a small model's process start faster (it runs without loading numba); without
    it every kernel runs on numba's JIT, with the same results. So a failed build (no C compiler, a numba
    without pycc) must not fail the install: it says why and leaves the extension out.
    """

    def build_extension(self, ext):
        target = self.get_ext_fullpath(ext.name)        # aot_build makes its folder
        with tempfile.TemporaryDirectory() as numba_cache:       # the build's JIT cache stays out of the tree
            command = [sys.executable, "-m", "kernels.cpu.aot_build", target]
            try:
                subprocess.run(command, cwd=HERE, env=dict(os.environ, NUMBA_CACHE_DIR=numba_cache), check=True)
            except (OSError, subprocess.CalledProcessError) as error:
                print(f"nnengine: the ahead-of-time kernels were not built ({error}); every kernel will run "
                      "on numba's JIT (same results, a slower start)", file=sys.stderr)


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
    # built by BuildAheadOfTimeKernels from the kernels' Python sources (no C sources of ours)
    # (optional: where the build fails, setuptools copies no file for it)
    ext_modules=[Extension("nnengine.kernels.cpu._aot", sources=[], optional=True)],
    cmdclass={"build_ext": BuildAheadOfTimeKernels},
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
