"""The numba backend's recurrent primitives: a whole sequence forward, or back through time, in ONE kernel call of
``kernels/cpu/recurrent.py`` (each step's product with the recurrent kernel goes to BLAS inside the kernel).

Without the bundled OpenBLAS (``blas.AVAILABLE`` false: numpy built against MKL or Accelerate) the kernels cannot
make their products, and the primitives run the reference loop of ``recurrent_reference.py`` instead. With
recurrent dropout (``masks``) each gate's product is made from its own masked state, G products a step. Keras's mask
of padded steps (``step_mask``) goes to the kernels as a (T, n) array of the dtype.
"""
import numpy as np

from ..kernels.activation_codes import ACTIVATION_CODES
from ..kernels.cpu import blas_library
from ..kernels.cpu.aot import kernel_modules
from . import host_buffers
from .layout import zero_one
from .numpy_backend import NumpyBackend
from .recurrent_reference import CACHE_BLOCKS, GATES

recurrent, = kernel_modules("recurrent")      # imported (with numba) at first use

#: a sequence's arrays (states, cache, gradients) from this size up come from host_buffers' pool: every step
#: makes the same ones, and glibc gave 0.6-1 MB arrays back to the system and page-faulted them in anew on
#: the next step (an LSTM(64) step over 20 steps of 32 samples: 2.46 ms, 1.08 ms with its arrays pooled)
SEQUENCE_MIN_POOLED_BYTES = 64 << 10


def _sequence_array(shape, dtype):
    """A (steps, n, width) array from the pool; any other (the last state, the weights' gradients, which autograd
    hands to the weights and would copy out of a pooled buffer) numpy's own."""
    if len(shape) != 3:
        return np.empty(shape, dtype)
    return host_buffers.empty(shape, dtype, SEQUENCE_MIN_POOLED_BYTES)


def _same(value):
    return value


def forward_arguments(cell, shape, dtype, p, kernel, bias, activation, recurrent_activation, reverse, reset_after,
                      masks, new, flag=_same, integer=_same, step_mask=None, initial_state=None):
    """(kernel name, arguments, (states, last, cache)) of a forward call over a sequence of ``shape`` (T, n, u).

    Shared by the backend and its lowering (numba_emitters.py), which pass their own ``new(shape, dtype)`` for
    each output and ``flag``/``integer`` for the flags and activation codes (the arrays are theirs too)."""
    steps, n, units = shape
    states, last = new((steps, n, units), dtype), new((n, units), dtype)
    cache = new((steps, n, CACHE_BLOCKS[cell] * units), dtype)
    codes = integer(ACTIVATION_CODES[activation]), integer(ACTIVATION_CODES[recurrent_activation])
    outputs = (states, last, cache)
    step = (flag(reverse), *_masks(masks, new, dtype, flag), *_step_mask(step_mask, new, dtype, flag),
            *_initial(cell, initial_state, new, dtype, flag))
    if cell == "simple_rnn":
        return "simple_rnn_forward", (p, kernel, codes[0], *step, states, last), outputs
    if cell == "lstm":
        return "lstm_forward", (p, kernel, *codes, *step, states, last, cache), outputs
    if not reset_after:
        return "gru_forward_reset_before", (p, kernel, *codes, *step, states, last, cache), outputs
    bias_array = bias if bias is not None else new((2, 3 * units), dtype)       # never read without a bias
    return "gru_forward", (p, kernel, bias_array, flag(bias is not None), *codes, *step, states, last, cache), outputs


def _masks(masks, new, dtype, flag):
    """(masks, has_masks) as the kernels take them: an array never read stands in for None."""
    return (masks, flag(True)) if masks is not None else (new((1, 1, 1), dtype), flag(False))


def _step_mask(step_mask, new, dtype, flag):
    """(step_mask, has_step_mask) as the kernels take them: an unread (1, 1) array stands in for None."""
    return (step_mask, flag(True)) if step_mask is not None else (new((1, 1), dtype), flag(False))


def _initial(cell, initial_state, new, dtype, flag):
    """(initial, [initial_c,] has_initial) as the kernels take them: unread (1, 1) arrays stand in for None."""
    count = 2 if cell == "lstm" else 1
    if initial_state is None:
        return (*(new((1, 1), dtype) for _ in range(count)), flag(False))
    return (*initial_state[:count], flag(True))


def _initial_gradients(cell, shape, has_initial, new, dtype):
    """The arrays the backward writes the initial state's gradient to ((n, u) each), or unread (1, 1) ones."""
    size = shape[1:] if has_initial else (1, 1)
    return tuple(new(size, dtype) for _ in range(2 if cell == "lstm" else 1))


