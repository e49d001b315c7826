"""The lowering of the numba backend's recurrent primitives (numba_lowering.py): ``recurrent_forward`` and
``recurrent_backward`` written as the calls of ``kernels/cpu/recurrent.py`` the eager primitives make (their
arguments from ``numba_recurrent.forward_arguments``/``backward_arguments``, shared with the backend), the
step mask, the initial states and the last carry's gradient passed as the arrays the plan holds.

Recurrent dropout's state masks are arrays of the plan like the others (the step's inputs: dropout_masks.py
draws them before each step). Refused (the plan keeps its Python replay): a missing bundled BLAS, and sequence
arrays the backend takes from its pool (made anew each step, they would page-fault).
"""
import math

import numpy as np

from ..kernels.cpu import blas, recurrent
from .numba_emitters import LoweringRefused, Value, as_array, given, typed_constant, typed_flag, typed_int
from .numba_recurrent import SEQUENCE_MIN_POOLED_BYTES, backward_arguments, forward_arguments

__all__ = ["RECURRENT_EMITTERS"]


def _sequence_buffer(b, shape, dtype):
    """A new array of the generated function; refused for one the backend pools (made anew, it page-faults)."""
    if len(shape) == 3 and math.prod(shape) * np.dtype(dtype).itemsize >= SEQUENCE_MIN_POOLED_BYTES:
        raise LoweringRefused("a sequence's arrays come from the reused pool (the plan keeps its Python replay)")
    return b.new_array(shape, dtype)


def _recurrent_start(b, bias):
    """Refuse what the recurrent kernels' lowering does not write; return (has a bias, ``new``: a fresh Value)."""
    if not blas.AVAILABLE:
        raise LoweringRefused("the recurrent kernels need the bundled BLAS")

    def new(shape, dtype):
        return Value(_sequence_buffer(b, shape, dtype), np.empty(shape, dtype))
    return given(bias), new


def _recurrent_call(b, name, arguments, outputs, dtype):
    """Write the kernel call (arrays as their names, the typed 0 and 1 last); return its outputs."""
    codes = [a.code if isinstance(a, Value) else a for a in arguments]
    b.call(getattr(recurrent, name), *codes, typed_constant(dtype, 0), typed_constant(dtype, 1))
    return outputs


def _array_code(value, what):
    """An optional array argument as the generated code names it, contiguous (a tuple of them for a list: the
    initial states), or None."""
    if not given(value):
        return None
    if isinstance(value, list):
        return tuple(_array_code(item, what) for item in value)
    return f"np.ascontiguousarray({as_array(value, what).code})"


def _recurrent_forward(b, backend, cell, p, kernel, bias, activation, recurrent_activation, reverse, reset_after,
                       masks=None, step_mask=None, initial_state=None):
    has_bias, new = _recurrent_start(b, bias)
    p, kernel = as_array(p, "the projected inputs"), as_array(kernel, "the recurrent kernel")
    dtype = p.example.dtype
    shape = (*p.example.shape[:2], kernel.example.shape[0])
    name, arguments, outputs = forward_arguments(
        cell.value, shape, dtype, f"np.ascontiguousarray({p.code})", f"np.ascontiguousarray({kernel.code})",
        f"np.ascontiguousarray({as_array(bias, 'the bias').code})" if has_bias else None,
        activation.value, recurrent_activation.value, reverse.value, reset_after.value,
        _array_code(masks, "the state masks"), new, typed_flag, typed_int, _array_code(step_mask, "the step mask"),
        _array_code(initial_state, "an initial state"))
    return _recurrent_call(b, name, arguments, outputs, dtype)


def _recurrent_backward(b, backend, cell, kernel, bias, states, cache, grad, activation, recurrent_activation,
                        reverse, reset_after, masks=None, step_mask=None, initial_state=None, d_last_cell=None):
    has_bias, new = _recurrent_start(b, bias)
    kernel, states = as_array(kernel, "the recurrent kernel"), as_array(states, "the states")
    cache, grad = as_array(cache, "the cache"), as_array(grad, "the states' gradient")
    shape, dtype = states.example.shape, states.example.dtype
    grad_code = b.name("t")
    b.body.append(f"    {grad_code} = np.ascontiguousarray({grad.code}).reshape((-1, {shape[1]}, {shape[2]}))")
    name, arguments, outputs = backward_arguments(
        cell.value, shape, dtype, f"np.ascontiguousarray({kernel.code})", has_bias, states.code, cache.code, grad_code,
        grad.example.ndim == 3, activation.value, recurrent_activation.value, reverse.value, reset_after.value,
        _array_code(masks, "the state masks"), new, typed_flag, typed_int, _array_code(step_mask, "the step mask"),
        _array_code(initial_state, "an initial state"), _array_code(d_last_cell, "the last carry's gradient"))
    return _recurrent_call(b, name, arguments, outputs, dtype)


RECURRENT_EMITTERS = {"recurrent_forward": _recurrent_forward, "recurrent_backward": _recurrent_backward}
