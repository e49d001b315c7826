"""The Tensor: an n-dimensional array on a device, with reverse-mode autograd.

dtype rules:

* Python scalars and lists become float32 (the default float), unless they are
  all bools (bool) or a dtype is given.
* numpy arrays keep float32, float64, int32, int64 and bool; float16 is widened
  to float32 and other integer types to int64. Other dtypes raise TypeError.
* An operation on two dtypes gives the wider float if either is a float, else
  numpy's integer promotion; a Python scalar takes the dtype of the tensor it
  meets (an int tensor meeting a float scalar becomes float32).
"""
import numbers

import numpy as np

from .backends import get_backend
from .device import get_default_device

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
SUPPORTED_DTYPES = FLOAT_DTYPES + (np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_))
DEFAULT_FLOAT = np.dtype(np.float32)


def is_float_dtype(dtype):
    """Return True for the floating dtypes a Tensor can hold (float32, float64)."""
    return np.dtype(dtype) in FLOAT_DTYPES


def to_supported_dtype(dtype):
    """Return ``dtype`` as one of SUPPORTED_DTYPES, or raise TypeError naming it."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype {dtype!r} is not a dtype") from None
    if dtype not in SUPPORTED_DTYPES:
        names = ", ".join(d.name for d in SUPPORTED_DTYPES)
        raise TypeError(f"dtype {dtype.name} is not supported: tensors hold {names}")
    return dtype


def _natural_dtype(array, from_python):
    """The dtype a tensor gets from ``array`` when none is requested (module rules)."""
    kind = array.dtype.kind
    if kind == "b":
        return np.dtype(np.bool_)
    if from_python and kind in "iuf":
        return DEFAULT_FLOAT
    if kind == "f":
        return DEFAULT_FLOAT if array.dtype.itemsize < 4 else to_supported_dtype(array.dtype)
    if kind in "iu":
        return array.dtype if array.dtype in SUPPORTED_DTYPES else np.dtype(np.int64)
    raise TypeError(f"cannot make a tensor from data of dtype {array.dtype}: expected numbers or bools")


def result_dtype(a, b):
    """The dtype of a binary operation on dtypes ``a`` and ``b`` (module rules)."""
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    if is_float_dtype(a) and is_float_dtype(b):
        return np.promote_types(a, b)
    if is_float_dtype(a):
        return a
    if is_float_dtype(b):
        return b
    return np.promote_types(a, b)


def _host_array(data):
    """Turn scalars, nested lists and arrays into a numpy array, with a clear error."""
    try:
        return np.asarray(data)
    except ValueError as error:
        raise ValueError(f"cannot make a tensor from this data: {error}") from None


class Tensor:
    """An n-dimensional array on a device that can record operations for autograd.

    Args:
        data: a Python scalar, a (nested) list, a numpy array or a Tensor (copied).
        dtype: float32, float64, int32, int64 or bool; by default see the module rules.
        device: "cpu", "numpy", "cuda", "cuda:N"; by default ``get_default_device()``.
        requires_grad: record operations on this tensor so ``backward`` can fill ``.grad``.
    """

    __slots__ = ("_data", "_backend", "requires_grad", "grad", "_node", "_retains_grad", "__weakref__")
    # Make numpy defer to Tensor's reflected operators (ndarray + Tensor -> Tensor.__radd__).
    __array_ufunc__ = None

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.numpy()
        from_python = not isinstance(data, (np.ndarray, np.generic))
        array = _host_array(data)
        dtype = _natural_dtype(array, from_python) if dtype is None else to_supported_dtype(dtype)
        backend = get_backend(device if device is not None else get_default_device())
        self._init(backend.from_numpy(array.astype(dtype, copy=False)), backend, requires_grad)

    def _init(self, array, backend, requires_grad):
        self._data = array
        self._backend = backend
        self.grad = None
        self._node = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, array, backend, requires_grad=False):
        """Wrap a backend array without copying (internal)."""
        tensor = cls.__new__(cls)
        tensor._init(array, backend, requires_grad)
        return tensor

    # ------------------------------------------------------------------
    # Properties and conversions
    # ------------------------------------------------------------------
    @property
    def shape(self):
        """The shape, a tuple of ints."""
        return tuple(self._data.shape)

    @property
    def dtype(self):
        """The numpy dtype of the elements."""
        return self._data.dtype

    @property
    def ndim(self):
        """The number of dimensions."""
        return self._data.ndim

    @property
    def size(self):
        """The number of elements."""
        return int(self._data.size)

    @property
    def device(self):
        """The canonical device string ("cpu", "numpy", "cuda:0", ...)."""
        return self._backend.device

    @property
    def backend(self):
        """The Backend that computes on this tensor's arrays."""
        return self._backend

    @property
    def grad_fn(self):
        """The graph node that produced this tensor, or None for a leaf."""
        return self._node

    @property
    def is_leaf(self):
        """True for tensors not produced by a recorded operation."""
        return self._node is None

    @property
    def T(self):
        """The tensor with its axes reversed (numpy's ``.T``)."""
        return self.transpose()

    def numpy(self):
        """Return a host numpy copy of the data (changing it does not change the tensor)."""
        return self._backend.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None):
        if copy is False:
            raise ValueError("a Tensor cannot be viewed as a numpy array without a copy; use .numpy()")
        array = self.numpy()
        return array if dtype is None else array.astype(dtype, copy=False)

    def item(self):
        """Return the value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item(): the tensor has {self.size} elements (shape {self.shape}), expected exactly 1")
        return self.numpy().reshape(()).item()

    def tolist(self):
        """Return the data as (nested) Python lists."""
        return self.numpy().tolist()

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use .item()")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="Tensor(")
        extras = f"dtype={self.dtype.name}, device={self.device!r}"
        if self._node is not None:
            extras += f", grad_fn={self._node!r}"
        elif self.requires_grad:
            extras += ", requires_grad=True"
        return f"Tensor({body}, {extras})"

    def to(self, device):
        """Return this tensor on ``device`` (itself if already there); differentiable."""
        target = get_backend(device)
        if target is self._backend:
            return self
        return ops.to_device(self, target)

    def assign_(self, value):
        """Overwrite this tensor's values in place (no graph), keeping its identity, dtype and device.

        ``value`` is array-like of this tensor's exact shape; it is cast to this dtype.
        Used for parameters, whose identity optimizers and layers hold on to.
        """
        host = _host_array(value.numpy() if isinstance(value, Tensor) else value)
        if host.shape != self.shape:
            raise ValueError(f"assign_: expected a value of shape {self.shape}, got {host.shape}")
        self._data = self._backend.from_numpy(host.astype(self.dtype))
        return self

    def move_(self, device):
        """Move this tensor's storage to ``device`` in place, keeping its identity; return self."""
        target = get_backend(device)
        if target is not self._backend:
            self._data = target.from_numpy(self._backend.to_numpy(self._data))
            self._backend = target
            self.grad = None if self.grad is None else self.grad.to(device)
        return self

    def astype(self, dtype):
        """Return this tensor converted to ``dtype``; differentiable between float dtypes."""
        return ops.astype(self, to_supported_dtype(dtype))

    # ------------------------------------------------------------------
    # Autograd
    # ------------------------------------------------------------------
    def requires_grad_(self, flag=True):
        """Set ``requires_grad`` in place and return self; only float tensors can require grad."""
        if flag and not is_float_dtype(self.dtype):
            raise TypeError(f"only float32/float64 tensors can require grad, this one is {self.dtype.name}")
        self.requires_grad = bool(flag)
        return self

    def detach(self):
        """Return a tensor sharing this data but cut from the graph (requires_grad False)."""
        return Tensor._make(self._data, self._backend)

    def zero_grad(self):
        """Reset ``.grad`` to None, ending the accumulation of gradients into it."""
        self.grad = None

    def retain_grad(self):
        """Ask backward to fill ``.grad`` of this non-leaf tensor too."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def backward(self, grad=None, retain_graph=False):
        """Accumulate gradients of this tensor into the ``.grad`` of every leaf below it.

        See ``nnengine.autograd.backward`` for the rules.
        """
        autograd.backward(self, grad, retain_graph)

    # ------------------------------------------------------------------
    # Operators
    # ------------------------------------------------------------------
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, other):
        return ops.power(self, other)

    def __rpow__(self, other):
        return ops.power(other, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __pos__(self):
        return self

    def __eq__(self, other):
        return ops.compare("equal", self, other)

    def __ne__(self, other):
        return ops.compare("not_equal", self, other)

    def __lt__(self, other):
        return ops.compare("less", self, other)

    def __le__(self, other):
        return ops.compare("less_equal", self, other)

    def __gt__(self, other):
        return ops.compare("greater", self, other)

    def __ge__(self, other):
        return ops.compare("greater_equal", self, other)

    # Tensors define == elementwise, so hashing goes by identity, as for any object.
    __hash__ = object.__hash__

    def __getitem__(self, index):
        return ops.getitem(self, index)

    # ------------------------------------------------------------------
    # Methods mirroring the functional ops
    # ------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        """Sum over ``axis`` (None: all axes; an int or a tuple)."""
        return ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        """Arithmetic mean over ``axis`` (None: all axes; an int or a tuple)."""
        return ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        """Maximum over ``axis``; the gradient is shared equally between tied maxima."""
        return ops.max(self, axis, keepdims)

    def argmax(self, axis=None):
        """Indices (int64) of the maxima along ``axis`` (None: of the flattened tensor); not differentiable."""
        return ops.argmax(self, axis)

    def reshape(self, *shape):
        """Return the same data in a new shape (one entry may be -1)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.reshape(self, shape)

    def transpose(self, *axes):
        """Permute the axes (reversed when none are given)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.transpose(self, axes or None)

    def exp(self):
        """Elementwise e**x."""
        return ops.exp(self)

    def log(self):
        """Elementwise natural logarithm."""
        return ops.log(self)

    def sqrt(self):
        """Elementwise square root."""
        return ops.sqrt(self)

    def tanh(self):
        """Elementwise hyperbolic tangent."""
        return ops.tanh(self)

    def sigmoid(self):
        """Elementwise logistic function 1 / (1 + e**-x)."""
        return ops.sigmoid(self)

    def relu(self):
        """Elementwise max(x, 0)."""
        return ops.relu(self)

    def softmax(self, axis=-1):
        """Softmax along ``axis``: exp(x) / sum(exp(x)), computed stably."""
        return ops.softmax(self, axis)

    def log_softmax(self, axis=-1):
        """Log-softmax along ``axis``: x - logsumexp(x), computed stably."""
        return ops.log_softmax(self, axis)

    def clip(self, low, high):
        """Clamp the values to [low, high]; the gradient is zero where clamped."""
        return ops.clip(self, low, high)


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


# ops and autograd build on Tensor, so they are imported once it exists.
from . import autograd, ops  # noqa: E402

autograd._tensor_class = Tensor
