"""The functional API: every differentiable op on Tensors, checked, and the in-place optimizer steps.

``import nnengine.functional as F``. This is the public op layer that ``Tensor``'s methods call:
each function checks its arguments (shapes, dtypes, devices), promotes dtypes, and then applies
the ``Function`` of ``nnengine.ops`` that holds the math. The optimizer steps wrap the backend's
fused in-place update primitives with argument checks; call them after ``backward()`` and outside
any graph you still mean to differentiate: they overwrite parameters in place.

Nothing here names the ``Tensor`` class: results are made by ``type(x)._make`` from an operand,
and operands are recognised as ``TensorBase``, so this module sits below ``tensor.py``
(docs/ARCHITECTURE.md gives the order). The module is one piece (some 550 lines): it is
the list of public ops, each with its checks, read as one page of the API.
"""
import builtins
import numbers

import numpy as np

from .autograd import _common_backend
from .backends import DENSE_ACTIVATIONS
from .dtypes import DEFAULT_FLOAT, is_float_dtype, result_dtype
from .recurrent_ops import RECURRENT_ACTIVATIONS, RecurrentSequence
from .ops import (
    Add, Cast, Clip, Concatenate, Div, Erf, Exp, GetItem, Linear, Log, LogSoftmax, MatMul, Max, Maximum, Minimum, Mul, Neg,
    Power, Relu, Reshape, Sigmoid, Softmax, SoftmaxCrossEntropy, Sqrt, Sub, Sum, Tanh, ToDevice, Transpose,
    Where, constant,
)
from .tensor_base import TensorBase
from .updates import (adadelta_update, adagrad_update, adam_update, adamax_update, lion_update,  # noqa: F401 - API
                      nadam_update, rmsprop_update, sgd_update, ftrl_update)

__all__ = [
    "add", "argmax", "astype", "clip", "compare", "div", "erf", "exp", "getitem", "linear", "log", "log_softmax",
    "matmul", "max", "maximum", "mean", "minimum", "mul", "neg", "power", "relu", "reshape", "sigmoid",
    "softmax", "softmax_cross_entropy", "sqrt", "sub", "sum", "tanh", "to_device", "transpose", "where",
    "sgd_update", "adam_update", "rmsprop_update", "adagrad_update", "adamax_update", "nadam_update", "lion_update",
    "adadelta_update", "ftrl_update", "simple_rnn", "lstm", "gru",
]


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
    if isinstance(value, TensorBase):
        return value
    if isinstance(value, numbers.Number):
        if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
            raise TypeError("complex numbers are not supported")
        return type(like)._make(constant(like._backend, value, _scalar_dtype(value, like)), like._backend)
    return type(like)(value, device=like.device)


def _operands(a, b):
    """Turn the operands of a binary op into Tensors, at least one of which was one."""
    if isinstance(a, TensorBase):
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


def astype(x, dtype):
    """Return ``x`` as ``dtype`` (itself when it already is)."""
    if x.dtype == dtype:
        return x
    return Cast.apply(x, dtype=np.dtype(dtype))


def to_device(x, target_backend):
    """Return ``x`` copied onto the device of ``target_backend``."""
    return ToDevice.apply(x, target=target_backend)


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
    return type(a)._make(getattr(backend, name)(a._data, b._data), backend)


def where(cond, a, b):
    """Select from ``a`` where the bool tensor ``cond`` is true, else from ``b`` (broadcast)."""
    if not isinstance(cond, TensorBase):
        like = a if isinstance(a, TensorBase) else b
        cond = type(like)(np.asarray(cond, dtype=bool), device=like.device)
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
    return type(x)._make(x._backend.argmax(x._data, axis), x._backend)


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
    if isinstance(part, TensorBase):
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