def backward_arguments(cell, shape, dtype, kernel, has_bias, states, cache, grad, all_steps, activation,
                       recurrent_activation, reverse, reset_after, masks, new, flag=_same, integer=_same,
                       step_mask=None, initial_state=None, d_last_cell=None):
    """(kernel name, arguments, (dp, d_kernel, d_bias, dh0, dc0)) of a backward call; ``grad`` is (T, n, u) with
    ``all_steps``, else (1, n, u): the last state's gradient only. See ``forward_arguments``."""
    steps, n, units = shape
    width = GATES[cell] * units
    dz, dp, d_kernel = new((steps, n, width), dtype), new((steps, n, width), dtype), new((units, width), dtype)
    codes = integer(ACTIVATION_CODES[activation]), integer(ACTIVATION_CODES[recurrent_activation])
    common = (kernel, states, cache, grad, flag(all_steps))
    step = (flag(reverse), *_masks(masks, new, dtype, flag), *_step_mask(step_mask, new, dtype, flag),
            *_initial(cell, initial_state, new, dtype, flag))
    d_initial = _initial_gradients(cell, shape, initial_state is not None, new, dtype)
    given = (*d_initial, None)[:2] if initial_state is not None else (None, None)     # (dh0, dc0 or None)
    if cell == "simple_rnn":
        return ("simple_rnn_backward", (kernel, states, grad, flag(all_steps), codes[0], *step, dz, dp, d_kernel,
                                        *d_initial), (dp, d_kernel, None, *given))
    if cell == "lstm":
        last_cell = (d_last_cell, flag(True)) if d_last_cell is not None else (new((1, 1), dtype), flag(False))
        return ("lstm_backward", (*common, *codes, *step, *last_cell, dz, dp, d_kernel, *d_initial),
                (dp, d_kernel, None, *given))
    if not reset_after:
        return ("gru_backward_reset_before", (*common, *codes, *step, dz, dp, d_kernel, *d_initial),
                (dp, d_kernel, None, *given))
    dq, d_bias = new((steps, n, width), dtype), new((2, 3 * units), dtype)
    return ("gru_backward", (*common, *codes, *step, dz, dq, dp, d_kernel, d_bias, flag(has_bias), *d_initial),
            (dp, d_kernel, d_bias if has_bias else None, *given))


def _contiguous(array):
    """A C-contiguous ``array`` (the kernels index them so), or None."""
    return None if array is None else np.ascontiguousarray(array)


def _contiguous_all(arrays):
    """A tuple of C-contiguous arrays, or None."""
    return None if arrays is None else tuple(np.ascontiguousarray(array) for array in arrays)


class NumbaRecurrentPrimitives(NumpyBackend):
    """``recurrent_forward`` and ``recurrent_backward`` on the kernels of kernels/cpu/recurrent.py."""

    def recurrent_forward(self, cell, p, kernel, bias, activation, recurrent_activation, reverse, reset_after,
                          masks=None, step_mask=None, initial_state=None):
        if not blas_library.AVAILABLE:
            return super().recurrent_forward(cell, p, kernel, bias, activation, recurrent_activation, reverse,
                                             reset_after, masks, step_mask, initial_state)
        p, kernel = np.ascontiguousarray(p), np.ascontiguousarray(kernel)
        bias, masks = _contiguous(bias), _contiguous(masks)
        name, arguments, outputs = forward_arguments(cell, (*p.shape[:2], kernel.shape[0]), p.dtype, p, kernel, bias,
                                                     activation, recurrent_activation, reverse, reset_after, masks,
                                                     _sequence_array, step_mask=_contiguous(step_mask),
                                                     initial_state=_contiguous_all(initial_state))
        getattr(recurrent, name)(*arguments, *zero_one(p.dtype))
        return outputs

    def recurrent_backward(self, cell, kernel, bias, states, cache, grad, activation, recurrent_activation,
                           reverse, reset_after, masks=None, step_mask=None, initial_state=None, d_last_cell=None):
        if not blas_library.AVAILABLE:
            return super().recurrent_backward(cell, kernel, bias, states, cache, grad, activation,
                                              recurrent_activation, reverse, reset_after, masks, step_mask,
                                              initial_state, d_last_cell)
        all_steps = grad.ndim == 3
        grad = np.ascontiguousarray(grad).reshape(-1, *states.shape[1:])
        masks = _contiguous(masks)
        name, arguments, outputs = backward_arguments(cell, states.shape, states.dtype, np.ascontiguousarray(kernel),
                                                      bias is not None, states, cache, grad, all_steps, activation,
                                                      recurrent_activation, reverse, reset_after, masks,
                                                      _sequence_array, step_mask=_contiguous(step_mask),
                                                      initial_state=_contiguous_all(initial_state),
                                                      d_last_cell=_contiguous(d_last_cell))
        getattr(recurrent, name)(*arguments, *zero_one(states.dtype))
        return outputs

    recurrent_forward.__doc__ = NumpyBackend.recurrent_forward.__doc__
    recurrent_backward.__doc__ = NumpyBackend.recurrent_backward.__doc__
