"""Differentiable operations: each derivative is written once, here, with backend primitives.

Each op has a ``Function`` subclass (the math) and a lower-case wrapper (argument
checking, dtype promotion, broadcasting checks) that the Tensor methods and
``nnengine.functional`` call. Broadcast gradients are summed back to each
input's shape by the autograd engine (``autograd.reduce_to_shape``), not here.

Notation in the comments: x, a, b are inputs, y the output, g = dL/dy.
"""
import builtins
import math
import numbers

import numpy as np

from .autograd import Function, _common_backend
from .backends import DENSE_ACTIVATIONS
from .tensor import DEFAULT_FLOAT, Tensor, is_float_dtype, result_dtype


# ----------------------------------------------------------------------
# Helpers shared by the wrappers
# ----------------------------------------------------------------------
def _const(backend, value, dtype):
    """A 0-d backend array holding ``value``: the core's scalar constants."""
    return backend.full((), value, dtype)


def _scalar_dtype(value, like):
    """dtype for a scalar meeting tensor ``like``: the tensor's, widened only as far as the value needs.

    A bool keeps any tensor's dtype; an int keeps an int or float tensor's (a bool
    tensor becomes int64); a float keeps a float tensor's (others become float32).
    """
    if isinstance(value, (bool, np.bool_)) or is_float_dtype(like.dtype):
        return like.dtype
    if isinstance(value, numbers.Integral):
        return like.dtype if like.dtype != np.bool_ else np.dtype(np.int64)
    return DEFAULT_FLOAT


def _as_tensor(value, like):
    """Return ``value`` as a Tensor on ``like``'s device (Python scalars take ``like``'s dtype)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Number):
        if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
            raise TypeError("complex numbers are not supported")
        return Tensor._make(_const(like._backend, value, _scalar_dtype(value, like)), like._backend)
    return Tensor(value, device=like.device)


def _operands(a, b):
    """Turn the operands of a binary op into Tensors, at least one of which was one."""
    if isinstance(a, Tensor):
        return a, _as_tensor(b, a)
    return _as_tensor(a, b), b


def _check_broadcast(name, a, b):
    if a.shape == b.shape:
        return a.shape
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None


def _promote(name, a, b, float_result=False):
    """Check devices and shapes, then cast both operands to their common dtype."""
    _common_backend(name, [a, b])
    _check_broadcast(name, a, b)
    dtype = a.dtype if a.dtype == b.dtype else result_dtype(a.dtype, b.dtype)
    if float_result and not is_float_dtype(dtype):
        dtype = DEFAULT_FLOAT
    return astype(a, dtype), astype(b, dtype)


def _require_float(name, x):
    if not is_float_dtype(x.dtype):
        raise TypeError(
            f"{name} expects a float32 or float64 tensor, got {x.dtype.name}; "
            f"convert it first with .astype('float32')"
        )


def _normalize_axes(name, axis, ndim):
    """Turn None / int / tuple into a sorted tuple of distinct non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    normalized = []
    for ax in axes:
        if not isinstance(ax, numbers.Integral) or not -ndim <= ax < ndim:
            raise ValueError(f"{name}: axis {ax} is out of range for a tensor with {ndim} dims")
        normalized.append(int(ax) % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{name}: repeated axis in {axis}")
    return tuple(sorted(normalized))


def _kept_shape(shape, axes):
    """The shape of a reduction over ``axes`` with keepdims=True."""
    return tuple(1 if i in axes else size for i, size in enumerate(shape))


# ----------------------------------------------------------------------
# Casts and device moves
# ----------------------------------------------------------------------
class Cast(Function):
    """y = x converted to another dtype; g flows back cast to x's dtype by the engine."""

    @staticmethod
    def forward(ctx, x, dtype):
        return ctx.backend.astype(x, dtype)

    @staticmethod
    def backward(ctx, g):
        return (g,)


def astype(x, dtype):
    """Return ``x`` as ``dtype`` (itself when it already is)."""
    if x.dtype == dtype:
        return x
    return Cast.apply(x, dtype=np.dtype(dtype))


class ToDevice(Function):
    """y = x copied to another device; g is copied back."""

    @staticmethod
    def forward(ctx, x, target):
        ctx.output_backend = target
        return target.from_numpy(ctx.backend.to_numpy(x))

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.from_numpy(ctx.params["target"].to_numpy(g)),)