def concatenate(tensors, axis=0):
    """Join tensors of one dtype and device along ``axis`` (their other sizes must agree)."""
    tensors = list(tensors)
    if not tensors or not all(isinstance(t, TensorBase) for t in tensors):
        raise TypeError("concatenate: expected a non-empty list of tensors")
    first = tensors[0]
    axis = _normalize_axes("concatenate", axis, first.ndim)[0]
    for t in tensors[1:]:
        if t.ndim != first.ndim or t.dtype != first.dtype or \
                any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
            raise ValueError(f"concatenate: shapes {first.shape} and {t.shape} (dtypes {first.dtype}, {t.dtype}) "
                             f"cannot be joined along axis {axis}")
    return Concatenate.apply(*tensors, axis=axis)


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


def _activation_name(activation, op="linear", valid_names=DENSE_ACTIVATIONS):
    """The primitive's name of an activation ("none" for None and "linear"); ValueError naming ``op`` for one
    the primitive does not know."""
    name = "none" if activation in (None, "linear") else activation
    if name not in valid_names:
        valid = ", ".join(repr(a) for a in valid_names + ("linear",))
        raise ValueError(f"{op}: unknown activation {activation!r}; valid: None, {valid}")
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


_REDUCTIONS = ("mean", "sum", "none")


def _check_label_range(labels, classes):
    """Class indices (a host numpy array) must lie in [0, classes)."""
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            raise ValueError(f"softmax_cross_entropy: class indices must be in [0, {classes}), got values in "
                             f"[{low}, {high}]")


def _check_targets(logits, targets, labels_checked):
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
    if not labels_checked:
        # one small transfer of the labels, checked on the host: cheaper than two reductions on the device
        _check_label_range(targets._backend.to_numpy(targets._data), c)
    return astype(targets, np.dtype(np.int64))


