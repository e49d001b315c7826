"""The CUDA backend's recurrent primitives: a sequence as a loop of steps, each a product with the recurrent kernel
(``matmul``: cuBLAS, or gemm.cu while a CUDA Graph is captured) and ONE kernel of ``kernels/cuda/recurrent.cu``
over the step's cells (two of each for a GRU without reset_after). Nothing in the loop reads back to the host,
so a captured step replays as one graph. The weight gradients at the end are the reference's own
(``recurrent_reference.gradients``: one product over every step). A training step with recurrent dropout
(``masks``: never compiled), with Keras's mask of padded steps (``step_mask``), or with a given initial state or
the LSTM's last carry handed on (Keras's ``initial_state`` and ``return_state``), runs the reference loop on
CuPy's operations.
"""
from ..kernels.cuda import recurrent
from .base import Backend
from .layout import contiguous
from .recurrent_reference import CACHE_BLOCKS, GATES, gradients


def _reset_before_halves(cell, reset_after, kernel, units):
    """A GRU without reset_after multiplies h' by U_zr and r * h' by U_n: the two, contiguous; else None."""
    if cell != "gru" or reset_after:
        return None
    return contiguous(kernel[:, :2 * units]), contiguous(kernel[:, 2 * units:])


class CupyRecurrentPrimitives(Backend):
    """``recurrent_forward`` and ``recurrent_backward`` on kernels/cuda/recurrent.cu (``self.cupy`` is CuPy)."""

    def recurrent_forward(self, cell, p, kernel, bias, activation, recurrent_activation, reverse, reset_after,
                          masks=None, step_mask=None, initial_state=None):
        if masks is not None or step_mask is not None or initial_state is not None:
            return super().recurrent_forward(cell, p, kernel, bias, activation, recurrent_activation, reverse,
                                             reset_after, masks, step_mask, initial_state)
        p, kernel = contiguous(p), contiguous(kernel)
        bias = None if bias is None else contiguous(bias)
        steps, n, _ = p.shape
        units, dtype = kernel.shape[0], p.dtype
        states = self.cupy.empty((steps, n, units), dtype)
        cache = self.cupy.empty((steps, n, CACHE_BLOCKS[cell] * units), dtype)
        h = self.full((n, units), 0, dtype)
        halves = _reset_before_halves(cell, reset_after, kernel, units)
        reset_state = self.cupy.empty((n, units), dtype) if halves else None
        for k in range(steps):
            t = steps - 1 - k if reverse else k
            if halves:
                recurrent.gru_gates_step(p, self.matmul(h, halves[0]), cache, states, reset_state, t, k,
                                         recurrent_activation)
                recurrent.gru_candidate_step(p, self.matmul(reset_state, halves[1]), cache, states, t, k, activation)
            elif cell == "gru":
                recurrent.gru_step(p, self.matmul(h, kernel), bias, cache, states, t, k, activation,
                                   recurrent_activation)
            elif cell == "lstm":
                recurrent.lstm_step(p, self.matmul(h, kernel), cache, states, t, k, activation, recurrent_activation)
            else:
                recurrent.rnn_step(p, self.matmul(h, kernel), states, t, k, activation)
            h = states[k]
        return states, self.copy(h), cache

    def recurrent_backward(self, cell, kernel, bias, states, cache, grad, activation, recurrent_activation,
                           reverse, reset_after, masks=None, step_mask=None, initial_state=None, d_last_cell=None):
        if masks is not None or step_mask is not None or initial_state is not None or d_last_cell is not None:
            return super().recurrent_backward(cell, kernel, bias, states, cache, grad, activation,
                                              recurrent_activation, reverse, reset_after, masks, step_mask,
                                              initial_state, d_last_cell)
        kernel, states, cache, grad = contiguous(kernel), contiguous(states), contiguous(cache), contiguous(grad)
        steps, n, units = states.shape
        dtype, all_steps = states.dtype, grad.ndim == 3
        dz = self.cupy.empty((steps, n, GATES[cell] * units), dtype)
        dq = self.cupy.empty((steps, n, GATES[cell] * units), dtype) if cell == "gru" else None
        dh_next, dc_next = self.full((n, units), 0, dtype), self.full((n, units), 0, dtype)
        direct, d_candidates = self.cupy.empty((n, units), dtype), self.cupy.empty((n, units), dtype)
        halves = _reset_before_halves(cell, reset_after, kernel, units)
        for k in range(steps - 1, -1, -1):
            if halves:
                recurrent.gru_candidate_step_backward(states, cache, grad, dh_next, dz, d_candidates, direct, k,
                                                      all_steps, activation, recurrent_activation)
                d_reset_state = self.matmul(d_candidates, halves[1], transpose_b=True)
                recurrent.gru_reset_step_backward(states, cache, d_reset_state, dz, direct, k, recurrent_activation)
                if k > 0:
                    dh_next = self.add(direct, self.matmul(contiguous(dz[k, :, :2 * units]), halves[0],
                                                           transpose_b=True))
            elif cell == "gru":
                recurrent.gru_step_backward(states, cache, grad, dh_next, dz, dq, direct, k, all_steps, activation,
                                            recurrent_activation)
                if k > 0:
                    dh_next = self.add(direct, self.matmul(dq[k], kernel, transpose_b=True))
            else:
                if cell == "lstm":
                    recurrent.lstm_step_backward(cache, grad, dh_next, dc_next, dz, k, all_steps, activation,
                                                 recurrent_activation)
                else:
                    recurrent.rnn_step_backward(states, grad, dh_next, dz, k, all_steps, activation)
                if k > 0:
                    dh_next = self.matmul(dz[k], kernel, transpose_b=True)
        if halves:
            dq = dz         # the z and r blocks of dz are q's gradient (reference: gradients())
        return (*gradients(self, cell, states, cache, dz, dq, bias, reverse, reset_after), None, None)

    recurrent_forward.__doc__ = Backend.recurrent_forward.__doc__
    recurrent_backward.__doc__ = Backend.recurrent_backward.__doc__
