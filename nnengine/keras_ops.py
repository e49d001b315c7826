"""``nnengine.keras.ops``: the common ``keras.ops`` functions over nnengine Tensors.

A custom loss or metric written with ``keras.ops`` runs unchanged with only the import changed::

    from nnengine.keras import ops

    def scaled_mse(y_true, y_pred):
        return ops.mean(ops.square(y_pred - y_true), axis=-1) * 2.0

Every function accepts Tensors, numpy arrays and Python numbers, returns a Tensor, and is differentiable
where the math is (each is one or a few of nnengine's functional ops, so autograd derives its gradient).
"""
import numpy as np

from . import functional as F
from .einsum import einsum
from .layer_base import remember_host_values
from .tensor import Tensor, ones, zeros

__all__ = ["convert_to_tensor", "cast", "add", "subtract", "multiply", "divide", "negative", "power", "square",
           "sqrt", "exp", "log", "abs", "absolute", "maximum", "minimum", "clip", "where", "matmul", "mean", "sum",
           "max", "min", "argmax", "var", "std", "reshape", "transpose", "squeeze", "expand_dims", "concatenate", "stack",
           "softmax",
           "log_softmax", "relu", "sigmoid", "tanh", "equal", "not_equal", "greater", "greater_equal", "less",
           "less_equal", "ones_like", "zeros_like", "shape", "arange", "einsum"]


def convert_to_tensor(x, dtype=None):
    """``x`` as a Tensor (unchanged when it already is one of ``dtype``)."""
    if isinstance(x, Tensor):
        return x if dtype is None or x.dtype == np.dtype(dtype) else x.astype(dtype)
    return Tensor(x, dtype=dtype)         # Python numbers and lists become float32, numpy arrays keep theirs


def _float(x):
    """A float Tensor of ``x`` (ints become float32, as Keras's float ops do)."""
    x = convert_to_tensor(x)
    return x if x.dtype.kind == "f" else x.astype("float32")


def cast(x, dtype):
    """``x`` converted to ``dtype``."""
    return convert_to_tensor(x).astype(dtype)


def add(a, b):
    """a + b."""
    return F.add(a, b)


def subtract(a, b):
    """a - b."""
    return F.sub(a, b)


def multiply(a, b):
    """a * b."""
    return F.mul(a, b)


def divide(a, b):
    """a / b."""
    return F.div(a, b)


def negative(x):
    """-x."""
    return F.neg(convert_to_tensor(x))


def power(a, b):
    """a ** b."""
    return F.power(a, b)


def square(x):
    """x * x."""
    x = convert_to_tensor(x)
    return x * x


def sqrt(x):
    """The square root."""
    return F.sqrt(_float(x))


def exp(x):
    """e ** x."""
    return F.exp(_float(x))


def log(x):
    """The natural logarithm."""
    return F.log(_float(x))


def abs(x):  # noqa: A001 - keras.ops's name
    """|x| (``Tensor.abs``)."""
    return convert_to_tensor(x).abs()


absolute = abs


def maximum(a, b):
    """The elementwise maximum."""
    return F.maximum(a, b)


def minimum(a, b):
    """The elementwise minimum."""
    return F.minimum(a, b)


def clip(x, x_min, x_max):
    """x clamped to [x_min, x_max]."""
    return F.clip(_float(x), x_min, x_max)


def where(condition, x1, x2):
    """x1 where ``condition`` holds, else x2."""
    return F.where(convert_to_tensor(condition), x1, x2)


def matmul(a, b):
    """The matrix product."""
    return F.matmul(convert_to_tensor(a), convert_to_tensor(b))


