"""The lowering of each primitive of the numba backend: the kernel calls one step of a plan makes, as source.

``numba_lowering.lower`` walks a captured plan and hands each call to its emitter: here (``NN_EMITTERS``:
dense layers, the loss, sums and maxima, softmax and log-softmax, reshapes and transposes, activation
gradients, an accuracy's hits, the updates)
or in ``numba_elementwise_emitters.py``, ``numba_array_emitters.py`` and ``numba_recurrent_emitters.py``. It
passes the values the capture saw: arrays the generated function holds (``Value``: its source name, an example
of its shape and dtype, whether it is a numba scalar) and other arguments (``Literal``: the value, and the
Python expression that gives it on each step).

An emitter takes the choices the eager primitive takes, through the backend's own helpers
(``_dense_is_small``, ``_row_kernel``) on the captured shapes, and writes the same kernel calls with the
same argument types (flags as typed values, not literals: numba would compile a kernel anew for a
literal). It raises LoweringRefused for any case it does not write out.
"""
import sys

import numpy as np
from numba.core.registry import CPUDispatcher

from ..kernels.activation_codes import ACTIVATION_CODES
from ..kernels.cpu import blas, config, nn, optim, reduce
from ..kernels.cpu.aot import AotKernel
from . import host_buffers
from .base import LoweringRefused
from .optimizer_scalars import (adadelta_scalars, adagrad_scalars, adam_scalars, adamax_scalars, ftrl_scalars,
                                lion_scalars, nadam_scalars, rmsprop_scalars, sgd_scalars)

__all__ = ["Builder", "NN_EMITTERS", "Literal", "LoweringRefused", "Value", "as_array", "check_small", "given",
           "typed_constant", "typed_flag", "typed_int"]


class Value:
    """A value inside the generated function: its source text, the array the capture saw, and whether it is
    held as a numba scalar (0-d arrays are: numba returns and multiplies them as scalars)."""

    def __init__(self, code, example, scalar=False):
        self.code, self.example, self.scalar = code, example, scalar


class Literal:
    """A non-array argument: its captured value, and the Python expression that gives it on each step."""

    def __init__(self, value, python):
        self.value, self.python = value, python


def given(value):
    """Whether a primitive's optional argument was given (it is not None, nor a Literal None)."""
    return value is not None and not (isinstance(value, Literal) and value.value is None)


class Builder:
    """Collects the generated function's parameters, body and the Python wrapper's prelude."""

    def __init__(self):
        self.parameters, self.passed = [], []     # numba parameter names; the wrapper's expression for each
        self.body, self.prelude = [], []          # numba lines; wrapper lines before the call
        self.increment = []                       # the wrapper's first line: the optimizer's step count
        self.namespace = {"np": np, "_contiguous": np.ascontiguousarray}
        self.modules = {}                         # module name -> alias in the generated source
        self.flags = {}                           # the wrapper's flag expressions -> their parameters
        self.scalars = {}                         # (maker, its arguments) -> the parameters of its scalars
        self._names = 0

    def name(self, prefix):
        """A fresh name for the generated source, starting with ``prefix``."""
        self._names += 1
        return f"{prefix}{self._names}"

    def constant(self, value):
        """A name for ``value`` in the wrapper's namespace."""
        name = self.name("c")
        self.namespace[name] = value
        return name

    def pass_in(self, python, prefix="a"):
        """A numba parameter that the wrapper fills with the Python expression ``python`` on each step."""
        name = self.name(prefix)
        self.parameters.append(name)
        self.passed.append(python)
        return name

    def kernel(self, function):
        """The source text that names the numba kernel ``function`` (one of the kernel modules' own, or the
        ``AotKernel`` the backend's module proxies hand out for it)."""
        if isinstance(function, AotKernel):
            function = function.jit
        if not isinstance(function, CPUDispatcher):
            raise LoweringRefused(f"{function!r} is not a serial numba kernel")
        module, name = function.py_func.__module__, function.py_func.__name__
        if getattr(sys.modules.get(module), name, None) is not function:
            raise LoweringRefused(f"kernel {name} is not a module-level function of {module}")
        alias = self.modules.setdefault(module, f"m{len(self.modules)}")
        return f"{alias}.{name}"

    def call(self, function, *arguments):
        """Write a call of the kernel ``function`` with ``arguments`` (source texts) into the body."""
        self.body.append(f"    {self.kernel(function)}({', '.join(arguments)})")

    def new_array(self, shape, dtype, fill="empty"):
        """A fresh array inside the function; returns its name."""
        check_small(shape, dtype)
        name = self.name("t")
        self.body.append(f"    {name} = np.{fill}({tuple(int(s) for s in shape)!r}, np.{np.dtype(dtype).name})")
        return name


