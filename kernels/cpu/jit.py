"""numba's decorators for the kernel modules, imported once nnengine's threading-layer default is in place.

Every numba kernel module takes ``njit`` and ``prange`` from here, so whichever of them is imported first
sets numba's threading layer to "workqueue" (unless ``NUMBA_THREADING_LAYER`` chooses one) before any parallel
kernel can run; ``config.py`` explains the choice. This is the only place in ``kernels/cpu`` where the kernels
import numba: ``config``, ``op_codes``, ``blas_library`` and ``aot`` do not, so that a process served by the
ahead-of-time kernels (``aot.py``) never loads numba.
"""
import os

import numba
from numba import njit, prange, types

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

__all__ = ["njit", "prange", "types"]