def to_device(x, target_backend):
    """Return ``x`` copied onto the device of ``target_backend``."""
    return ToDevice.apply(x, target=target_backend)


# ----------------------------------------------------------------------
# Elementwise binary
# ----------------------------------------------------------------------
class Add(Function):
    """y = a + b;  da = g, db = g."""

    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.add(a, b)

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    """y = a - b;  da = g, db = -g."""

    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.sub(a, b)

    @staticmethod
    def backward(ctx, g):
        return g, (ctx.backend.neg(g) if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """y = a * b;  da = g * b, db = g * a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.mul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        mul = ctx.backend.mul
        return (mul(g, b) if ctx.needs_input_grad[0] else None,
                mul(g, a) if ctx.needs_input_grad[1] else None)


class Div(Function):
    """y = a / b;  da = g / b, db = -g * a / b^2 = -g * y / b."""

    @staticmethod
    def forward(ctx, a, b):
        out = ctx.backend.div(a, b)
        ctx.save_for_backward(b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        b, out = ctx.saved
        grad_a = bk.div(g, b) if ctx.needs_input_grad[0] else None
        grad_b = bk.neg(bk.div(bk.mul(g, out), b)) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Power(Function):
    """y = a ** b;  da = g * b * a^(b-1), db = g * y * ln(a) (taken as 0 where a == 0)."""

    @staticmethod
    def forward(ctx, a, b):
        out = ctx.backend.power(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        a, b, out = ctx.saved
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            one = _const(bk, 1, b.dtype)
            grad_a = bk.mul(g, bk.mul(b, bk.power(a, bk.sub(b, one))))
        if ctx.needs_input_grad[1]:
            zero, one = _const(bk, 0, a.dtype), _const(bk, 1, a.dtype)
            at_zero = bk.equal(a, zero)
            # ln(a) with a replaced by 1 where a == 0, so no log(0) is ever taken.
            log_a = bk.log(bk.where(at_zero, one, a))
            grad_b = bk.where(at_zero, zero, bk.mul(g, bk.mul(out, log_a)))
        return grad_a, grad_b


class Maximum(Function):
    """y = max(a, b);  g goes to the larger input, split half and half on ties."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.maximum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        return _tie_split(ctx.backend, g, ctx.backend.greater(a, b), ctx.backend.equal(a, b))


class Minimum(Function):
    """y = min(a, b);  g goes to the smaller input, split half and half on ties."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.minimum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        return _tie_split(ctx.backend, g, ctx.backend.less(a, b), ctx.backend.equal(a, b))


def _tie_split(bk, g, a_wins, tie):
    """Gradients of max/min: (g where a wins, g where b wins), g/2 to each on a tie."""
    zero = _const(bk, 0, g.dtype)
    half_g = bk.mul(g, _const(bk, 0.5, g.dtype))
    grad_a = bk.where(a_wins, g, bk.where(tie, half_g, zero))
    grad_b = bk.sub(g, grad_a)
    return grad_a, grad_b


def _binary(function, name, description, float_result=False):
    """Make the public wrapper of a binary Function: operands to Tensors, checked and promoted."""
    def op(a, b):
        a, b = _operands(a, b)
        return function.apply(*_promote(name, a, b, float_result))
    op.__name__ = name
    op.__doc__ = f"Elementwise {description} with numpy broadcasting (see ``{function.__name__}``)."
    return op


add = _binary(Add, "add", "a + b")
sub = _binary(Sub, "sub", "a - b")
mul = _binary(Mul, "mul", "a * b")
div = _binary(Div, "div", "true division a / b (integer inputs give float32)", float_result=True)
power = _binary(Power, "power", "a ** b")
maximum = _binary(Maximum, "maximum", "maximum of a and b")
minimum = _binary(Minimum, "minimum", "minimum of a and b")


_COMPARISONS = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")


def compare(name, a, b):
    """Elementwise comparison ``name`` (one of the backend's six) giving a bool tensor; not differentiable."""
    if name not in _COMPARISONS:
        raise ValueError(f"unknown comparison {name!r}: expected one of {', '.join(_COMPARISONS)}")
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return NotImplemented
    a, b = _operands(a, b)
    a, b = _promote(name, a, b)
    backend = a._backend
    return Tensor._make(getattr(backend, name)(a._data, b._data), backend)


class Where(Function):
    """y = a where cond else b;  da = g where cond, db = g elsewhere."""

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return ctx.backend.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        (cond,) = ctx.saved
        zero = _const(bk, 0, g.dtype)
        return (None,
                bk.where(cond, g, zero) if ctx.needs_input_grad[1] else None,
                bk.where(cond, zero, g) if ctx.needs_input_grad[2] else None)


def where(cond, a, b):
    """Select from ``a`` where the bool tensor ``cond`` is true, else from ``b`` (broadcast)."""
    if not isinstance(cond, Tensor):
        like = a if isinstance(a, Tensor) else b
        cond = Tensor(np.asarray(cond, dtype=bool), device=like.device)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: cond must be a bool tensor, got {cond.dtype.name}")
    a, b = _operands(a, b)
    a, b = _promote("where", a, b)
    _common_backend("where", [cond, a])
    try:
        np.broadcast_shapes(cond.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: shapes {cond.shape}, {a.shape} and {b.shape} cannot be broadcast together") from None
    return Where.apply(cond, a, b)


# ----------------------------------------------------------------------
# Elementwise unary
# ----------------------------------------------------------------------
class Neg(Function):
    """y = -x;  dx = -g."""

    @staticmethod
    def forward(ctx, x):
        return ctx.backend.neg(x)

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.neg(g),)


class Exp(Function):
    """y = e^x;  dx = g * y."""

    @staticmethod
    def forward(ctx, x):
        out = ctx.backend.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.mul(g, ctx.saved[0]),)


class Log(Function):
    """y = ln x;  dx = g / x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.log(x)

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.div(g, ctx.saved[0]),)


class Sqrt(Function):
    """y = sqrt(x);  dx = g / (2 y)  (infinite at x = 0, as the true derivative is)."""

    @staticmethod
    def forward(ctx, x):
        out = ctx.backend.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        out = ctx.saved[0]
        return (bk.div(g, bk.mul(out, _const(bk, 2, out.dtype))),)


class Tanh(Function):
    """y = tanh x;  dx = g * (1 - y^2)."""

    @staticmethod
    def forward(ctx, x):
        out = ctx.backend.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        out = ctx.saved[0]
        return (bk.mul(g, bk.sub(_const(bk, 1, out.dtype), bk.mul(out, out))),)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x);  dx = g * y * (1 - y)."""

    @staticmethod
    def forward(ctx, x):
        out = ctx.backend.sigmoid(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        out = ctx.saved[0]
        return (bk.mul(g, bk.mul(out, bk.sub(_const(bk, 1, out.dtype), out))),)


class Relu(Function):
    """y = max(x, 0);  dx = g where x > 0, else 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.relu(x)

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        x = ctx.saved[0]
        zero = _const(bk, 0, g.dtype)
        return (bk.where(bk.greater(x, zero), g, zero),)


class Erf(Function):
    """y = erf x;  dx = g * 2/sqrt(pi) * e^(-x^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.erf(x)

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        x = ctx.saved[0]
        density = bk.exp(bk.neg(bk.mul(x, x)))
        return (bk.mul(g, bk.mul(density, _const(bk, 2.0 / math.sqrt(math.pi), g.dtype))),)


class Clip(Function):
    """y = min(max(x, low), high);  dx = g where low <= x <= high, else 0."""

    @staticmethod
    def forward(ctx, x, low, high):
        bk = ctx.backend
        ctx.save_for_backward(x)
        return bk.minimum(bk.maximum(x, _const(bk, low, x.dtype)), _const(bk, high, x.dtype))

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        x = ctx.saved[0]
        low, high = ctx.params["low"], ctx.params["high"]
        zero = _const(bk, 0, g.dtype)
        inside = bk.where(bk.greater(x, _const(bk, high, x.dtype)), zero, g)
        return (bk.where(bk.less(x, _const(bk, low, x.dtype)), zero, inside),)


def neg(x):
    """Elementwise -x."""
    return Neg.apply(x)


def _unary(function, name):
    def op(x):
        _require_float(name, x)
        return function.apply(x)
    op.__name__ = name
    op.__doc__ = f"Elementwise {name} of a float tensor (see ``{function.__name__}`` for its derivative)."
    return op


exp = _unary(Exp, "exp")
log = _unary(Log, "log")
sqrt = _unary(Sqrt, "sqrt")
tanh = _unary(Tanh, "tanh")
sigmoid = _unary(Sigmoid, "sigmoid")
relu = _unary(Relu, "relu")
erf = _unary(Erf, "erf")


def clip(x, low, high):
    """Clamp a float tensor to [low, high]; the gradient is zero where clamped."""
    _require_float("clip", x)
    if not low <= high:
        raise ValueError(f"clip: low ({low}) must not exceed high ({high})")
    return Clip.apply(x, low=float(low), high=float(high))


# ----------------------------------------------------------------------
# Reductions
# ----------------------------------------------------------------------
class Sum(Function):
    """y = sum of x over axes;  dx = g broadcast back over the summed axes."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.params["input_shape"] = x.shape
        return ctx.backend.sum(x, axes, keepdims)

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        shape = ctx.params["input_shape"]
        g = bk.reshape(g, _kept_shape(shape, ctx.params["axes"]))
        return (bk.ascontiguous(bk.broadcast_to(g, shape)),)


class Max(Function):
    """y = max of x over axes;  dx = g / k at each of the k elements equal to the maximum, else 0."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        bk = ctx.backend
        kept = bk.max(x, axes, True)
        ctx.save_for_backward(x, kept)
        return kept if keepdims else bk.reshape(kept, tuple(
            size for i, size in enumerate(x.shape) if i not in axes))

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        x, kept = ctx.saved
        is_max = bk.astype(bk.equal(x, kept), g.dtype)
        count = bk.sum(is_max, ctx.params["axes"], True)  # >= 1: the maximum is always attained
        share = bk.div(bk.reshape(g, kept.shape), count)
        return (bk.mul(is_max, share),)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy's name
    """Sum over ``axis`` (None for all); bool tensors are counted as int64."""
    if x.dtype == np.bool_:
        x = astype(x, np.dtype(np.int64))
    axes = _normalize_axes("sum", axis, x.ndim)
    return Sum.apply(x, axes=axes, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """Arithmetic mean over ``axis`` (None for all); integer tensors give float32."""
    axes = _normalize_axes("mean", axis, x.ndim)
    count = int(np.prod([x.shape[i] for i in axes]))
    if count == 0:
        raise ValueError(f"mean: no elements to average over axis {axis} of a tensor of shape {x.shape}")
    if not is_float_dtype(x.dtype):
        x = astype(x, DEFAULT_FLOAT)
    return mul(Sum.apply(x, axes=axes, keepdims=keepdims), 1.0 / count)


def max(x, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy's name
    """Maximum over ``axis`` (None for all); the gradient is shared equally between ties."""
    axes = _normalize_axes("max", axis, x.ndim)
    if any(x.shape[i] == 0 for i in axes) or (x.size == 0 and not axes):
        raise ValueError(f"max: cannot take the maximum of an empty axis of a tensor of shape {x.shape}")
    return Max.apply(x, axes=axes, keepdims=keepdims)


def argmax(x, axis=None):
    """Indices of the first maxima along ``axis`` (None: of the flattened tensor), int64."""
    if x.size == 0:
        raise ValueError(f"argmax: the tensor of shape {x.shape} is empty")
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    (axis,) = _normalize_axes("argmax", axis, x.ndim)
    return Tensor._make(x._backend.argmax(x._data, axis), x._backend)


# ----------------------------------------------------------------------
# Products
# ----------------------------------------------------------------------
class MatMul(Function):
    """Y = A @ B;  dA = G @ B^T, dB = A^T @ G (batch axes reduced by the engine)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        a, b = ctx.saved
        return (bk.matmul(g, b, transpose_b=True) if ctx.needs_input_grad[0] else None,
                bk.matmul(a, g, transpose_a=True) if ctx.needs_input_grad[1] else None)


def matmul(a, b):
    """Matrix product with numpy's rules: 1-D operands are promoted to rows/columns, batch axes broadcast."""
    a, b = _operands(a, b)
    _common_backend("matmul", [a, b])
    for name, t in (("first", a), ("second", b)):
        if t.ndim == 0:
            raise ValueError(f"matmul: the {name} operand is a scalar (shape ()); use * to scale")
        _require_float("matmul", t)
    a2 = reshape(a, (1,) + a.shape) if a.ndim == 1 else a
    b2 = reshape(b, b.shape + (1,)) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align: the first has {a2.shape[-1]} "
            f"columns (last dim) but the second has {b2.shape[-2]} rows (dim -2)")
    try:
        np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dims of shapes {a.shape} and {b.shape} cannot be broadcast") from None
    dtype = result_dtype(a.dtype, b.dtype)
    out = MatMul.apply(astype(a2, dtype), astype(b2, dtype))
    if a.ndim == 1:
        out = reshape(out, out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        out = reshape(out, out.shape[:-1])
    return out


# ----------------------------------------------------------------------
# Shapes and indexing
# ----------------------------------------------------------------------
class Reshape(Function):
    """y = x in a new shape;  dx = g in x's shape."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.params["input_shape"] = x.shape
        return ctx.backend.reshape(x, shape)

    @staticmethod
    def backward(ctx, g):
        return (ctx.backend.reshape(g, ctx.params["input_shape"]),)


class Transpose(Function):
    """y = x with axes permuted by p;  dx = g permuted by the inverse of p."""

    @staticmethod
    def forward(ctx, x, axes):
        return ctx.backend.transpose(x, axes)

    @staticmethod
    def backward(ctx, g):
        inverse = tuple(int(i) for i in np.argsort(ctx.params["axes"]))
        return (ctx.backend.transpose(g, inverse),)


class GetItem(Function):
    """y = x[index];  dx = zeros of x's shape with g added at index (repeats accumulate)."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.params["input_shape"] = x.shape
        return ctx.backend.getitem(x, index)

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        grad = bk.full(ctx.params["input_shape"], 0, g.dtype)
        bk.index_add(grad, ctx.params["index"], g)
        return (grad,)


def _resolve_shape(x, shape):
    """Validate a reshape target (one -1 allowed) against x's size."""
    shape = tuple(int(s) for s in shape)
    unknown = [i for i, s in enumerate(shape) if s == -1]
    known = int(np.prod([s for s in shape if s != -1]))
    if len(unknown) > 1 or any(s < -1 for s in shape):
        raise ValueError(f"reshape: invalid target shape {shape}")
    if unknown and known > 0 and x.size % known == 0:
        shape = tuple(x.size // known if s == -1 else s for s in shape)
    if -1 in shape or int(np.prod(shape)) != x.size:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {shape}")
    return shape


def reshape(x, shape):
    """Return ``x`` with a new shape of the same size (one entry may be -1)."""
    shape = _resolve_shape(x, shape)
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape=shape)


def transpose(x, axes=None):
    """Permute the axes of ``x`` (reverse them when ``axes`` is None)."""
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    axes = tuple(int(a) % builtins.max(x.ndim, 1) if -x.ndim <= a < x.ndim else a for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of shape {x.shape}")
    return Transpose.apply(x, axes=axes)


def _index_part(part, x):
    """Check one component of an index and move any array in it to x's backend."""
    if part is None or part is Ellipsis or isinstance(part, (slice, numbers.Integral)):
        return int(part) if isinstance(part, numbers.Integral) and not isinstance(part, bool) else part
    if isinstance(part, Tensor):
        _common_backend("getitem", [x, part])
        array, dtype = part._data, part.dtype
    else:
        host = np.asarray(part)
        if host.dtype.kind in "iu" and host.dtype != np.int64:
            host = host.astype(np.int64)
        array, dtype = x._backend.from_numpy(host), host.dtype
    if dtype.kind not in "iub" and not (dtype.kind == "f" and array.size == 0):
        raise TypeError(f"getitem: index arrays must be integer or bool, got {dtype.name}")
    if dtype.kind == "f":
        array = x._backend.astype(array, np.int64)
    return array


def getitem(x, index):
    """Return ``x[index]`` with numpy semantics (slices, ints, None, ..., int or bool arrays)."""
    parts = index if isinstance(index, tuple) else (index,)
    parts = tuple(_index_part(p, x) for p in parts)
    return GetItem.apply(x, index=parts if isinstance(index, tuple) else parts[0])


# ----------------------------------------------------------------------
# Softmax family
# ----------------------------------------------------------------------
class Softmax(Function):
    """y = softmax(x) along an axis;  dx = y * (g - sum(g * y)) (the sum along that axis)."""

    @staticmethod
    def forward(ctx, x, axis):
        out = ctx.backend.softmax(x, axis)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        out = ctx.saved[0]
        dot = bk.sum(bk.mul(g, out), (ctx.params["axis"],), True)
        return (bk.mul(out, bk.sub(g, dot)),)


class LogSoftmax(Function):
    """y = x - logsumexp(x) along an axis;  dx = g - softmax(x) * sum(g), softmax(x) = e^y."""

    @staticmethod
    def forward(ctx, x, axis):
        out = ctx.backend.log_softmax(x, axis)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        out = ctx.saved[0]
        total = bk.sum(g, (ctx.params["axis"],), True)
        return (bk.sub(g, bk.mul(bk.exp(out), total)),)


def softmax(x, axis=-1):
    """Softmax along ``axis``, computed stably (the maximum is subtracted first)."""
    _require_float("softmax", x)
    (axis,) = _normalize_axes("softmax", axis, x.ndim)
    return Softmax.apply(x, axis=axis)


def log_softmax(x, axis=-1):
    """Log-softmax along ``axis`` by a stable log-sum-exp."""
    _require_float("log_softmax", x)
    (axis,) = _normalize_axes("log_softmax", axis, x.ndim)
    return LogSoftmax.apply(x, axis=axis)


# ----------------------------------------------------------------------
# Fused neural-network ops
# ----------------------------------------------------------------------
class Linear(Function):
    """A = act(X @ W + b) by the fused backend primitives (see docs/autograd.md for the math)."""

    @staticmethod
    def forward(ctx, x, w, b, activation):
        out = ctx.backend.dense_forward(x, w, b, activation)
        ctx.save_for_backward(x, w, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, w, out = ctx.saved
        need_x, _, need_b = ctx.needs_input_grad
        grad_x, grad_w, grad_b = ctx.backend.dense_backward(
            x, w, out, g, ctx.params["activation"], need_x)
        return grad_x, grad_w, (grad_b if need_b else None)


def _activation_name(activation):
    name = "none" if activation in (None, "linear") else activation
    if name not in DENSE_ACTIVATIONS:
        valid = ", ".join(repr(a) for a in DENSE_ACTIVATIONS + ("linear",))
        raise ValueError(f"linear: unknown activation {activation!r}; valid: None, {valid}")
    return name


def linear(x, w, b=None, activation=None):
    """Fused dense layer ``act(x @ w + b)`` with Keras's kernel layout.

    Args:
        x: (n, in) inputs.
        w: (in, out) kernel.
        b: (out,) bias, or None.
        activation: None/"linear", "relu", "sigmoid", "tanh" or "softmax" (over the last axis).
    """
    activation = _activation_name(activation)
    tensors = (x, w) if b is None else (x, w, b)
    _common_backend("linear", tensors)
    dtype = x.dtype
    for t in tensors:
        if t.dtype != dtype:
            dtype = result_dtype(dtype, t.dtype)
    if not is_float_dtype(dtype) or any(t.dtype.kind != "f" for t in tensors):
        bad = next(t for t in tensors if t.dtype.kind != "f")
        _require_float("linear", bad)
    if x.ndim != 2 or w.ndim != 2:
        raise ValueError(f"linear: expected x of shape (n, in) and w of shape (in, out), got {x.shape} and {w.shape}")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"linear: x has {x.shape[1]} features (shape {x.shape}) but w expects "
                         f"{w.shape[0]} (shape {w.shape})")
    if b is not None and b.shape != (w.shape[1],):
        raise ValueError(f"linear: bias must have shape {(w.shape[1],)}, got {b.shape}")
    x, w = astype(x, dtype), astype(w, dtype)
    b = None if b is None else astype(b, dtype)
    return Linear.apply(x, w, b, activation=activation)


class SoftmaxCrossEntropy(Function):
    """L = reduce_i(-sum_j t_ij log softmax(z_i)_j);  dz_ij = dL/dl_i * (p_ij sum_k t_ik - t_ij)."""

    @staticmethod
    def forward(ctx, logits, targets, reduction):
        bk = ctx.backend
        losses, grad = bk.softmax_cross_entropy(logits, targets, ctx.needs_input_grad[0])
        ctx.save_for_backward(grad)
        if reduction == "none":
            return losses
        total = bk.sum(losses, (0,), False)
        if reduction == "sum":
            return total
        return bk.mul(total, _const(bk, 1.0 / logits.shape[0], logits.dtype))

    @staticmethod
    def backward(ctx, g):
        bk = ctx.backend
        (grad,) = ctx.saved
        n = grad.shape[0]
        reduction = ctx.params["reduction"]
        if reduction == "none":
            per_row = bk.reshape(g, (n, 1))
        elif reduction == "sum":
            per_row = bk.reshape(g, (1, 1))
        else:
            per_row = bk.reshape(bk.mul(g, _const(bk, 1.0 / n, g.dtype)), (1, 1))
        return bk.mul(grad, per_row), None


_REDUCTIONS = ("mean", "sum", "none")


def _check_targets(logits, targets):
    """Validate targets for softmax cross-entropy and cast them to what the kernel takes."""
    n, c = logits.shape
    if is_float_dtype(targets.dtype):
        if targets.shape != (n, c):
            raise ValueError(f"softmax_cross_entropy: float targets must have the logits' shape {(n, c)}, "
                             f"got {targets.shape}")
        if targets.requires_grad:
            raise ValueError("softmax_cross_entropy: targets are constants here and must not require grad")
        return astype(targets, logits.dtype)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"softmax_cross_entropy: targets must be float (n, c) or integer (n,), "
                        f"got {targets.dtype.name}")
    if targets.shape != (n,):
        raise ValueError(f"softmax_cross_entropy: integer class targets must have shape {(n,)}, got {targets.shape}")
    if n:
        # one small transfer of the labels, checked on the host: cheaper than two reductions on the device
        labels = targets._backend.to_numpy(targets._data)
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= c:
            raise ValueError(f"softmax_cross_entropy: class indices must be in [0, {c}), got values in [{low}, {high}]")
    return astype(targets, np.dtype(np.int64))


def softmax_cross_entropy(logits, targets, reduction="mean"):
    """Cross-entropy of softmax(logits) against targets, fused and numerically stable.

    Args:
        logits: (n, c) float scores before the softmax.
        targets: (n, c) float one-hot, soft or unnormalised target weights t, or (n,) integer class indices.
            Targets are constants: they receive no gradient.
        reduction: "mean" (over the n rows, Keras's and PyTorch's default), "sum" or "none" (per row).

    Per row the loss is -sum_j t_j log p_j with p = softmax(z); its gradient
    p * sum_j t_j - t is right for targets that do not sum to 1.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"softmax_cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not isinstance(targets, Tensor):
        host = np.asarray(targets)
        dtype = np.int64 if host.dtype.kind in "iu" else logits.dtype
        targets = Tensor(host, dtype=dtype, device=logits.device)
    _common_backend("softmax_cross_entropy", [logits, targets])
    _require_float("softmax_cross_entropy", logits)
    if logits.ndim != 2:
        raise ValueError(f"softmax_cross_entropy: logits must be (n, classes), got shape {logits.shape}")
    if logits.shape[0] == 0 and reduction == "mean":
        raise ValueError("softmax_cross_entropy: the mean over an empty batch is undefined")
    targets = _check_targets(logits, targets)
    return SoftmaxCrossEntropy.apply(logits, targets, reduction=reduction)