def mean(x, axis=None, keepdims=False):
    """The mean over ``axis`` (all axes when None)."""
    return F.mean(_float(x), axis=axis, keepdims=keepdims)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - keras.ops's name
    """The sum over ``axis`` (all axes when None)."""
    return F.sum(convert_to_tensor(x), axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001 - keras.ops's name
    """The maximum over ``axis``."""
    return F.max(convert_to_tensor(x), axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001 - keras.ops's name
    """The minimum over ``axis`` (``Tensor.min``)."""
    return convert_to_tensor(x).min(axis, keepdims)


def argmax(x, axis=-1):
    """The index of the maximum along ``axis``."""
    return F.argmax(convert_to_tensor(x), axis=axis)


def var(x, axis=None, keepdims=False):
    """The (biased) variance over ``axis`` (``Tensor.var``)."""
    return _float(x).var(axis, keepdims)


def std(x, axis=None, keepdims=False):
    """The standard deviation over ``axis`` (``Tensor.std``)."""
    return _float(x).std(axis, keepdims)


def reshape(x, new_shape):
    """``x`` with shape ``new_shape`` (one entry may be -1)."""
    return F.reshape(convert_to_tensor(x), tuple(new_shape) if not isinstance(new_shape, int) else (new_shape,))


def transpose(x, axes=None):
    """The axes of ``x`` permuted (reversed when None)."""
    return F.transpose(convert_to_tensor(x), axes)


def squeeze(x, axis=None):
    """``x`` without its size-1 axes (only ``axis`` when given; ``Tensor.squeeze``)."""
    return convert_to_tensor(x).squeeze(axis)


def expand_dims(x, axis):
    """``x`` with a new size-1 axis at ``axis`` (``Tensor.expand_dims``)."""
    return convert_to_tensor(x).expand_dims(axis)


def concatenate(xs, axis=0):
    """The tensors joined along ``axis``."""
    return F.concatenate([convert_to_tensor(x) for x in xs], axis=axis)


def stack(xs, axis=0):
    """The tensors (all of one shape) stacked along a new axis ``axis``."""
    return F.concatenate([convert_to_tensor(x).expand_dims(axis) for x in xs], axis=axis)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, computed stably."""
    return F.softmax(_float(x), axis=axis)


def log_softmax(x, axis=-1):
    """x - log(sum(exp(x))) along ``axis``, computed stably."""
    return F.log_softmax(_float(x), axis=axis)


def relu(x):
    """max(x, 0)."""
    return F.relu(_float(x))


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return F.sigmoid(_float(x))


def tanh(x):
    """The hyperbolic tangent."""
    return F.tanh(_float(x))


def _comparison(name):
    def compare(a, b):
        a = convert_to_tensor(a)
        return F.compare(name, a, b)
    compare.__name__ = name
    compare.__doc__ = f"The elementwise comparison {name}, a bool Tensor."
    return compare


equal, not_equal = _comparison("equal"), _comparison("not_equal")
greater, greater_equal = _comparison("greater"), _comparison("greater_equal")
less, less_equal = _comparison("less"), _comparison("less_equal")


def ones_like(x):
    """Ones of ``x``'s shape and dtype, on its device."""
    x = convert_to_tensor(x)
    return ones(x.shape, dtype=x.dtype, device=x.device)


def zeros_like(x):
    """Zeros of ``x``'s shape and dtype, on its device."""
    x = convert_to_tensor(x)
    return zeros(x.shape, dtype=x.dtype, device=x.device)


def shape(x):
    """The shape of ``x`` as a tuple of ints (every size is known when a layer runs on data)."""
    return tuple(x.shape) if isinstance(x, Tensor) else tuple(np.shape(x))


def arange(start, stop=None, step=1, dtype=None):
    """[start, start + step, ...) up to ``stop`` (from 0 to ``start`` when ``stop`` is None), as Keras makes it:
    int32 when every bound is an int and no ``dtype`` is given, else float32 (or ``dtype``)."""
    bounds = [value for value in (start, stop, step) if value is not None]
    integral = all(isinstance(value, (int, np.integer)) and not isinstance(value, bool) for value in bounds)
    dtype = dtype or ("int32" if integral else "float32")
    values = (np.arange(start, stop, step) if stop is not None else np.arange(start, step=step)).astype(dtype)
    values.flags.writeable = False
    return remember_host_values(Tensor(values, dtype=dtype), values)    # an Embedding checks them on the host