def softmax_cross_entropy(logits, targets, reduction="mean", *, labels_checked=False):
    """Cross-entropy of softmax(logits) against targets, fused and numerically stable.

    Args:
        logits: (n, c) float scores before the softmax.
        targets: (n, c) float one-hot, soft or unnormalised target weights t, or (n,) integer class indices.
            Targets are constants: they receive no gradient.
        reduction: "mean" (over the n rows, Keras's and PyTorch's default), "sum" or "none" (per row).
        labels_checked: the caller has already checked on the host that integer targets lie in [0, c)
            (the Keras losses do, once per batch, before the upload); skips that check. Host (numpy)
            labels are always checked before they are uploaded, device labels after one copy to the host.

    Per row the loss is -sum_j t_j log p_j with p = softmax(z); its gradient
    p * sum_j t_j - t is right for targets that do not sum to 1.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"softmax_cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not isinstance(targets, TensorBase):
        host = np.asarray(targets)
        if host.dtype.kind in "iu" and host.ndim == 1 and logits.ndim == 2 and not labels_checked:
            _check_label_range(host, logits.shape[1])      # on the host, before the upload
            labels_checked = True
        dtype = np.int64 if host.dtype.kind in "iu" else logits.dtype
        targets = type(logits)(host, dtype=dtype, device=logits.device)
    _common_backend("softmax_cross_entropy", [logits, targets])
    _require_float("softmax_cross_entropy", logits)
    if logits.ndim != 2:
        raise ValueError(f"softmax_cross_entropy: logits must be (n, classes), got shape {logits.shape}")
    if logits.shape[0] == 0 and reduction == "mean":
        raise ValueError("softmax_cross_entropy: the mean over an empty batch is undefined")
    targets = _check_targets(logits, targets, labels_checked)
    return SoftmaxCrossEntropy.apply(logits, targets, reduction=reduction)


def _recurrent_inputs(name, projected, kernel, gates, activations, bias=None, masks=None):
    """Check a recurrent op's operands: P (steps, n, gates*units), U (units, gates*units), masks (gates, n, units),
    one float dtype."""
    tensors = [t for t in (projected, kernel, bias, masks) if t is not None]
    _common_backend(name, tensors)
    for t in tensors:
        _require_float(name, t)
        if t.dtype != projected.dtype:
            raise TypeError(f"{name}: every operand must have the projected inputs' dtype {projected.dtype}, "
                            f"got {t.dtype}")
    if kernel.ndim != 2 or kernel.shape[1] != gates * kernel.shape[0] or kernel.shape[0] == 0:
        raise ValueError(f"{name}: the recurrent kernel must be (units, {gates} * units), got shape {kernel.shape}")
    if projected.ndim != 3 or projected.shape[2] != kernel.shape[1] or 0 in projected.shape[:2]:
        raise ValueError(f"{name}: projected inputs must be (steps >= 1, batch >= 1, {kernel.shape[1]}), time "
                         f"first, got shape {projected.shape}")
    if bias is not None and bias.shape != (2, kernel.shape[1]):
        raise ValueError(f"{name}: the bias must have shape {(2, kernel.shape[1])}, got {bias.shape}")
    if masks is not None and masks.shape != (gates, projected.shape[1], kernel.shape[0]):
        raise ValueError(f"{name}: recurrent_masks must have shape {(gates, projected.shape[1], kernel.shape[0])} "
                         f"(one mask of the state per gate), got {masks.shape}")
    return [_activation_name(activation, name, RECURRENT_ACTIVATIONS) for activation in activations]


def _step_mask(name, step_mask, projected):
    """Keras's mask of padded steps as the recurrent op takes it: (steps, n) of the projected inputs' dtype, 1 where
    a step holds data; None stays None. Accepts a bool or 0/1 Tensor or array of that shape."""
    if step_mask is None:
        return None
    if not isinstance(step_mask, TensorBase):
        step_mask = type(projected)(np.asarray(step_mask), device=projected.device)
    _common_backend(name, [projected, step_mask])
    if step_mask.shape != projected.shape[:2]:
        raise ValueError(f"{name}: step_mask must have shape {projected.shape[:2]} (steps, batch), time first like "
                         f"the projected inputs, got {step_mask.shape}")
    if step_mask.dtype != projected.dtype:           # bool (or 0/1 of another dtype) as the op's 0/1 floats
        step_mask = step_mask.astype(projected.dtype)
    return step_mask


def _initial_state(cell, initial_state, projected, units):
    """The initial state as (h0, c0): None for none, else Tensors (n, units) of the projected inputs' dtype (a
    list of two for the LSTM, h0 and c0; one, or a list of one, for the others)."""
    if initial_state is None:
        return None, None
    count = 2 if cell == "lstm" else 1
    states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
    if len(states) != count or not all(isinstance(state, TensorBase) for state in states):
        raise TypeError(f"{cell}: initial_state must be {'[h, c], two Tensors' if count == 2 else 'one Tensor h'}, "
                        f"got {type(initial_state).__name__} of {len(states)}")
    _common_backend(cell, [projected, *states])
    expected = (projected.shape[1], units)
    for state in states:
        _require_float(cell, state)
        if state.shape != expected or state.dtype != projected.dtype:
            raise ValueError(f"{cell}: each initial state must be (batch, units) = {expected} of dtype "
                             f"{projected.dtype}, got shape {state.shape} of dtype {state.dtype}")
    return states[0], (states[1] if count == 2 else None)


def _recurrent(cell, projected, kernel, bias, activation, recurrent_activation, reverse, reset_after, sequences,
               masks, step_mask=None, initial_state=None, return_state=False):
    """Run the op; with ``return_state``, return (output, h_T) or for the LSTM (output, h_T, c_T)."""
    step_mask = _step_mask(cell, step_mask, projected)
    h0, c0 = _initial_state(cell, initial_state, projected, kernel.shape[0])
    carry = bool(return_state) and cell == "lstm"
    out = RecurrentSequence.apply(projected, kernel, bias, masks, step_mask, h0, c0, cell=cell, activation=activation,
                                  recurrent_activation=recurrent_activation, reverse=bool(reverse),
                                  reset_after=bool(reset_after), sequences=bool(sequences), carry=carry)
    if not return_state:
        return out
    if not carry:
        return out, (out[out.shape[0] - 1] if sequences else out)
    rows = out.shape[0] - 1                          # [h..., c_T]: the output, h_T and c_T are its rows
    return (out[:rows] if sequences else out[0]), out[rows - 1], out[rows]


def simple_rnn(projected, kernel, activation="tanh", reverse=False, return_sequences=True, recurrent_masks=None,
               step_mask=None, initial_state=None, return_state=False):
    """Keras's SimpleRNN over a sequence: h_t = act(P_t + h_{t-1} @ kernel), h_0 = 0 or ``initial_state``.

    Args:
        projected: (steps, n, units), time first: the inputs already through x_t @ W + b.
        kernel: (units, units), the recurrent kernel.
        activation: "tanh", "sigmoid", "relu" or "linear".
        reverse: run the steps from the last (Keras's go_backwards).
        return_sequences: return every step's state (steps, n, units), in the order the steps ran; else the
            last state (n, units).
        recurrent_masks: Keras's recurrent dropout: (gates, n, units), each gate's product with the kernel made
            from the state times its mask (the same at every step); None for none.
        step_mask: Keras's mask of padded steps, (steps, n) bool or 0/1 in the projected inputs' order: a padded
            step (False) leaves the state as it was; None: every step holds data.
        initial_state: the state before the first step, (n, units) (for the LSTM a list [h0, c0]); None: zeros.
        return_state: return (output, h_T), for the LSTM (output, h_T, c_T): the last state (and carry), as
            Keras's ``return_state`` does; gradients flow back through them.
    """
    (activation,) = _recurrent_inputs("simple_rnn", projected, kernel, 1, (activation,), masks=recurrent_masks)
    return _recurrent("simple_rnn", projected, kernel, None, activation, "none", reverse, True, return_sequences,
                      recurrent_masks, step_mask, initial_state, return_state)


def lstm(projected, kernel, activation="tanh", recurrent_activation="sigmoid", reverse=False, return_sequences=True,
         recurrent_masks=None, step_mask=None, initial_state=None, return_state=False):
    """Keras's LSTM over a sequence (gates i, f, g, o side by side).

    ``projected`` is (steps, n, 4 * units), time first, ``kernel`` (units, 4 * units); see
    ``nnengine.recurrent_ops`` for the formulas and ``simple_rnn`` for the other arguments.
    """
    activation, recurrent_activation = _recurrent_inputs("lstm", projected, kernel, 4,
                                                         (activation, recurrent_activation), masks=recurrent_masks)
    return _recurrent("lstm", projected, kernel, None, activation, recurrent_activation, reverse, True,
                      return_sequences, recurrent_masks, step_mask, initial_state, return_state)


def gru(projected, kernel, bias=None, activation="tanh", recurrent_activation="sigmoid", reverse=False,
        reset_after=True, return_sequences=True, recurrent_masks=None, step_mask=None, initial_state=None,
        return_state=False):
    """Keras's GRU over a sequence (gates z, r, candidate).

    ``projected`` is (steps, n, 3 * units), time first, ``kernel`` (units, 3 * units). With ``reset_after``
    (Keras 3's default) the reset gate scales h @ kernel (+ bias[1]); ``bias`` is then Keras's (2, 3 * units)
    bias, row 0 added to the projected inputs, or None. Without it the gate scales h before the product, and
    any bias belongs in the projection. See ``nnengine.recurrent_ops`` for the formulas.
    """
    if bias is not None and not reset_after:
        raise ValueError("gru: a (2, 3 * units) bias exists only with reset_after=True; without it the projection "
                         "holds the bias")
    activation, recurrent_activation = _recurrent_inputs("gru", projected, kernel, 3,
                                                         (activation, recurrent_activation), bias, recurrent_masks)
    return _recurrent("gru", projected, kernel, bias, activation, recurrent_activation, reverse, reset_after,
                      return_sequences, recurrent_masks, step_mask, initial_state, return_state)
