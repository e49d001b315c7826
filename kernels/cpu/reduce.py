"""Reductions over a block of axes, and index_add.

The backend moves the reduced axes next to each other and views the input as
(outer, reduced, inner); the kernels reduce the middle axis:

* ``*_middle``: inner > 1. The inner axis is contiguous, so each step of the
  reduced axis is a vectorised sweep over a row of ``inner`` values.
* ``*_last``:   inner == 1 (the reduced axis is the last one). Sums accumulate
  in 16 independent lanes, so the loop vectorises and rounding errors stay small;
  float32 sums accumulate in float64 lanes for accuracy.
"""
import numpy as np
from .jit import njit

LANES = 16


@njit(cache=True, error_model="numpy")
def sum_middle(x, out):
    """out[a, b] = sum_r x[a, r, b] for x (A, R, B), out (A, B) zero-filled by the caller."""
    outer, reduced, inner = x.shape
    for a in range(outer):
        out_a = out[a]
        for r in range(reduced):
            x_ar = x[a, r]
            for b in range(inner):
                out_a[b] += x_ar[b]


@njit(cache=True, error_model="numpy")
def sum_last(x, out):
    """out[a] = sum_r x[a, r] for x (A, R), in float64 lanes."""
    outer, reduced = x.shape
    lanes = np.zeros(LANES, np.float64)
    for a in range(outer):
        lanes[:] = 0.0
        row = x[a]
        blocks = reduced // LANES
        for block in range(blocks):
            base = block * LANES
            for lane in range(LANES):
                lanes[lane] += row[base + lane]
        total = 0.0
        for r in range(blocks * LANES, reduced):
            total += row[r]
        out[a] = total + lanes.sum()


@njit(cache=True, error_model="numpy")
def max_middle(x, out):
    """out[a, b] = max_r x[a, r, b] (NaN propagates), for x (A, R, B) with R >= 1."""
    outer, reduced, inner = x.shape
    for a in range(outer):
        out_a = out[a]
        out_a[:] = x[a, 0]
        for r in range(1, reduced):
            x_ar = x[a, r]
            for b in range(inner):
                v = x_ar[b]
                if v > out_a[b] or v != v:
                    out_a[b] = v if out_a[b] == out_a[b] else out_a[b]


@njit(cache=True, error_model="numpy")
def max_last(x, out):
    """out[a] = max_r x[a, r] (the first NaN if any, as numpy), with 16 lanes so the loop vectorises."""
    outer, reduced = x.shape
    for a in range(outer):
        row = x[a]
        best = row[0]
        blocks = reduced // LANES
        if blocks > 0:
            lanes = row[:LANES].copy()
            for block in range(1, blocks):
                base = block * LANES
                for lane in range(LANES):
                    v = row[base + lane]
                    lanes[lane] = v if v > lanes[lane] else lanes[lane]
            for lane in range(LANES):
                best = lanes[lane] if lanes[lane] > best else best
        for r in range(blocks * LANES, reduced):
            best = row[r] if row[r] > best else best
        for r in range(reduced):          # comparisons ignore NaN, so look for one separately
            if row[r] != row[r]:
                best = row[r]
                break
        out[a] = best


@njit(cache=True, error_model="numpy")
def argmax_middle(x, out):
    """out[a, b] = the first r of the largest x[a, r, b] (the first NaN if any), as numpy's argmax."""
    outer, reduced, inner = x.shape
    for a in range(outer):
        for b in range(inner):
            best, index = x[a, 0, b], 0
            for r in range(1, reduced):
                v = x[a, r, b]
                if best != best:
                    break
                if v > best or v != v:
                    best, index = v, r
            out[a, b] = index


@njit(cache=True, error_model="numpy")
def row_argmax(row):
    """The index of the first maximum of the 1-D ``row``; the first NaN wins, as in numpy's argmax."""
    best, index = row[0], 0
    for r in range(1, row.shape[0]):
        v = row[r]
        if best != best:
            break
        if v > best or v != v:
            best, index = v, r
    return index