def check_small(shape, dtype):
    """Refuse (LoweringRefused) an array of ``shape`` that the backend would take from ``host_buffers`` or
    hand to a parallel kernel: lowered plans are small steps, all serial kernels."""
    size = int(np.prod(shape))
    if size * np.dtype(dtype).itemsize >= host_buffers.MIN_POOLED_BYTES or size >= config.PARALLEL_MIN_ELEMENTS:
        raise LoweringRefused(f"an array of shape {tuple(shape)} is large: the step's time is in its kernels, and "
                              "the Python replay reuses mapped host buffers for it")


def typed_flag(value):
    """A flag as the eager call passes it: a typed bool, not a literal (numba would compile the kernel anew for a
    literal argument)."""
    return f"np.bool_({bool(value)})"


def typed_int(value):
    """An integer argument (an activation code) as a typed int64, not a literal (see ``typed_flag``)."""
    return f"np.int64({int(value)})"


def typed_constant(dtype, value):
    """``value`` as a numba constant of ``dtype``, as the backend's ``_constants`` passes 0 and 1."""
    return f"np.{np.dtype(dtype).name}({float(value)!r})"


def as_array(value, what):
    """``value`` when it is an array the generated function holds; LoweringRefused naming ``what`` otherwise."""
    if not isinstance(value, Value) or value.scalar:
        raise LoweringRefused(f"{what} is not an array the plan made or reads")
    return value


# -- the primitives ---------------------------------------------------------------------------------
def _dense_forward(b, backend, x, w, bias, activation):
    x, w = as_array(x, "dense_forward's input"), as_array(w, "dense_forward's kernel")
    dtype = x.example.dtype
    n, k = x.example.shape
    m = w.example.shape[1]
    if not (n and k and m) or w.example.dtype != dtype:
        raise LoweringRefused("dense_forward of empty or mixed-dtype arrays")
    has_bias = bias.value is not None if isinstance(bias, Literal) else True
    bias_code = as_array(bias, "dense_forward's bias").code if has_bias else f"{w.code}[0]"
    code = ACTIVATION_CODES["none" if activation.value == "softmax" else activation.value]
    zero, one = typed_constant(dtype, 0), typed_constant(dtype, 1)
    out = b.new_array((n, m), dtype)
    if backend._dense_is_small(n, k, m):
        b.call(nn.dense_small, x.code, w.code, bias_code, typed_flag(has_bias), typed_int(code), out, zero, one)
    else:
        _gemm(b, x, w, out, False, False)
        kernel = backend._row_kernel("bias_activation", None, n, m)
        b.call(kernel, out, bias_code, typed_flag(has_bias), typed_int(code), zero, one)
    if activation.value == "softmax":
        _softmax_rows(b, backend, out, n, m, dtype)
    return Value(out, np.empty((n, m), dtype))


def _softmax_rows(b, backend, z, n, m, dtype):
    kernel = backend._row_kernel("softmax_rows", None, n, m)
    scratch = b.new_array((n, m), dtype), b.new_array((n, m), dtype)
    b.call(kernel, z, z, typed_constant(dtype, 1), typed_flag(dtype == np.float32), *scratch)


def _gemm(b, left, right, out, transpose_left, transpose_right):
    if not blas.AVAILABLE or config.gemm_route() != "blas":
        raise LoweringRefused("matrix products take numpy's matmul here (no bundled OpenBLAS, or NNENGINE_GEMM)")
    b.call(blas.gemm, left.code, right.code, out, typed_flag(transpose_left), typed_flag(transpose_right))


def _dense_backward(b, backend, x, w, out, grad_out, activation, need_grad_x):
    x, w = as_array(x, "dense_backward's input"), as_array(w, "dense_backward's kernel")
    out, grad_out = as_array(out, "dense_backward's output"), as_array(grad_out, "dense_backward's gradient")
    n, k = x.example.shape
    m = w.example.shape[1]
    dtype = x.example.dtype
    if not (n and k and m) or grad_out.example.shape != (n, m):
        raise LoweringRefused("dense_backward of empty arrays or a broadcast gradient")
    dz, grad_b = _activation_grad(b, out, grad_out, activation.value)
    grad_w = b.new_array((k, m), dtype)
    _gemm(b, x, Value(dz, None), grad_w, True, False)
    grad_x = None
    if need_grad_x.value:
        grad_x = b.new_array((n, k), dtype)
        _gemm(b, Value(dz, None), w, grad_x, False, True)
        grad_x = Value(grad_x, np.empty((n, k), dtype))
    return grad_x, Value(grad_w, np.empty((k, m), dtype)), Value(grad_b, np.empty(m, dtype))


