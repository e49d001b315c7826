"""The Tensor: an n-dimensional array on a device, with reverse-mode autograd.

``TensorBase`` (tensor_base.py) holds the data and the autograd state; ``Tensor`` adds the
operators and methods, each a call into ``nnengine.functional`` (the checked op layer), and
``backward``. The dtype rules are in ``nnengine.dtypes``.
"""
import numbers

from . import autograd
from . import functional as F
from .backends import get_backend
from .device import get_default_device
from .dtypes import DEFAULT_FLOAT, to_supported_dtype
from .tensor_base import TensorBase


class Tensor(TensorBase):
    """An n-dimensional array on a device that can record operations for autograd.

    Args:
        data: a Python scalar, a (nested) list, a numpy array or a Tensor (copied).
        dtype: float32, float64, int32, int64 or bool; by default see ``nnengine.dtypes``.
        device: "cpu", "numpy", "cuda", "cuda:N"; by default ``get_default_device()``.
        requires_grad: record operations on this tensor so ``backward`` can fill ``.grad``.
    """

    __slots__ = ()

    @property
    def T(self):
        """The tensor with its axes reversed (numpy's ``.T``)."""
        return self.transpose()

    def to(self, device):
        """Return this tensor on ``device`` (itself if already there); differentiable."""
        target = get_backend(device)
        if target is self._backend:
            return self
        return F.to_device(self, target)

    def astype(self, dtype):
        """Return this tensor converted to ``dtype``; differentiable between float dtypes."""
        return F.astype(self, to_supported_dtype(dtype))

    def backward(self, grad=None, retain_graph=False):
        """Accumulate gradients of this tensor into the ``.grad`` of every leaf below it.

        See ``nnengine.autograd.backward`` for the rules.
        """
        autograd.backward(self, grad, retain_graph)

    # ------------------------------------------------------------------
    # Operators
    # ------------------------------------------------------------------
    def __add__(self, other):
        return F.add(self, other)

    def __radd__(self, other):
        return F.add(other, self)

    def __sub__(self, other):
        return F.sub(self, other)

    def __rsub__(self, other):
        return F.sub(other, self)

    def __mul__(self, other):
        return F.mul(self, other)

    def __rmul__(self, other):
        return F.mul(other, self)

    def __truediv__(self, other):
        return F.div(self, other)

    def __rtruediv__(self, other):
        return F.div(other, self)

    def __pow__(self, other):
        return F.power(self, other)

    def __rpow__(self, other):
        return F.power(other, self)

    def __matmul__(self, other):
        return F.matmul(self, other)

    def __rmatmul__(self, other):
        return F.matmul(other, self)

    def __neg__(self):
        return F.neg(self)

    def __pos__(self):
        return self

    def __eq__(self, other):
        return F.compare("equal", self, other)

    def __ne__(self, other):
        return F.compare("not_equal", self, other)

    def __lt__(self, other):
        return F.compare("less", self, other)

    def __le__(self, other):
        return F.compare("less_equal", self, other)

    def __gt__(self, other):
        return F.compare("greater", self, other)

    def __ge__(self, other):
        return F.compare("greater_equal", self, other)

    # Tensors define == elementwise, so hashing goes by identity, as for any object.
    __hash__ = object.__hash__

    def __getitem__(self, index):
        return F.getitem(self, index)

    # ------------------------------------------------------------------
    # Methods mirroring the functional ops
    # ------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        """Sum over ``axis`` (None: all axes; an int or a tuple)."""
        return F.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        """Arithmetic mean over ``axis`` (None: all axes; an int or a tuple)."""
        return F.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        """Maximum over ``axis``; the gradient is shared equally between tied maxima."""
        return F.max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        """Minimum over ``axis``: -max(-x), so ties share the gradient as max's do."""
        return F.neg(F.max(F.neg(self), axis, keepdims))

    def abs(self):
        """|x| as max(x, -x): the gradient is the sign of x (split between the two at 0)."""
        return F.maximum(self, F.neg(self))

    def var(self, axis=None, keepdims=False):
        """The (biased) variance over ``axis``: mean((x - mean(x))^2), as numpy computes it."""
        centred = self - F.mean(self, axis, True)
        return F.mean(centred * centred, axis, keepdims)

    def std(self, axis=None, keepdims=False):
        """The standard deviation over ``axis``: sqrt(var)."""
        return F.sqrt(self.var(axis, keepdims))

    def squeeze(self, axis=None):
        """The same data without size-1 axes (only ``axis``, an int or tuple, when given)."""
        if axis is None:
            return F.reshape(self, tuple(d for d in self.shape if d != 1))
        axes = {a % self.ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
        if any(self.shape[a] != 1 for a in axes):
            raise ValueError(f"squeeze: axis {axis} of a tensor of shape {self.shape} does not have size 1")
        return F.reshape(self, tuple(d for a, d in enumerate(self.shape) if a not in axes))

    def expand_dims(self, axis):
        """The same data with a new size-1 axis at ``axis``."""
        axis = axis % (self.ndim + 1)
        return F.reshape(self, (*self.shape[:axis], 1, *self.shape[axis:]))

    def argmax(self, axis=None):
        """Indices (int64) of the maxima along ``axis`` (None: of the flattened tensor); not differentiable."""
        return F.argmax(self, axis)

    def reshape(self, *shape):
        """Return the same data in a new shape (one entry may be -1)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return F.reshape(self, shape)

    def transpose(self, *axes):
        """Permute the axes (reversed when none are given)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return F.transpose(self, axes or None)

    def exp(self):
        """Elementwise e**x."""
        return F.exp(self)

    def log(self):
        """Elementwise natural logarithm."""
        return F.log(self)

    def sqrt(self):
        """Elementwise square root."""
        return F.sqrt(self)

    def tanh(self):
        """Elementwise hyperbolic tangent."""
        return F.tanh(self)

    def sigmoid(self):
        """Elementwise logistic function 1 / (1 + e**-x)."""
        return F.sigmoid(self)

    def relu(self):
        """Elementwise max(x, 0)."""
        return F.relu(self)

    def softmax(self, axis=-1):
        """Softmax along ``axis``: exp(x) / sum(exp(x)), computed stably."""
        return F.softmax(self, axis)

    def log_softmax(self, axis=-1):
        """Log-softmax along ``axis``: x - logsumexp(x), computed stably."""
        return F.log_softmax(self, axis)

    def clip(self, low, high):
        """Clamp the values to [low, high]; the gradient is zero where clamped."""
        return F.clip(self, low, high)



def tensor(data, dtype=None, device=None, requires_grad=False):
    """Create a Tensor (see ``Tensor`` for the arguments and dtype rules)."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def full(shape, value, dtype=None, device=None, requires_grad=False):
    """Return a tensor of ``shape`` filled with ``value`` (float32 unless ``dtype`` is given)."""
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    dtype = DEFAULT_FLOAT if dtype is None else to_supported_dtype(dtype)
    backend = get_backend(device if device is not None else get_default_device())
    return Tensor._make(backend.full(tuple(shape), value, dtype), backend, requires_grad)


def zeros(shape, dtype=None, device=None, requires_grad=False):
    """Return a tensor of zeros (float32 unless ``dtype`` is given)."""
    return full(shape, 0, dtype, device, requires_grad)


def ones(shape, dtype=None, device=None, requires_grad=False):
    """Return a tensor of ones (float32 unless ``dtype`` is given)."""
    return full(shape, 1, dtype, device, requires_grad)
