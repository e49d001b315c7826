"""What a tensor IS: an array on a device plus its autograd fields, without the operations.

``TensorBase`` holds the data (a backend array and its Backend), the autograd state
(``requires_grad``, ``grad``, the graph node that made it), construction from host data with
the dtype rules of ``dtypes.py``, conversions back to the host, and in-place changes of
identity-keeping tensors (parameters). ``Tensor`` (tensor.py) adds what you can DO with one:
operators and methods, which call ``nnengine.functional``.

The split keeps the core free of import circles: autograd and functional need to recognise
and create tensors, so they import this module, and tensor.py, which imports functional,
sits above them all (see docs/ARCHITECTURE.md). PyTorch draws the same line between its
C-level TensorBase and the Python Tensor.
"""
import numpy as np

from .backends import get_backend
from .device import get_default_device
from .dtypes import checked_cast, is_float_dtype, natural_dtype, to_supported_dtype


def host_array(data):
    """Turn scalars, nested lists and arrays into a numpy array, with a clear error."""
    try:
        return np.asarray(data)
    except ValueError as error:
        raise ValueError(f"cannot make a tensor from this data: {error}") from None


class TensorBase:
    """An n-dimensional array on a device that can record operations for autograd (see ``Tensor``).

    Args:
        data: a Python scalar, a (nested) list, a numpy array or a tensor (copied).
        dtype: float32, float64, int32, int64 or bool; by default see ``nnengine.dtypes``.
        device: "cpu", "numpy", "cuda", "cuda:N"; by default ``get_default_device()``.
        requires_grad: record operations on this tensor so ``backward`` can fill ``.grad``.
    """

    __slots__ = ("_data", "_backend", "requires_grad", "grad", "_node", "_retains_grad", "_keras_mask", "__weakref__")
    # Make numpy defer to Tensor's reflected operators (ndarray + Tensor -> Tensor.__radd__).
    __array_ufunc__ = None

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        if isinstance(data, TensorBase):
            data = data.numpy()
        from_python = not isinstance(data, (np.ndarray, np.generic))
        array = host_array(data)
        dtype = natural_dtype(array, from_python) if dtype is None else to_supported_dtype(dtype)
        backend = get_backend(device if device is not None else get_default_device())
        self._init(backend.from_numpy(checked_cast(array, dtype, "Tensor")), backend, requires_grad)

    def _init(self, array, backend, requires_grad):
        self._data = array
        self._backend = backend
        self.grad = None
        self._node = None
        self._retains_grad = False
        self._keras_mask = None           # Keras's mask of padded steps, set by layers (nnengine/masks.py)
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
        body = np.array2string(self.numpy(), separator=", ", prefix=type(self).__name__ + "(")
        extras = f"dtype={self.dtype.name}, device={self.device!r}"
        if self._node is not None:
            extras += f", grad_fn={self._node!r}"
        elif self.requires_grad:
            extras += ", requires_grad=True"
        return f"{type(self).__name__}({body}, {extras})"

    def assign_(self, value):
        """Overwrite this tensor's values in place (no graph), keeping its identity, dtype and device.

        ``value`` is array-like of this tensor's exact shape; it is cast to this dtype.
        Used for parameters, whose identity optimizers and layers hold on to.
        """
        host = host_array(value.numpy() if isinstance(value, TensorBase) else value)
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
            if self.grad is not None:
                self.grad = type(self)._make(target.from_numpy(self._backend.to_numpy(self.grad._data)), target)
        return self

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
        return type(self)._make(self._data, self._backend)

    def zero_grad(self):
        """Reset ``.grad`` to None, ending the accumulation of gradients into it."""
        self.grad = None

    def retain_grad(self):
        """Ask backward to fill ``.grad`` of this non-leaf tensor too."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True