def _activation_grad(b, out, grad_out, activation):
    """(dz, its column sums) of the 2-D ``out`` and ``grad_out`` (Values): the backend's fused kernel."""
    n, m = out.example.shape
    dtype = out.example.dtype
    if grad_out.example.shape != (n, m) or not n * m:
        raise LoweringRefused("an activation gradient of empty or broadcast arrays")
    dz, grad_b = b.new_array((n, m), dtype), b.new_array((m,), dtype, "zeros")
    b.call(nn.activation_grad, out.code, grad_out.code, typed_int(ACTIVATION_CODES[activation]), dz, grad_b,
           typed_constant(dtype, 0), typed_constant(dtype, 1))
    return dz, grad_b


def _activation_backward(b, backend, out, grad_out, activation, axis):
    out, grad_out = as_array(out, "the activation's output"), as_array(grad_out, "its gradient")
    shape = out.example.shape
    if not shape or activation.value == "softmax" and axis.value % len(shape) != len(shape) - 1:
        raise LoweringRefused("an activation gradient along another axis than the last")
    columns = shape[-1]
    rows = int(np.prod(shape)) // columns if columns else 0
    flat = [Value(f"{v.code}.reshape({rows}, {columns})", np.empty((rows, columns), v.example.dtype))
            for v in (out, grad_out)]
    dz, _ = _activation_grad(b, *flat, activation.value)
    name = b.name("t")
    b.body.append(f"    {name} = {dz}.reshape({tuple(shape)!r})")
    return Value(name, np.empty(shape, out.example.dtype))


def _softmax_cross_entropy(b, backend, logits, targets, need_grad):
    logits, targets = as_array(logits, "the logits"), as_array(targets, "the targets")
    n, classes = logits.example.shape
    dtype = logits.example.dtype
    if not (n and classes):
        raise LoweringRefused("softmax_cross_entropy of an empty batch")
    if targets.example.ndim == 2:
        serial, target_code = "softmax_cross_entropy_soft", targets.code
    else:
        serial, target_code = "softmax_cross_entropy_labels", targets.code
        if targets.example.dtype != np.int64:
            target_code = f"{targets.code}.astype(np.int64)"
    kernel = backend._row_kernel(serial, None, n, classes)
    losses, grad = b.new_array((n,), dtype), b.new_array((n, classes), dtype)
    scratch = b.new_array((n, classes), dtype), b.new_array((n, classes), dtype)
    b.call(kernel, logits.code, target_code, typed_flag(need_grad.value), losses, grad,
           typed_flag(dtype == np.float32), *scratch)
    return Value(losses, np.empty(n, dtype)), (Value(grad, np.empty((n, classes), dtype)) if need_grad.value else None)


def _sum(b, backend, x, axes, keepdims):
    x = as_array(x, "the summed array")
    example = x.example
    axes = tuple(sorted(axis % example.ndim for axis in axes.value)) if example.ndim else ()
    if example.dtype.kind != "f" or not example.size or not axes:
        raise LoweringRefused("only sums of non-empty float arrays are lowered")
    if len(axes) == example.ndim and not keepdims.value:
        return _total(b, x)
    if axes != (example.ndim - 1,):
        raise LoweringRefused("a sum over axes other than the last one")
    return _over_last_axis(b, x, reduce.sum_last, keepdims.value)


def _over_last_axis(b, x, kernel, keepdims):
    """A reduction of ``x`` over its last axis as the backend's (outer, reduced, 1) case takes it: ``kernel``
    (sum_last, max_last) on x's rows, the result in the reduction's shape."""
    example = x.example
    rows, columns = int(np.prod(example.shape[:-1])), example.shape[-1]
    shape = example.shape[:-1] + ((1,) if keepdims else ())
    out = b.new_array((rows,), example.dtype)
    b.call(kernel, f"{x.code}.reshape({rows}, {columns})", out)
    name = b.name("t")
    b.body.append(f"    {name} = {out}.reshape({tuple(shape)!r})")
    return Value(name, np.empty(shape, example.dtype))


