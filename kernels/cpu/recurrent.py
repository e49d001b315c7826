"""numba kernels of the recurrent layers: a whole sequence forward, and back through time, in one call each.

The formulas and the layout are those of ``nnengine/backends/recurrent_reference.py`` (the specification these
kernels are tested against): time-major ``p`` (T, n, G*u) of projected inputs, ``states`` (T, n, u) in step
order, ``cache`` (T, n, B*u) of what backward needs; the backward kernels take their per-step gradients'
scratch ``dz`` (and the GRU's ``dq``), (T, n, G*u), from the caller, which reuses that memory. Each step
makes one matrix product with the recurrent kernel through BLAS (``blas.gemm``: only called when
``blas.AVAILABLE``) and one pass over its n x u cells for the gates; the state before step 0 is a zero
array, multiplied like any other (as Keras does), or with ``has_initial`` the ``initial`` state (n, u) given
(and the LSTM's ``initial_c``). The backward kernels then write that state's gradient (``d_initial``,
``d_initial_c``) and add the first step's share h0^T dq_0 to the recurrent kernel's; the LSTM's also starts
from the gradient of its last carry c_T (``d_last_cell``, with ``has_d_last_cell``). Arrays never read stand
in, (1, 1), for the ones a call does not have.

Activation codes are kernels/activation_codes.py's: none, relu, sigmoid, tanh. The derivatives are written
from the activation's output y, as Backend.activation_backward writes them: g * y * (1 - y), g * (1 - y^2),
g where y > 0.

``step_mask`` (T, n) of the dtype, with ``has_step_mask``, is Keras's mask of padded steps in p's order (1: the step
holds data): a padded step keeps the previous state (and c), ``h = h'``, and its backward hands the state's
gradient to the previous state unchanged and none to the cell. Without it, an unread (1, 1) array stands in.

The module is one piece (a little over 500 lines): the eight kernels share their inlined helpers, and each
cell's forward is best read next to its backward.
"""
import math

import numpy as np

from ..activation_codes import ACTIVATION_CODES
from .blas import gemm
from .elementwise import exp32, sigmoid_scalar
from .jit import njit

NONE, RELU, SIGMOID, TANH = (ACTIVATION_CODES[name] for name in ("none", "relu", "sigmoid", "tanh"))


@njit(inline="always")
def _act(v, code, zero, one):
    if code == SIGMOID:
        return sigmoid_scalar(v, one)
    if code == TANH:
        return math.tanh(v)
    if code == RELU:
        return v if not v <= zero else zero
    return v


@njit(inline="always")
def _act_grad(y, g, code, zero, one):
    """dL/dz from y = act(z) and g = dL/dy."""
    if code == SIGMOID:
        return g * y * (one - y)
    if code == TANH:
        return g * (one - y * y)
    if code == RELU:
        return g if y > zero else zero
    return g


@njit(inline="always")
def _step_index(k, steps, reverse):
    return steps - 1 - k if reverse else k


@njit(inline="always")
def _kept(step_mask, has_step_mask, t, i, zero):
    """Whether step t of sample i holds data (it does unless Keras's mask says it is padding)."""
    return not has_step_mask or step_mask[t, i] != zero


@njit(inline="always")
def _hold_padded(step_mask, has_step_mask, t, previous, state, zero):
    """state[i] = previous[i] for each sample i whose step t is padding: the state carries over."""
    if has_step_mask:
        for i in range(state.shape[0]):
            if step_mask[t, i] == zero:
                state[i] = previous[i]


@njit(inline="always")
def _add_carried(carried, dh_next):
    """dh_next += carried: the gradient that padded steps hand back unchanged."""
    for i in range(dh_next.shape[0]):
        for j in range(dh_next.shape[1]):
            dh_next[i, j] += carried[i, j]


@njit(inline="always")
def _copy_or_zeros(initial, has_initial, n, units, like):
    """A copy of ``initial`` (n, u) when given, else zeros: the state before step 0, or the LSTM's dc at the
    last step."""
    previous = np.zeros((n, units), like.dtype)
    if has_initial:
        previous[:] = initial
    return previous


