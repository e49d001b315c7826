"""Our own blocked, parallel matrix product: C = A @ B for C-contiguous float32/float64 A (M, K), B (K, N).

Blocking scheme (the numbers are in elements):

    for each column block of B and C, NC = 256 wide          (a C row block fits in L1)
      for each depth block, KC = 128 deep                    (the packed B panel, KC x NC, fits in L2)
        pack B[p0:p1, j0:j1] into a contiguous panel
        in parallel over row blocks of 4 rows of A:         (prange: threads share the panel)
          for each p in the depth block:
            load A[i..i+3, p] once (4 scalars) and the panel row B[p, j0:j1] once,
            and update 4 rows of C:  C[i+r, j] += A[i+r, p] * B[p, j]
The innermost loop runs over j, contiguous in the panel and in C, so LLVM
vectorises it into fused multiply-adds; each panel element loaded serves 4
rows of A. The constants are of the arrays' own dtype, so float32 stays float32.
Rows left over after the 4-row blocks take a 1-row loop.
"""
import numpy as np
from .jit import njit, prange

NC = 256
KC = 128
ROWS = 4


@njit(cache=True, error_model="numpy")
def _pack(b, p0, p1, j0, j1, panel):
    for p in range(p1 - p0):
        for j in range(j1 - j0):
            panel[p, j] = b[p0 + p, j0 + j]


@njit(cache=True, error_model="numpy", parallel=True)
def _update_panel(a, panel, out, p0, depth, j0, width):
    m = a.shape[0]
    blocks = m // ROWS
    for block in prange(blocks):
        i = block * ROWS
        c0, c1, c2, c3 = out[i, j0:j0 + width], out[i + 1, j0:j0 + width], out[i + 2, j0:j0 + width], \
            out[i + 3, j0:j0 + width]
        for p in range(depth):
            a0, a1, a2, a3 = a[i, p0 + p], a[i + 1, p0 + p], a[i + 2, p0 + p], a[i + 3, p0 + p]
            b = panel[p]
            for j in range(width):
                bj = b[j]
                c0[j] += a0 * bj
                c1[j] += a1 * bj
                c2[j] += a2 * bj
                c3[j] += a3 * bj
    for i in range(blocks * ROWS, m):
        c = out[i, j0:j0 + width]
        for p in range(depth):
            ai = a[i, p0 + p]
            b = panel[p]
            for j in range(width):
                c[j] += ai * b[j]


@njit(cache=True, error_model="numpy")
def gemm(a, b, out):
    """out = a @ b with the blocking above; ``out`` (M, N) is overwritten."""
    k, n = b.shape
    out[:] = 0
    panel = np.empty((KC, NC), dtype=b.dtype)
    for j0 in range(0, n, NC):
        width = min(NC, n - j0)
        for p0 in range(0, k, KC):
            depth = min(KC, k - p0)
            _pack(b, p0, p0 + depth, j0, j0 + width, panel)
            _update_panel(a, panel, out, p0, depth, j0, width)