@njit(cache=True, error_model="numpy")
def argmax_last(x, out):
    """out[a] = argmax_r x[a, r] (first maximum; the first NaN wins, as numpy)."""
    for a in range(x.shape[0]):
        out[a] = row_argmax(x[a])


@njit(cache=True, error_model="numpy")
def argmax_matches_labels(x, labels, out):
    """out[0] = how many rows a of x (rows, classes) have row_argmax(x[a]) == labels[a]: the hits of a sparse
    categorical accuracy (labels int64)."""
    hits = 0
    for a in range(x.shape[0]):
        if row_argmax(x[a]) == labels[a]:
            hits += 1
    out[0] = hits


@njit(cache=True, error_model="numpy")
def argmax_matches_rows(x, targets, out):
    """out[0] = how many rows a of x and targets (both rows, classes) have the same row_argmax: the hits of a
    categorical accuracy (one-hot or soft targets)."""
    hits = 0
    for a in range(x.shape[0]):
        if row_argmax(x[a]) == row_argmax(targets[a]):
            hits += 1
    out[0] = hits


@njit(cache=True, error_model="numpy")
def index_add_along_axis(target3, rows, values3):
    """target3[o, rows[k], i] += values3[o, k, i] for target3 (outer, n_rows, inner), values3 (outer, m, inner):
    the backward of a gather of whole rows along one axis (im2col's and Embedding's), repeats accumulating."""
    outer, n_rows, inner = target3.shape
    for o in range(outer):
        for k in range(rows.size):
            row = rows[k] % n_rows                  # numpy's negative indices count from the end
            for i in range(inner):
                target3[o, row, i] += values3[o, k, i]


@njit(cache=True, error_model="numpy")
def index_add(target, positions, values):
    """target[positions[i]] += values[i] over flat arrays; repeated positions accumulate."""
    for i in range(positions.size):
        target[positions[i]] += values[i]


#: numpy's pairwise summation: blocks of up to this many elements are summed in 8 lanes, larger ones split
_PAIRWISE_BLOCK = 128


@njit(cache=True, error_model="numpy")
def _pairwise_block(x, start, n):
    """numpy's sum of a block of at most ``_PAIRWISE_BLOCK`` elements: in order below 8, else in 8 lanes."""
    if n < 8:
        total = x.dtype.type(0)
        for i in range(start, start + n):
            total += x[i]
        return total
    lanes = x[start:start + 8].copy()
    i = 8
    while i < n - n % 8:
        for lane in range(8):
            lanes[lane] += x[start + i + lane]
        i += 8
    total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    for j in range(start + i, start + n):
        total += x[j]
    return total


@njit(cache=True, error_model="numpy")
def numpy_total(x):
    """The total of the 1-D float array ``x`` summed as ``np.add.reduce`` sums it (0 + pairwise sum, in x's
    dtype), so that numba code gives bitwise the backend's total of a small array (numba's own ``sum``
    adds in order). ``tests/test_lowering.py`` checks it against numpy over sizes."""
    # numpy recurses: sum(a[:h]) + sum(a[h:]) with h = n // 2 rounded down to a multiple of 8, down to blocks.
    # The same tree, walked with a stack of tasks (numba's disk cache cannot link recursive functions into
    # callers): a task is a segment to sum (start, n >= 0), or "add the last two sums" (n == -1).
    starts, sizes = np.empty(64, np.int64), np.empty(64, np.int64)
    sums = np.empty(64, x.dtype)
    tasks, held = 1, 0
    starts[0], sizes[0] = 0, x.size
    while tasks:
        tasks -= 1
        start, n = starts[tasks], sizes[tasks]
        if n == -1:
            held -= 1
            sums[held - 1] = sums[held - 1] + sums[held]
        elif n <= _PAIRWISE_BLOCK:
            sums[held] = _pairwise_block(x, start, n)
            held += 1
        else:
            half = n // 2
            half -= half % 8
            starts[tasks], sizes[tasks] = 0, -1                  # runs last: left + right
            starts[tasks + 1], sizes[tasks + 1] = start + half, n - half
            starts[tasks + 2], sizes[tasks + 2] = start, half    # runs first
            tasks += 3
    return x.dtype.type(0) + sums[0]