@njit(inline="always")
def _c_before(cache, k, i, j, units, initial_c, has_initial, zero):
    """The LSTM's carry c' that step k of sample i reads: the step before's (cache block 4), or the initial one."""
    if k > 0:
        return cache[k - 1, i, 4 * units + j]
    return initial_c[i, j] if has_initial else zero


@njit(inline="always")
def _add_first_step(initial, dq, masks, has_masks, blocks, d_kernel):
    """d_kernel's first ``blocks`` gate blocks += h0^T dq[0] block by block (with recurrent-dropout ``masks``,
    (h0 * masks[g])^T dq[0]_g): the first step's share of dU, when the state before it is not zero."""
    n, units = initial.shape
    state = np.empty((n, units), initial.dtype)
    block = np.empty((n, units), initial.dtype)
    part = np.empty((units, units), initial.dtype)
    for g in range(blocks):
        for i in range(n):
            for c in range(units):
                state[i, c] = initial[i, c] * masks[g, i, c] if has_masks else initial[i, c]
                block[i, c] = dq[0, i, g * units + c]
        gemm(state, block, part, True, False)
        for a in range(units):
            for c in range(units):
                d_kernel[a, g * units + c] += part[a, c]


@njit(inline="always")
def _step_grad(grad, all_steps, k, steps, i, j, zero):
    """dL/dh_k[i, j] from outside the recurrence: grad[k] of every state, or of the last one only."""
    if all_steps:
        return grad[k, i, j]
    return grad[0, i, j] if k == steps - 1 else zero


# -- forward ------------------------------------------------------------------------------------------------------
@njit(inline="always")
def _squash(v, code, fast, work, zero, one):
    """v = act(v) in place, v a contiguous row. ``fast`` (float32): sigmoid and tanh through the vectorised exp32,
    sigmoid(v) = 1 / (1 + e^-v) and tanh(v) = 2 / (1 + e^-2v) - 1 (libm's tanhf, a scalar call, took 14 ns an
    element); ``work`` is (3, at least v.size) scratch."""
    m = v.size
    if fast and (code == SIGMOID or code == TANH):
        scale = one if code == SIGMOID else one + one
        negated, e, spare = work[0, :m], work[1, :m], work[2, :m]
        for j in range(m):
            negated[j] = -(scale * v[j])
        exp32(negated, e, spare)
        shift = zero if code == SIGMOID else one
        for j in range(m):
            v[j] = scale / (one + e[j]) - shift
    else:
        for j in range(m):
            v[j] = _act(v[j], code, zero, one)


@njit(inline="always")
def _pre_activations(x, q, z):
    """z = x + q, row by row (x is a step of p: its rows are contiguous)."""
    for i in range(z.shape[0]):
        for c in range(z.shape[1]):
            z[i, c] = x[i, c] + q[i, c]


@njit(inline="always")
def _kernel_blocks(kernel, units):
    """The kernel's gate blocks, each contiguous: (G, u, u) (recurrent dropout multiplies them one by one)."""
    gates = kernel.shape[1] // units
    blocks = np.empty((gates, units, units), kernel.dtype)
    for g in range(gates):
        blocks[g] = kernel[:, g * units:(g + 1) * units]
    return blocks