def _max(b, backend, x, axes, keepdims):
    """The maximum over the last axis: ``reduce.max_last`` (``_over_last_axis``)."""
    x = as_array(x, "the reduced array")
    example = x.example
    axes = tuple(sorted(axis % example.ndim for axis in axes.value)) if example.ndim else ()
    if example.dtype.kind != "f" or not example.size or axes != (example.ndim - 1,) or example.ndim < 2:
        raise LoweringRefused("only maxima of float arrays over their last axis (of two axes or more) are lowered")
    return _over_last_axis(b, x, reduce.max_last, keepdims.value)


def _row_function(serial, *constant_values):
    """The emitter of softmax or log_softmax along the last axis: the backend's ``_rows_along`` with no axis to
    move, the row kernel its ``_row_kernel`` picks, and its constants typed in the array's dtype."""
    def emit(b, backend, x, axis):
        x = as_array(x, "the operand")
        example = x.example
        if example.dtype.kind != "f" or not example.size or axis.value % example.ndim != example.ndim - 1:
            raise LoweringRefused(f"{serial} of an empty array, or along an axis other than the last")
        dtype, rows, columns = example.dtype, example.size // example.shape[-1], example.shape[-1]
        out = b.new_array(example.shape, dtype)
        scratch = b.new_array((rows, columns), dtype), b.new_array((rows, columns), dtype)
        b.call(backend._row_kernel(serial, None, rows, columns), f"{x.code}.reshape({rows}, {columns})",
               f"{out}.reshape({rows}, {columns})", *(typed_constant(dtype, v) for v in constant_values),
               typed_flag(dtype == np.float32), *scratch)
        return Value(out, np.empty(example.shape, dtype))
    return emit


def _total(b, x):
    """The total of ``x`` as the backend sums it: numpy's pairwise sum when small, else the lanes kernel."""
    example = x.example
    name = b.name("s")
    if example.size <= config.NUMPY_MAX_ELEMENTS:
        b.body.append(f"    {name} = {b.kernel(reduce.numpy_total)}({x.code}.reshape(-1))")
    else:
        out = b.new_array((1,), example.dtype)
        b.call(reduce.sum_last, f"{x.code}.reshape(1, -1)", out)
        b.body.append(f"    {name} = {out}[0]")
    return Value(name, np.empty((), example.dtype), scalar=True)


def _argmax_matches(b, backend, predictions, targets):
    """The hits of an accuracy as the backend counts them: one kernel over (rows, classes) views."""
    predictions, targets = as_array(predictions, "the predictions"), as_array(targets, "the targets")
    shape = predictions.example.shape
    if len(shape) < 1 or not shape[-1] or not predictions.example.size:
        raise LoweringRefused("the hits of empty predictions")
    classes, out = shape[-1], b.new_array((1,), np.int64)
    if targets.example.ndim == len(shape) - 1:
        labels = targets.code if targets.example.dtype == np.int64 else f"{targets.code}.astype(np.int64)"
        b.call(reduce.argmax_matches_labels, f"{predictions.code}.reshape(-1, {classes})", f"{labels}.reshape(-1)",
               out)
    else:
        b.call(reduce.argmax_matches_rows, f"{predictions.code}.reshape(-1, {classes})",
               f"{targets.code}.reshape(-1, {classes})", out)
    name = b.name("s")
    b.body.append(f"    {name} = {out}[0]")
    return Value(name, np.empty((), np.int64), scalar=True)


def _reshape(b, backend, x, shape):
    x = as_array(x, "the reshaped array")
    name = b.name("t")
    b.body.append(f"    {name} = {x.code}.reshape({tuple(shape.value)!r})")
    return Value(name, x.example.reshape(shape.value))


def _transpose(b, backend, x, axes):
    """The transposed array, written contiguous: the eager view's consumers (reshape, the kernels) read the same
    values from either."""
    x = as_array(x, "the transposed array")
    name = b.name("t")
    b.body.append(f"    {name} = np.ascontiguousarray({x.code}.transpose({tuple(axes.value)!r}))")
    return Value(name, np.ascontiguousarray(x.example.transpose(axes.value)))


# -- optimizer updates: the kernels take flat views, and the scalars the optimizer_scalars makers give ----------
def _flat(value, dtype):
    if not given(value):
        return f"np.empty(0, np.{np.dtype(dtype).name})"
    return f"{as_array(value, 'an optimizer array').code}.reshape(-1)"


