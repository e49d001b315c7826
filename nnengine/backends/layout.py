"""Array-layout helpers shared by the numba and CuPy backends (numpy and CuPy arrays alike).

They use only methods both array types have (``flags``, ``copy``, ``transpose``, ``reshape``).
"""
import math

import numpy as np


_ZERO_ONE = {}


def zero_one(dtype):
    """(0, 1) as numpy scalars of ``dtype``, so numba kernels keep float32 arithmetic in float32 (made once per
    dtype: the backends ask on every call)."""
    pair = _ZERO_ONE.get(dtype)
    if pair is None:
        pair = _ZERO_ONE[dtype] = (np.dtype(dtype).type(0), np.dtype(dtype).type(1))
    return pair


def contiguous(x):
    """``x`` if it is C-contiguous, else a C-contiguous copy.

    Unlike ``numpy.ascontiguousarray``, a 0-d array stays 0-d.
    """
    return x if x.flags.c_contiguous else x.copy(order="C")


def kept_shape(shape, axes, keepdims):
    """The shape of a reduction over ``axes``: reduced axes dropped, or kept as 1 with ``keepdims``."""
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def three_axes(x, axes):
    """``x`` as a contiguous (outer, reduced, inner) array, the reduced ``axes`` in the middle.

    Adjacent reduced axes need no copy beyond contiguity; non-adjacent ones are first moved to
    the front (a transposed copy).
    """
    axes = tuple(sorted(axes))
    if axes and axes != tuple(range(axes[0], axes[-1] + 1)):
        kept = [a for a in range(x.ndim) if a not in axes]
        x = x.transpose(list(axes) + kept)
        axes = tuple(range(len(axes)))
    x = contiguous(x)
    first = axes[0] if axes else x.ndim
    outer = math.prod(x.shape[:first])
    reduced = math.prod(x.shape[a] for a in axes)
    inner = math.prod(x.shape[first + len(axes):])
    return x.reshape(outer, reduced, inner)


def gather_along_axis(target, index, values):
    """(outer, rows, inner) when ``target[index]`` selects whole slices along ONE axis by one integer array
    ``rows`` (every other part of the index a full slice) and ``values`` has exactly that result's shape
    and target's dtype, with target C-contiguous: then the scatter-add target[index] += values is, on the
    view (outer, n, inner), target[o, rows[k], i] += values[o, k, i]. None for any other index.
    """
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [a for a, p in enumerate(parts) if hasattr(p, "dtype") and hasattr(p, "shape")]
    if len(arrays) != 1 or not target.flags.c_contiguous or len(parts) > target.ndim:
        return None
    axis = arrays[0]
    rows = parts[axis]
    if rows.dtype.kind not in "iu" or rows.size == 0 or \
            any(not (isinstance(p, slice) and p == slice(None)) for a, p in enumerate(parts) if a != axis):
        return None
    shape = tuple(target.shape)
    if tuple(values.shape) != shape[:axis] + tuple(rows.shape) + shape[axis + 1:] or values.dtype != target.dtype:
        return None
    return math.prod(shape[:axis]), rows, math.prod(shape[axis + 1:])


def middle_broadcast(small_shape, out_shape):
    """(outer, mid, inner) when ``small_shape`` is ``out_shape`` with ONE axis of size 1 (not the last):
    an operand of that shape is then an (outer, inner) array broadcast along the middle of (outer, mid,
    inner). None otherwise."""
    if len(small_shape) != len(out_shape):
        return None
    ones = [a for a, (s, o) in enumerate(zip(small_shape, out_shape)) if s != o]
    if len(ones) != 1 or small_shape[ones[0]] != 1 or ones[0] == len(out_shape) - 1:
        return None
    axis = ones[0]
    return math.prod(out_shape[:axis]), out_shape[axis], math.prod(out_shape[axis + 1:])


def take_axis(x, index):
    """The axis when ``x[index]`` is full slices around ONE integer array (``x[:, rows, :]``, the im2col and
    Embedding gathers), else None. numpy's fancy indexing leaves such a result non-contiguous when the
    array is not the first part; ``np.take`` along that axis gives the same values contiguous."""
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [a for a, p in enumerate(parts) if isinstance(p, np.ndarray)]
    if len(arrays) != 1 or len(parts) > x.ndim or parts[arrays[0]].dtype.kind not in "iu":
        return None
    if any(not (isinstance(p, slice) and p == slice(None)) for a, p in enumerate(parts) if a != arrays[0]):
        return None
    return arrays[0]


def trailing_row(shape, out_shape):
    """True when an operand of ``shape`` is one row repeated over the leading axes of ``out_shape``."""
    core = tuple(shape)
    while core and core[0] == 1:
        core = core[1:]
    return 0 < len(core) < len(out_shape) and core == tuple(out_shape[-len(core):])
