"""Launchers for reduce.cu (sum, max, argmax over axes, an accuracy's hits) and index.cu (scatter-add).

The backend views its input as (outer, reduced, inner) and calls ``reduce3`` or ``argmax3``,
which pick the kernel by shape (see reduce.cu).
"""
import numpy as np

from . import launch, loader

SOURCE = "reduce.cu"
OPS = {"sum": 0, "max": 1}          # as in common.cuh
_i = np.int64


def _reduce_rows(x, n_rows, row_length, op):
    """op over consecutive segments of ``row_length`` elements of flat ``x``; returns (n_rows,)."""
    import cupy
    out = cupy.empty(n_rows, x.dtype)
    if launch.use_block_per_row(n_rows, row_length):
        grid, block = launch.long_rows(n_rows)
        kernel = "reduce_rows_block"
    else:
        grid, block = launch.rows(n_rows)
        kernel = "reduce_rows_warp"
    loader.function(SOURCE, kernel, x.dtype)(
        grid, block, (x, out, _i(n_rows), _i(row_length), _i(x.size), _i(OPS[op])))
    return out


def reduce_rows(x2, op):
    """op over the last axis of contiguous (rows, length) ``x2``; returns (rows,).

    A single long row is reduced in two passes: segments of launch.SEGMENT elements in
    parallel, then their results.
    """
    n_rows, length = x2.shape
    flat = x2.reshape(-1)
    while n_rows == 1 and length > launch.SEGMENT:
        segments = launch.ceil_div(length, launch.SEGMENT)
        flat = _reduce_rows(flat, segments, launch.SEGMENT, op)
        length = segments
    return _reduce_rows(flat, n_rows, length, op)


def reduce3(x3, op):
    """op over axis 1 of contiguous (outer, reduced, inner) ``x3``; returns (outer, inner).

    With few outputs the reduced axis is cut into chunks (launch.middle_chunk) so that enough blocks
    share the work; the chunks' results are then reduced the same way.
    """
    import cupy
    outer, reduced, inner = x3.shape
    if inner == 1:
        return reduce_rows(x3.reshape(outer, reduced), op).reshape(outer, 1)
    chunk = launch.middle_chunk(outer, reduced, inner)
    chunks = launch.ceil_div(reduced, chunk)
    out = cupy.empty((outer, chunks, inner) if chunks > 1 else (outer, inner), x3.dtype)
    grid, block = launch.middle(outer, chunks, inner)
    loader.function(SOURCE, "reduce_middle", x3.dtype)(
        grid, block, (x3, out, _i(outer), _i(reduced), _i(inner), _i(chunk), _i(OPS[op])))
    return reduce3(out, op) if chunks > 1 else out


#: argmax_hits: rows per warp before the count takes more blocks (one block, one launch, up to 8 * 32 rows) ...
HIT_ROWS_PER_WARP = 32
#: ... and the most blocks it takes (their counts are then added by one more launch)
HIT_MAX_BLOCKS = 64


def argmax_hits(x2, targets):
    """The hits of an accuracy (``Backend.argmax_matches``) of contiguous (rows, cols) ``x2`` against int64
    ``targets`` (rows,) or target rows of x2's shape and dtype: a 0-d int64 array on the device, no host sync.

    One launch of one block of row warps up to ``WARPS_PER_BLOCK * HIT_ROWS_PER_WARP`` rows; above that up to
    ``HIT_MAX_BLOCKS`` blocks, whose counts one more launch adds.
    """
    import cupy
    rows, cols = x2.shape
    blocks = min(max(launch.ceil_div(rows, launch.WARPS_PER_BLOCK * HIT_ROWS_PER_WARP), 1), HIT_MAX_BLOCKS)
    counts = cupy.empty(blocks, np.int64)
    kernel = "argmax_hits_labels" if targets.ndim == 1 else "argmax_hits_rows"
    loader.function(SOURCE, kernel, x2.dtype)(
        (blocks,), (launch.WARP_SIZE, launch.WARPS_PER_BLOCK), (x2, targets, counts, _i(rows), _i(cols)))
    total = counts if blocks == 1 else reduce_rows(counts.reshape(1, blocks), "sum")
    return total.reshape(())


def argmax3(x3):
    """Index of the first maximum along axis 1 of contiguous (outer, reduced, inner) ``x3``.

    One long flat array takes two passes: the first maximum of each segment of launch.SEGMENT
    elements (one warp each), then the first maximum among the segments.
    """
    import cupy
    outer, reduced, inner = x3.shape
    out = cupy.empty((outer, inner), np.int64)
    if outer == 1 and inner == 1 and reduced > launch.SEGMENT:
        segments = launch.ceil_div(reduced, launch.SEGMENT)
        values, indices = cupy.empty(segments, x3.dtype), cupy.empty(segments, np.int64)
        grid, block = launch.rows(segments)
        loader.function(SOURCE, "argmax_segments", x3.dtype)(
            grid, block, (x3, values, indices, _i(segments), _i(launch.SEGMENT), _i(reduced)))
        best_segment = argmax3(values.reshape(1, segments, 1)).reshape(1)
        return indices[best_segment].reshape(1, 1)          # a gather on the device: no host sync
    if inner == 1:
        grid, block = launch.rows(outer)
        loader.function(SOURCE, "argmax_rows", x3.dtype)(grid, block, (x3, out, _i(outer), _i(reduced)))
    else:
        grid, block = launch.grid_stride(outer * inner)
        loader.function(SOURCE, "argmax_middle", x3.dtype)(
            grid, block, (x3, out, _i(outer), _i(reduced), _i(inner)))
    return out


def scatter_add(target_flat, positions, values, deterministic=False):
    """target_flat[positions[k]] += values[k] for all k, accumulating repeats: with atomics, or
    (``deterministic``) over the stably sorted positions, each position's values added in order."""
    import cupy
    grid, block = launch.grid_stride(positions.size)
    if not deterministic:
        loader.function("index.cu", "scatter_add", target_flat.dtype)(
            grid, block, (target_flat, positions, values, _i(positions.size)))
        return
    order = cupy.argsort(positions).astype(np.int64, copy=False)     # CuPy's argsort is always stable
    sorted_positions = positions[order]
    loader.function("index.cu", "scatter_add_sorted", target_flat.dtype)(
        grid, block, (target_flat, sorted_positions, order, values, _i(positions.size)))
