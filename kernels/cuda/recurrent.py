"""Launchers for recurrent.cu: one step of a recurrent cell over its n x u cells (a grid-stride loop).

Each takes C-contiguous cupy arrays (outputs allocated by the caller, written at step ``k``), the step ``k`` and
the input step ``t`` it reads, and passes sizes, flags and activation codes as int64, as the kernels declare them.
"""
import numpy as np

from ..activation_codes import activation_code
from . import launch, loader

SOURCE = "recurrent.cu"

_i = np.int64


def _launch(kernel, n, units, dtype, *arguments):
    grid, block = launch.grid_stride(n * units)
    loader.function(SOURCE, kernel, dtype)(grid, block, tuple(_i(a) if isinstance(a, (int, bool, np.integer)) else a
                                                               for a in arguments))


def _code(name):
    return activation_code(name)


def rnn_step(p, q, states, t, k, activation):
    """states[k] = act(p[t] + q)."""
    n, units = q.shape
    _launch("rnn_step", n, units, p.dtype, p, q, states, t, k, n, units, _code(activation))


def lstm_step(p, q, cache, states, t, k, activation, recurrent_activation):
    """One LSTM step: states[k] and cache[k] (gates, c, act(c)) from p[t] + q and the carry in cache[k-1]."""
    n, units = states.shape[1:]
    _launch("lstm_step", n, units, p.dtype, p, q, cache, states, t, k, n, units, _code(activation),
            _code(recurrent_activation))


def gru_step(p, q, bias, cache, states, t, k, activation, recurrent_activation):
    """One GRU step with reset_after; ``bias`` (2, 3u) or None."""
    n, units = states.shape[1:]
    _launch("gru_step", n, units, p.dtype, p, q, q if bias is None else bias, cache, states, t, k, n, units,
            bias is not None, _code(activation), _code(recurrent_activation))


def gru_gates_step(p, q, cache, states, reset_state, t, k, recurrent_activation):
    """A GRU step without reset_after, first half: the gates from q = h' @ U_zr, and r * h'."""
    n, units = states.shape[1:]
    _launch("gru_gates_step", n, units, p.dtype, p, q, cache, states, reset_state, t, k, n, units,
            _code(recurrent_activation))


def gru_candidate_step(p, product, cache, states, t, k, activation):
    """... second half: the candidate from product = (r * h') @ U_n, and the state."""
    n, units = states.shape[1:]
    _launch("gru_candidate_step", n, units, p.dtype, p, product, cache, states, t, k, n, units, _code(activation))


def rnn_step_backward(states, grad, dh_next, dz, k, all_steps, activation):
    """dz[k] = act'(h_k) (grad_k + dh_next)."""
    steps, n, units = states.shape
    _launch("rnn_step_backward", n, units, states.dtype, states, grad, dh_next, dz, k, steps, n, units, all_steps,
            _code(activation))


def lstm_step_backward(cache, grad, dh_next, dc_next, dz, k, all_steps, activation, recurrent_activation):
    """dz[k] of an LSTM step; ``dc_next`` becomes the carry's gradient of the step before, in place."""
    steps, n = cache.shape[:2]
    units = dh_next.shape[1]
    _launch("lstm_step_backward", n, units, cache.dtype, cache, grad, dh_next, dc_next, dz, k, steps, n, units,
            all_steps, _code(activation), _code(recurrent_activation))


def gru_step_backward(states, cache, grad, dh_next, dz, dq, direct, k, all_steps, activation, recurrent_activation):
    """dz[k], dq[k] and the direct part of dL/dh' of a GRU step with reset_after."""
    steps, n, units = states.shape
    _launch("gru_step_backward", n, units, states.dtype, states, cache, grad, dh_next, dz, dq, direct, k, steps, n,
            units, all_steps, _code(activation), _code(recurrent_activation))


def gru_candidate_step_backward(states, cache, grad, dh_next, dz, d_candidates, direct, k, all_steps, activation,
                                recurrent_activation):
    """A GRU step without reset_after, first half of its backward."""
    steps, n, units = states.shape
    _launch("gru_candidate_step_backward", n, units, states.dtype, states, cache, grad, dh_next, dz, d_candidates,
            direct, k, steps, n, units, all_steps, _code(activation), _code(recurrent_activation))


def gru_reset_step_backward(states, cache, d_reset_state, dz, direct, k, recurrent_activation):
    """... second half, from d_reset_state = d_candidates @ U_n^T."""
    steps, n, units = states.shape
    _launch("gru_reset_step_backward", n, units, states.dtype, states, cache, d_reset_state, dz, direct, k, n, units,
            _code(recurrent_activation))
