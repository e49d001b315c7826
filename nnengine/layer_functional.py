"""The functional ops behind the image and normalization layers: windows (im2col, pooling) and normalization.

``nnengine.functional`` holds the general ops; these are the fused ones that Conv, pooling,
BatchNormalization and LayerNormalization are built from, each one backend primitive forward and one
backward (``Backend.window_gather``, ``max_pool``, ``average_pool``, ``moments``, ``normalize`` and
their backwards). They check their arguments like every public op and then apply the ``Function`` of
``nnengine.ops`` that holds the math.

Windows are described by ``positions``, an int64 Tensor of p * k entries: entry i * k + j is the flat
position (row * width + column) of element j of output i's window in an input of s positions, or s
where that element falls in the padding. ``conv_layers.window_positions`` makes them from Keras's
geometry; ``index_constant`` uploads such a host array once per device and shares it, so that a
compiled step reads it as a constant instead of refusing it as state left over.
"""
import numpy as np

from .autograd import _common_backend
from .backends.constants import shared_array
from .dtypes import is_float_dtype
from .ops import AveragePool, GatherWindows, MaxPool, Moments, Normalize, ScatterWindows
from .tensor_base import TensorBase

__all__ = ["index_constant", "host_constant", "gather_windows", "scatter_windows", "max_pool", "average_pool",
           "moments", "normalize"]


def index_constant(like, key, make):
    """A read-only int64 Tensor on ``like``'s device holding ``make()`` (a host array), uploaded once per
    device and hashable ``key`` and shared by every caller with the same key."""
    return host_constant(like, ("index", key), make, np.int64)


def host_constant(like, key, make, dtype):
    """A read-only Tensor of ``dtype`` on ``like``'s device holding ``make()`` (a host array that depends on
    shapes only), uploaded once per device and hashable ``key``, and shared (a compiled step reads it as a
    constant)."""
    backend = like._backend
    array = shared_array(backend, key, lambda: np.ascontiguousarray(make(), dtype=dtype))
    return type(like)._make(array, backend)


#: window tables already checked against an input size: id(array) -> (the array, kept alive; the size)
_CHECKED = {}
_MAX_CHECKED = 256


def _check_positions(op, positions, size, window):
    """Every entry of ``positions`` in [0, size] (size: the padding), and every window holding at least one
    real position: checked on the host once per table and input size (a kernel trusts them)."""
    data = positions._data
    known = _CHECKED.get(id(data))
    if known is not None and known[0] is data and known[1] == size:
        return
    backend = positions._backend
    host = type(backend).to_numpy(backend, data)   # the class's method: a constant's check, not a step's read
    if host.size and (host.min() < 0 or host.max() > size):
        raise ValueError(f"{op}: positions must lie in [0, {size}] for inputs of {size} positions ({size} marks "
                         f"the padding), got values from {host.min()} to {host.max()}")
    if window is not None and host.size and (host.reshape(-1, window) == size).all(axis=1).any():
        raise ValueError(f"{op}: a window of {window} positions lies wholly in the padding")
    if len(_CHECKED) >= _MAX_CHECKED:
        _CHECKED.clear()
    _CHECKED[id(data)] = (data, size)


def _check_windows(op, x, positions, window, size=None):
    """x (n, s, c) floating; positions an int64 Tensor of whole windows on x's device, each entry checked against
    ``size`` (the positions' range; by default x's s, the positions they read)."""
    if not isinstance(x, TensorBase) or not isinstance(positions, TensorBase):
        raise TypeError(f"{op}: x and positions must be Tensors, got {type(x).__name__} and "
                        f"{type(positions).__name__}")
    if not is_float_dtype(x.dtype):
        raise TypeError(f"{op}: x must be floating (float32 or float64), got {x.dtype}")
    if x.ndim != 3:
        raise ValueError(f"{op}: x must be (batch, positions, channels), got shape {x.shape}")
    if positions.dtype != np.int64 or positions.ndim != 1:
        raise TypeError(f"{op}: positions must be a 1-D int64 Tensor, got {positions.dtype} with shape "
                        f"{positions.shape}")
    if window is not None and (not isinstance(window, (int, np.integer)) or window < 1 or positions.shape[0] % window):
        raise ValueError(f"{op}: {positions.shape[0]} positions do not make whole windows of {window!r}")
    _common_backend(op, [x, positions])
    _check_positions(op, positions, x.shape[1] if size is None else size, window)


