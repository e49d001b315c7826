"""Array-layout helpers shared by the numba and CuPy backends (numpy and CuPy arrays alike).

They use only methods both array types have (``flags``, ``copy``, ``transpose``, ``reshape``).
"""
import math


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