def _scalars(b, make, dtype, *literals):
    """The update's scalars, ``make(...)`` computed by the wrapper on each step in Python floats and cast to
    ``dtype`` inside the function: the values ``typed_scalars`` gives the eager update (a double rounded to
    float32 once, either way), without making numpy scalars on every step."""
    key = (make, tuple(literal.python for literal in literals))
    if key not in b.scalars:                 # one computation per step, whichever weights and dtypes share it
        held = b.name("k")
        b.prelude.append(f"    {held} = {b.constant(make)}(" + ", ".join(key[1]) + ")")
        count = len(make(*(literal.value for literal in literals)))
        b.scalars[key] = [b.pass_in(f"float({held}[{i}])") for i in range(count)]
    return [f"np.{np.dtype(dtype).name}({name})" for name in b.scalars[key]]


def _flag(b, literal):
    """A numba parameter for a flag the wrapper reads on each step (one per expression, however many use it)."""
    expression = f"bool({literal.python})"
    if expression not in b.flags:
        b.flags[expression] = b.pass_in(expression)
    return b.flags[expression]


def _update(b, kernel, arrays, scalars, flags):
    param = as_array(arrays[0], "an optimized weight")
    dtype = param.example.dtype
    check_small(param.example.shape, dtype)
    flats = [_flat(value, dtype) for value in arrays]
    b.call(kernel, *flats, *scalars, *flags)


def _adam_update_many(b, backend, params, grads, ms, vs, v_maxes, step, lr, beta_1, beta_2, epsilon, amsgrad,
                      weight_decay):
    if isinstance(v_maxes, Literal):           # a tuple of Nones (no AMSGrad) is a constant of the plan
        v_maxes = [Literal(value, "None") for value in v_maxes.value]
    for arrays in zip(params, grads, ms, vs, v_maxes):
        dtype = as_array(arrays[0], "an optimized weight").example.dtype
        scalars = _scalars(b, adam_scalars, dtype, step, lr, beta_1, beta_2, epsilon, weight_decay)
        _update(b, optim.adam, arrays, scalars, [_flag(b, amsgrad)])


def _adam_update(b, backend, param, grad, m, v, v_max, *scalars):
    _adam_update_many(b, backend, (param,), (grad,), (m,), (v,), (v_max,), *scalars)


def _flagless_update(kernel, make, array_count):
    """The emitter of an update whose kernel takes its ``array_count`` arrays and then ``make``'s scalars (no flags):
    Adagrad, Adamax, Nadam, Lion, Adadelta, FTRL. The primitive's arguments are those arrays, then ``make``'s."""
    def emit(b, backend, *arguments):
        arrays, literals = arguments[:array_count], arguments[array_count:]
        dtype = as_array(arrays[0], "an optimized weight").example.dtype
        _update(b, kernel, arrays, _scalars(b, make, dtype, *literals), [])
    return emit


def _sgd_update(b, backend, param, grad, velocity, lr, momentum, nesterov, weight_decay):
    dtype = as_array(param, "an optimized weight").example.dtype
    scalars = _scalars(b, sgd_scalars, dtype, lr, momentum, weight_decay)
    _update(b, optim.sgd, (param, grad, velocity), scalars, [_flag(b, momentum), _flag(b, nesterov)])


def _rmsprop_update(b, backend, param, grad, mean_square, mean_grad, velocity, lr, rho, momentum, epsilon, centered,
                    weight_decay):
    dtype = as_array(param, "an optimized weight").example.dtype
    scalars = _scalars(b, rmsprop_scalars, dtype, lr, rho, momentum, epsilon, weight_decay)
    positive = b.pass_in(f"({momentum.python}) > 0")
    _update(b, optim.rmsprop, (param, grad, mean_square, mean_grad, velocity), scalars,
            [_flag(b, centered), positive])


NN_EMITTERS = {
    "dense_forward": _dense_forward, "dense_backward": _dense_backward,
    "softmax_cross_entropy": _softmax_cross_entropy, "sum": _sum, "reshape": _reshape, "transpose": _transpose,
    "max": _max, "softmax": _row_function("softmax_rows", 1), "log_softmax": _row_function("log_softmax_rows"),
    "argmax_matches": _argmax_matches,
    "activation_backward": _activation_backward,
    "adam_update_many": _adam_update_many, "adam_update": _adam_update, "sgd_update": _sgd_update,
    "rmsprop_update": _rmsprop_update,
    "adagrad_update": _flagless_update(optim.adagrad, adagrad_scalars, 3),
    "adamax_update": _flagless_update(optim.adamax, adamax_scalars, 4),
    "nadam_update": _flagless_update(optim.nadam, nadam_scalars, 4),
    "lion_update": _flagless_update(optim.lion, lion_scalars, 3),
    "adadelta_update": _flagless_update(optim.adadelta, adadelta_scalars, 4),
    "ftrl_update": _flagless_update(optim.ftrl, ftrl_scalars, 4),
}