@njit(inline="always")
def _state_product(previous, whole, blocks, masks, has_masks, first, q):
    """q = h' @ U for the gate blocks from ``first`` on (``whole``: those blocks, contiguous): ONE product, or
    with recurrent-dropout ``masks`` each block from its own masked state, (h' * masks[g]) @ U_g."""
    if not has_masks:
        gemm(previous, whole, q, False, False)
        return
    n, units = previous.shape
    masked = np.empty((n, units), previous.dtype)
    part = np.empty((n, units), previous.dtype)
    for j in range(q.shape[1] // units):
        for i in range(n):
            for c in range(units):
                masked[i, c] = previous[i, c] * masks[first + j, i, c]
        gemm(masked, blocks[first + j], part, False, False)
        q[:, j * units:(j + 1) * units] = part


@njit(inline="always")
def _state_gradient(dq, whole, blocks, masks, has_masks, first, dh):
    """dh = dL/dh' through ``_state_product``: dq @ whole^T, or the sum over blocks of (dq_g @ U_g^T) * masks[g]."""
    if not has_masks:
        gemm(np.ascontiguousarray(dq), whole, dh, False, True)
        return
    n, units = dh.shape
    block = np.empty((n, units), dh.dtype)
    part = np.empty((n, units), dh.dtype)
    dh[:] = 0
    for j in range(dq.shape[1] // units):
        block[:] = dq[:, j * units:(j + 1) * units]
        gemm(block, blocks[first + j], part, False, True)
        for i in range(n):
            for c in range(units):
                dh[i, c] += part[i, c] * masks[first + j, i, c]


@njit(cache=True, error_model="numpy")
def simple_rnn_forward(p, kernel, activation, reverse, masks, has_masks, step_mask, has_step_mask, initial,
                       has_initial, states, last, zero, one):
    """states[k] = act(p[t] + states[k-1] @ kernel); last = the final state."""
    steps, n, units = states.shape
    fast = p.itemsize == 4                     # float32: the vectorised exp
    blocks = _kernel_blocks(kernel, units)
    q = np.empty((n, units), p.dtype)
    work = np.empty((3, units), p.dtype)
    previous = _copy_or_zeros(initial, has_initial, n, units, p)
    for k in range(steps):
        _state_product(previous, kernel, blocks, masks, has_masks, 0, q)
        _pre_activations(p[_step_index(k, steps, reverse)], q, states[k])
        for i in range(n):
            _squash(states[k, i], activation, fast, work, zero, one)
        _hold_padded(step_mask, has_step_mask, _step_index(k, steps, reverse), previous, states[k], zero)
        previous = states[k]
    last[:] = previous


@njit(cache=True, error_model="numpy")
def lstm_forward(p, kernel, activation, recurrent_activation, reverse, masks, has_masks, step_mask, has_step_mask,
                 initial, initial_c, has_initial, states, last, cache, zero, one):
    """Gates i, f, g, o of p[t] + h' @ kernel; c = f * c' + i * g; h = o * act(c); cache [i f g o c act(c)]."""
    steps, n, units = states.shape
    fast = p.itemsize == 4                     # float32: the vectorised exp
    blocks = _kernel_blocks(kernel, units)
    q = np.empty((n, 4 * units), p.dtype)
    work = np.empty((3, 2 * units), p.dtype)
    previous = _copy_or_zeros(initial, has_initial, n, units, p)
    for k in range(steps):
        _state_product(previous, kernel, blocks, masks, has_masks, 0, q)
        row_block = cache[k]
        _pre_activations(p[_step_index(k, steps, reverse)], q, row_block[:, :4 * units])
        for i in range(n):
            row = row_block[i]
            _squash(row[:2 * units], recurrent_activation, fast, work, zero, one)        # i, f
            _squash(row[2 * units:3 * units], activation, fast, work, zero, one)          # g
            _squash(row[3 * units:4 * units], recurrent_activation, fast, work, zero, one)  # o
            for j in range(units):
                c_prev = _c_before(cache, k, i, j, units, initial_c, has_initial, zero)
                c = row[units + j] * c_prev + row[j] * row[2 * units + j]
                row[4 * units + j] = c
                row[5 * units + j] = c
            _squash(row[5 * units:], activation, fast, work, zero, one)
            for j in range(units):
                states[k, i, j] = row[3 * units + j] * row[5 * units + j]
            if not _kept(step_mask, has_step_mask, _step_index(k, steps, reverse), i, zero):
                for j in range(units):           # a padded step: h and c carry over
                    states[k, i, j] = previous[i, j]
                    row[4 * units + j] = _c_before(cache, k, i, j, units, initial_c, has_initial, zero)
        previous = states[k]
    last[:] = previous


@njit(cache=True, error_model="numpy")
def gru_forward(p, kernel, bias, has_bias, activation, recurrent_activation, reverse, masks, has_masks, step_mask,
                has_step_mask, initial, has_initial, states, last, cache, zero, one):
    """Keras's GRU with reset_after: q = h' @ kernel (+ bias[1]); z, r = s(x + q) blocks; n = a(x_n + r * q_n);
    h = z * h' + (1 - z) * n, with x = p[t] (+ bias[0]); cache [z r n q_n]."""
    steps, n, units = states.shape
    fast = p.itemsize == 4                     # float32: the vectorised exp
    blocks = _kernel_blocks(kernel, units)
    q = np.empty((n, 3 * units), p.dtype)
    work = np.empty((3, 2 * units), p.dtype)
    previous = _copy_or_zeros(initial, has_initial, n, units, p)
    for k in range(steps):
        _state_product(previous, kernel, blocks, masks, has_masks, 0, q)
        x = p[_step_index(k, steps, reverse)]
        for i in range(n):
            row = cache[k, i]
            for c in range(3 * units):
                x_c = x[i, c] + bias[0, c] if has_bias else x[i, c]
                q_c = q[i, c] + bias[1, c] if has_bias else q[i, c]
                if c < 2 * units:
                    row[c] = x_c + q_c
                else:
                    row[units + c] = q_c                       # q_n, cached
                    row[c] = x_c                               # x_n for now
            _squash(row[:2 * units], recurrent_activation, fast, work, zero, one)
            for j in range(units):
                row[2 * units + j] = row[2 * units + j] + row[units + j] * row[3 * units + j]
            _squash(row[2 * units:3 * units], activation, fast, work, zero, one)
            for j in range(units):
                gate_z = row[j]
                states[k, i, j] = gate_z * previous[i, j] + (one - gate_z) * row[2 * units + j]
        _hold_padded(step_mask, has_step_mask, _step_index(k, steps, reverse), previous, states[k], zero)
        previous = states[k]
    last[:] = previous


@njit(cache=True, error_model="numpy")
def gru_forward_reset_before(p, kernel, activation, recurrent_activation, reverse, masks, has_masks, step_mask,
                             has_step_mask, initial, has_initial, states, last, cache, zero, one):
    """Keras's GRU without reset_after: z, r = s(x + h' @ U_zr) blocks; n = a(x_n + (r * h') @ U_n);
    cache [z r n r*h'] (r * h' * masks[2] with recurrent dropout)."""
    steps, n, units = states.shape
    fast = p.itemsize == 4                     # float32: the vectorised exp
    blocks = _kernel_blocks(kernel, units)
    kernel_zr, kernel_n = np.ascontiguousarray(kernel[:, :2 * units]), blocks[2]
    q = np.empty((n, 2 * units), p.dtype)
    work = np.empty((3, 2 * units), p.dtype)
    reset_state = np.empty((n, units), p.dtype)
    product = np.empty((n, units), p.dtype)
    previous = _copy_or_zeros(initial, has_initial, n, units, p)
    for k in range(steps):
        _state_product(previous, kernel_zr, blocks, masks, has_masks, 0, q)
        x = p[_step_index(k, steps, reverse)]
        for i in range(n):
            row = cache[k, i]
            for c in range(2 * units):
                row[c] = x[i, c] + q[i, c]
            _squash(row[:2 * units], recurrent_activation, fast, work, zero, one)
            for j in range(units):
                reset_input = previous[i, j] * masks[2, i, j] if has_masks else previous[i, j]
                reset_state[i, j] = row[units + j] * reset_input
                row[3 * units + j] = reset_state[i, j]
        gemm(reset_state, kernel_n, product, False, False)
        for i in range(n):
            row = cache[k, i]
            for j in range(units):
                row[2 * units + j] = x[i, 2 * units + j] + product[i, j]
            _squash(row[2 * units:3 * units], activation, fast, work, zero, one)
            for j in range(units):
                gate_z = row[j]
                states[k, i, j] = gate_z * previous[i, j] + (one - gate_z) * row[2 * units + j]
        _hold_padded(step_mask, has_step_mask, _step_index(k, steps, reverse), previous, states[k], zero)
        previous = states[k]
    last[:] = previous


# -- backward through time ---------------------------------------------------------------------------------------
@njit(inline="always")
def _in_input_order(dz, reverse, dp):
    """dp[t] = dz[k]: the per-step gradients (step order) put back at the input steps they read."""
    steps = dz.shape[0]
    for k in range(steps):
        dp[_step_index(k, steps, reverse)] = dz[k]


@njit(inline="always")
def _product_of_steps(states, dq, masks, has_masks, d_kernel):
    """d_kernel = sum over steps k >= 1 of states[k-1]^T dq[k] (the state before step 0 is zero): ONE product;
    with recurrent-dropout ``masks``, one per gate block, from the masked states states[k-1] * masks[g]."""
    steps, n, units = states.shape
    if steps < 2:
        d_kernel[:] = 0
        return
    rows = (steps - 1) * n
    if not has_masks:
        previous = states[:steps - 1].reshape(rows, units)
        gemm(previous, np.ascontiguousarray(dq[1:]).reshape(rows, dq.shape[2]), d_kernel, True, False)
        return
    masked = np.empty((steps - 1, n, units), states.dtype)
    part = np.empty((units, units), states.dtype)
    for g in range(dq.shape[2] // units):
        for k in range(steps - 1):
            masked[k] = states[k] * masks[g]
        block = np.ascontiguousarray(dq[1:, :, g * units:(g + 1) * units]).reshape(rows, units)
        gemm(masked.reshape(rows, units), block, part, True, False)
        d_kernel[:, g * units:(g + 1) * units] = part


@njit(inline="always")
def _add_direct(direct, dh_next):
    """dh_next = direct + dh_next: the GRU's dL/dh' through h = z * h' + ..., plus what came through q."""
    for i in range(dh_next.shape[0]):
        for j in range(dh_next.shape[1]):
            dh_next[i, j] = direct[i, j] + dh_next[i, j]


@njit(inline="always")
def _gru_mix_grads(dh, gate_z, h_prev, candidate, activation, recurrent_activation, zero, one):
    """(dL/d n's input, dL/d z's input) of h = z * h' + (1 - z) * n."""
    return (_act_grad(candidate, dh * (one - gate_z), activation, zero, one),
            _act_grad(gate_z, dh * (h_prev - candidate), recurrent_activation, zero, one))


@njit(inline="always")
def _finish(states, dz, dq, reverse, masks, has_masks, dp, d_kernel):
    """dp = the per-step gradients dz in input order; d_kernel from the states and q's gradients dq."""
    _in_input_order(dz, reverse, dp)
    _product_of_steps(states, dq, masks, has_masks, d_kernel)


@njit(cache=True, error_model="numpy")
def simple_rnn_backward(kernel, states, grad, all_steps, activation, reverse, masks, has_masks, step_mask,
                        has_step_mask, initial, has_initial, dz, dp, d_kernel, d_initial, zero, one):
    """dz[k] = act'(h_k) (grad_k + dz[k+1] @ kernel^T); dp = dz in input order; d_kernel."""
    steps, n, units = states.shape
    blocks = _kernel_blocks(kernel, units)
    dh_next = np.zeros((n, units), states.dtype)
    carried = np.zeros((n, units), states.dtype)
    for k in range(steps - 1, -1, -1):
        for i in range(n):
            kept = _kept(step_mask, has_step_mask, _step_index(k, steps, reverse), i, zero)
            for j in range(units):
                dh = _step_grad(grad, all_steps, k, steps, i, j, zero) + dh_next[i, j]
                carried[i, j] = zero if kept else dh
                dz[k, i, j] = _act_grad(states[k, i, j], dh if kept else zero, activation, zero, one)
        if k > 0 or has_initial:
            _state_gradient(dz[k], kernel, blocks, masks, has_masks, 0, dh_next)
            if has_step_mask:
                _add_carried(carried, dh_next)
    _finish(states, dz, dz, reverse, masks, has_masks, dp, d_kernel)
    if has_initial:
        d_initial[:] = dh_next
        _add_first_step(initial, dz, masks, has_masks, 1, d_kernel)


@njit(cache=True, error_model="numpy")
def lstm_backward(kernel, states, cache, grad, all_steps, activation, recurrent_activation, reverse, masks, has_masks,
                  step_mask, has_step_mask, initial, initial_c, has_initial, d_last_cell, has_d_last_cell, dz, dp,
                  d_kernel, d_initial, d_initial_c, zero, one):
    """dz[k] = dL/d(p[t] + h' @ kernel) of each step (the four gates' blocks); dp = dz in input order; d_kernel."""
    steps, n, units = states.shape
    blocks = _kernel_blocks(kernel, units)
    dh_next = np.zeros((n, units), states.dtype)
    dc_next = _copy_or_zeros(d_last_cell, has_d_last_cell, n, units, states)
    carried = np.zeros((n, units), states.dtype)
    for k in range(steps - 1, -1, -1):
        for i in range(n):
            row, out = cache[k, i], dz[k, i]
            kept = _kept(step_mask, has_step_mask, _step_index(k, steps, reverse), i, zero)
            for j in range(units):
                gate_i, gate_f, gate_g, gate_o = row[j], row[units + j], row[2 * units + j], row[3 * units + j]
                squashed = row[5 * units + j]
                dh = _step_grad(grad, all_steps, k, steps, i, j, zero) + dh_next[i, j]
                carried_c = zero
                carried[i, j] = zero
                if not kept:                     # a padded step: both gradients go straight to h' and c'
                    carried[i, j], carried_c, dh = dh, dc_next[i, j], zero
                    dc_next[i, j] = zero
                dc = _act_grad(squashed, dh * gate_o, activation, zero, one) + dc_next[i, j]
                c_prev = _c_before(cache, k, i, j, units, initial_c, has_initial, zero)
                out[j] = _act_grad(gate_i, dc * gate_g, recurrent_activation, zero, one)
                out[units + j] = _act_grad(gate_f, dc * c_prev, recurrent_activation, zero, one)
                out[2 * units + j] = _act_grad(gate_g, dc * gate_i, activation, zero, one)
                out[3 * units + j] = _act_grad(gate_o, dh * squashed, recurrent_activation, zero, one)
                dc_next[i, j] = dc * gate_f + carried_c
        if k > 0 or has_initial:
            _state_gradient(dz[k], kernel, blocks, masks, has_masks, 0, dh_next)
            if has_step_mask:
                _add_carried(carried, dh_next)
    _finish(states, dz, dz, reverse, masks, has_masks, dp, d_kernel)
    if has_initial:
        d_initial[:] = dh_next
        d_initial_c[:] = dc_next
        _add_first_step(initial, dz, masks, has_masks, 4, d_kernel)


@njit(cache=True, error_model="numpy")
def gru_backward(kernel, states, cache, grad, all_steps, activation, recurrent_activation, reverse, masks, has_masks,
                 step_mask, has_step_mask, initial, has_initial, dz, dq, dp, d_kernel, d_bias, has_bias, d_initial,
                 zero, one):
    """With reset_after: dz[k] = dL/dx and dq[k] = dL/dq per step (q = h' @ kernel + bias[1]); dp, d_kernel and
    d_bias = [sum of dz, sum of dq] over steps and samples."""
    steps, n, units = states.shape
    blocks = _kernel_blocks(kernel, units)
    dh_next = np.zeros((n, units), states.dtype)
    direct = np.zeros((n, units), states.dtype)
    first = _copy_or_zeros(initial, has_initial, n, units, states)
    for k in range(steps - 1, -1, -1):
        previous = states[k - 1] if k > 0 else first
        for i in range(n):
            row = cache[k, i]
            kept = _kept(step_mask, has_step_mask, _step_index(k, steps, reverse), i, zero)
            for j in range(units):
                gate_z, gate_r, candidate, q_n = row[j], row[units + j], row[2 * units + j], row[3 * units + j]
                dh_in = _step_grad(grad, all_steps, k, steps, i, j, zero) + dh_next[i, j]
                dh = dh_in if kept else zero
                d_candidate, d_update = _gru_mix_grads(dh, gate_z, previous[i, j], candidate, activation,
                                                       recurrent_activation, zero, one)
                d_reset = _act_grad(gate_r, d_candidate * q_n, recurrent_activation, zero, one)
                dz[k, i, j], dz[k, i, units + j], dz[k, i, 2 * units + j] = d_update, d_reset, d_candidate
                dq[k, i, j], dq[k, i, units + j], dq[k, i, 2 * units + j] = d_update, d_reset, d_candidate * gate_r
                direct[i, j] = dh * gate_z if kept else dh_in      # a padded step hands dh to h' unchanged
        if k > 0 or has_initial:
            _state_gradient(dq[k], kernel, blocks, masks, has_masks, 0, dh_next)
            _add_direct(direct, dh_next)
    _finish(states, dz, dq, reverse, masks, has_masks, dp, d_kernel)
    if has_initial:
        d_initial[:] = dh_next
        _add_first_step(initial, dq, masks, has_masks, 3, d_kernel)
    if has_bias:
        _column_sums(dz, d_bias[0], zero)
        _column_sums(dq, d_bias[1], zero)


@njit(inline="always")
def _column_sums(a, out, zero):
    """out[j] = the sum of a[..., j] over every step and sample, in order."""
    out[:] = zero
    for k in range(a.shape[0]):
        for i in range(a.shape[1]):
            for j in range(a.shape[2]):
                out[j] += a[k, i, j]


@njit(cache=True, error_model="numpy")
def gru_backward_reset_before(kernel, states, cache, grad, all_steps, activation, recurrent_activation, reverse,
                              masks, has_masks, step_mask, has_step_mask, initial, has_initial, dz, dp, d_kernel,
                              d_initial, zero, one):
    """Without reset_after: dz[k] = dL/dx per step, its n block also dL/d((r * h') @ U_n); dp and d_kernel (the
    z and r columns from h', the n columns from the cached r * h' of every step)."""
    steps, n, units = states.shape
    blocks = _kernel_blocks(kernel, units)
    kernel_zr, kernel_n = np.ascontiguousarray(kernel[:, :2 * units]), blocks[2]
    dh_next = np.zeros((n, units), states.dtype)
    direct = np.zeros((n, units), states.dtype)
    d_reset_state = np.empty((n, units), states.dtype)
    d_candidates = np.empty((n, units), states.dtype)
    first = _copy_or_zeros(initial, has_initial, n, units, states)
    for k in range(steps - 1, -1, -1):
        previous = states[k - 1] if k > 0 else first
        for i in range(n):
            row = cache[k, i]
            kept = _kept(step_mask, has_step_mask, _step_index(k, steps, reverse), i, zero)
            for j in range(units):
                gate_z, candidate = row[j], row[2 * units + j]
                dh_in = _step_grad(grad, all_steps, k, steps, i, j, zero) + dh_next[i, j]
                dh = dh_in if kept else zero
                d_candidate, dz[k, i, j] = _gru_mix_grads(dh, gate_z, previous[i, j], candidate, activation,
                                                          recurrent_activation, zero, one)
                dz[k, i, 2 * units + j] = d_candidate
                d_candidates[i, j] = d_candidate
                direct[i, j] = dh * gate_z if kept else dh_in      # a padded step hands dh to h' unchanged
        gemm(d_candidates, kernel_n, d_reset_state, False, True)
        for i in range(n):
            for j in range(units):
                gate_r = cache[k, i, units + j]
                mask = masks[2, i, j] if has_masks else one        # r multiplied h' * mask
                dz[k, i, units + j] = _act_grad(gate_r, d_reset_state[i, j] * (previous[i, j] * mask),
                                                recurrent_activation, zero, one)
                through = d_reset_state[i, j] * gate_r
                direct[i, j] = direct[i, j] + (through * mask if has_masks else through)
        if k > 0 or has_initial:
            _state_gradient(dz[k, :, :2 * units], kernel_zr, blocks, masks, has_masks, 0, dh_next)
            _add_direct(direct, dh_next)
    _in_input_order(dz, reverse, dp)
    d_zr = np.empty((units, 2 * units), states.dtype)
    _product_of_steps(states, np.ascontiguousarray(dz[:, :, :2 * units]), masks, has_masks, d_zr)
    d_n = np.empty((units, units), states.dtype)
    gemm(np.ascontiguousarray(cache[:, :, 3 * units:]).reshape(steps * n, units),
         np.ascontiguousarray(dz[:, :, 2 * units:]).reshape(steps * n, units), d_n, True, False)
    d_kernel[:, :2 * units] = d_zr
    d_kernel[:, 2 * units:] = d_n
    if has_initial:
        d_initial[:] = dh_next
        _add_first_step(initial, dz, masks, has_masks, 2, d_kernel)