def gather_windows(x, positions, fill=0.0):
    """im2col: (n, p * k, c) with row i = x[:, positions[i]], ``fill`` where positions[i] is the padding."""
    _check_windows("gather_windows", x, positions, None)
    if not isinstance(fill, (int, float, np.integer, np.floating)) or isinstance(fill, bool):
        raise TypeError(f"gather_windows: fill must be a number, got {type(fill).__name__} {fill!r}")
    return GatherWindows.apply(x, positions, fill=float(fill))


def scatter_windows(x, positions, size):
    """col2im: (n, size, c) with every x[:, i] added at position positions[i] (dropped where it is ``size``, the
    padding); the backward of ``gather_windows``, and the forward of a transposed convolution."""
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"scatter_windows: size must be a positive int, got {size!r}")
    _check_windows("scatter_windows", x, positions, None, int(size))
    if positions.shape != (x.shape[1],):
        raise ValueError(f"scatter_windows: positions must hold one position per row of x's {x.shape[1]}, got "
                         f"shape {positions.shape}")
    return ScatterWindows.apply(x, positions, size=int(size))


def max_pool(x, positions, window):
    """The maximum of each window of ``window`` elements: (n, p, c). The gradient goes to the first
    element holding each maximum, as in Keras."""
    _check_windows("max_pool", x, positions, window)
    return MaxPool.apply(x, positions, window=int(window))


def average_pool(x, positions, window):
    """The mean of each window's real elements (padding left out of the count): (n, p, c)."""
    _check_windows("average_pool", x, positions, window)
    return AveragePool.apply(x, positions, window=int(window))


def _check_matrix(op, x, axis):
    if not isinstance(x, TensorBase) or not is_float_dtype(x.dtype) or x.ndim != 2:
        raise TypeError(f"{op}: x must be a 2-D floating Tensor, got "
                        f"{getattr(x, 'dtype', type(x).__name__)} with shape {getattr(x, 'shape', None)}")
    if axis not in (0, 1):
        raise ValueError(f"{op}: axis must be 0 (per column) or 1 (per row), got {axis!r}")


def moments(x, axis):
    """(mean, biased variance) of the 2-D ``x`` over ``axis`` as two Tensors of x's other size, computed
    in one pass with a stable formula. They carry no gradient (``normalize`` differentiates through
    them itself)."""
    _check_matrix("moments", x, axis)
    both = Moments.apply(x.detach(), axis=axis)
    return both[0], both[1]


def normalize(x, mean, variance, gamma, beta, epsilon, axis, through_statistics):
    """gamma * (x - mean) / sqrt(variance + epsilon) + beta on the 2-D ``x`` (m, c).

    ``mean`` and ``variance`` hold one value per column (``axis`` 0) or per row (``axis`` 1);
    ``gamma``/``beta`` are (c,) Tensors or None. ``through_statistics``: the statistics are x's own
    (``moments(x, axis)``), so the gradient also flows through them, as batch normalization in
    training and layer normalization need; otherwise they are constants (moving statistics).
    """
    _check_matrix("normalize", x, axis)
    size = x.shape[1 - axis]
    for name, value, expected in (("mean", mean, size), ("variance", variance, size),
                                  ("gamma", gamma, x.shape[1]), ("beta", beta, x.shape[1])):
        if value is None and name in ("gamma", "beta"):
            continue
        if not isinstance(value, TensorBase) or value.shape != (expected,) or value.dtype != x.dtype:
            raise ValueError(f"normalize: {name} must be a {x.dtype} Tensor of shape ({expected},), got "
                             f"{getattr(value, 'dtype', type(value).__name__)} {getattr(value, 'shape', '')}")
    if through_statistics and (mean.requires_grad or variance.requires_grad):
        raise ValueError("normalize: with through_statistics the statistics must be x's own moments, "
                         "without a gradient of their own")
    _common_backend("normalize", [t for t in (x, mean, variance, gamma, beta) if t is not None])
    if not epsilon > 0:
        raise ValueError(f"normalize: epsilon must be > 0, got {epsilon!r}")
    return Normalize.apply(x, mean, variance, gamma, beta, epsilon=float(epsilon), axis=axis,
                           through_statistics=bool(through_statistics))
