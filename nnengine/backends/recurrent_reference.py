"""The reference of the recurrent primitives (``Backend.recurrent_forward`` and ``recurrent_backward``), written with
the general primitives: the specification the numba and CUDA kernels are compared with.

A sequence is time-major: ``p`` (T, n, G*u) holds every step's projected input x_t @ W (+ b), G gates of u units
side by side in Keras's order. Step k reads ``p[t]`` with t = k, or t = T-1-k with ``reverse`` (Keras's
go_backwards); ``states[k]`` is the state after step k. The state before the first step is zero, or the
``initial_state`` given (Keras's ``initial_state=``): (h0,) for simple_rnn and gru, (h0, c0) for the lstm, each
(n, u). The backward then also returns that state's gradient, and takes the gradient of the LSTM's last carry c_T
(``d_last_cell``: Keras's ``return_state`` hands c_T on, to a decoder say) where it has one.

Each cell is one forward step and one backward step (the functions ``*_step`` below), applied by the two
drivers ``forward`` and ``backward``; the CUDA backend launches one kernel per step with the same contract, and
the fake GPU of the tests emulates those kernels with these functions. Notation: s the recurrent activation, a
the activation, * elementwise, h' the previous state, q = h' @ U.

* simple_rnn: ``h = a(x + q)``; cache: nothing.
* lstm (gates i, f, g, o): ``i, f, g, o = s, s, a, s of (x + q)``, ``c = f * c' + i * g``, ``h = o * a(c)``;
  cache per step: [i f g o c a(c)] (6u).
* gru with reset_after (Keras 3's default; the bias is then (2, 3u), row 0 added to x and row 1 to q):
  ``z, r = s(x_z + q_z), s(x_r + q_r)``, ``n = a(x_n + r * q_n)``, ``h = z * h' + (1 - z) * n``;
  cache: [z r n q_n] (4u).
* gru without reset_after: q covers the z and r columns only, ``n = a(x_n + (r * h') @ U_n)``; cache [z r n r*h'].

With ``masks`` (G, n, u), Keras's recurrent dropout: gate block g of q is ``(h' * masks[g]) @ U_g``, one mask
per gate, the same at every step (the GRU without reset_after multiplies r by ``h' * masks[2]``); the state
that h = z * h' + ... carries over stays unmasked.

With ``step_mask`` (T, n), Keras's mask of padded steps (1 where step t of sample i holds data, 0 where it is
padding; in the inputs' order, like p): a padded step leaves the state as it was, ``h = where(m, h_new, h')``
(and c for the LSTM), so the sequence runs as if the padded steps were not there. Its backward passes the
state's gradient through a padded step unchanged (dh' += (1 - m) dh) and gives the cell none (m dh).
"""
from .constants import shared_constant

__all__ = ["GATES", "CACHE_BLOCKS", "forward", "backward", "gradients", "last_cell"]

#: gates side by side in p and the kernel, and blocks of u columns each step caches for backward
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
CACHE_BLOCKS = {"simple_rnn": 0, "lstm": 6, "gru": 4}


def _act(bk, name, z):
    return z if name == "none" else getattr(bk, name)(z)


def _block(bk, a, k, units, blocks=1):
    """Columns [k*u, (k+blocks)*u) of the (n, G*u) array a: a view."""
    return bk.getitem(a, (slice(None), slice(k * units, (k + blocks) * units)))


def _joined(bk, blocks):
    """The (n, u) arrays side by side: (n, len(blocks) * u)."""
    n, units = blocks[0].shape
    out = bk.full((n, len(blocks) * units), 0, blocks[0].dtype)
    for k, block in enumerate(blocks):
        bk.assign(_block(bk, out, k, units), block)
    return out


# -- one step forward ---------------------------------------------------------------------------------------------
def simple_rnn_step(bk, x, q, activation):
    """h = a(x + q)."""
    return _act(bk, activation, bk.add(x, q))


def lstm_step(bk, x, q, c_prev, activation, recurrent_activation):
    """(h, c, cache [i f g o c a(c)]) of one LSTM step."""
    z = bk.add(x, q)
    units = c_prev.shape[1]
    i, f, g, o = (_act(bk, activation if k == 2 else recurrent_activation, _block(bk, z, k, units))
                  for k in range(4))
    c = bk.add(bk.mul(f, c_prev), bk.mul(i, g))
    squashed = _act(bk, activation, c)
    h = bk.mul(o, squashed)
    return h, c, _joined(bk, [i, f, g, o, c, squashed])


def gru_step(bk, x, q, h_prev, activation, recurrent_activation):
    """(h, cache [z r n q_n]) of one GRU step with reset_after; x and q carry their biases already."""
    units = h_prev.shape[1]
    z, r = (_act(bk, recurrent_activation, bk.add(_block(bk, x, k, units), _block(bk, q, k, units)))
            for k in range(2))
    q_n = _block(bk, q, 2, units)
    candidate = _act(bk, activation, bk.add(_block(bk, x, 2, units), bk.mul(r, q_n)))
    return _gru_mix(bk, z, h_prev, candidate), _joined(bk, [z, r, candidate, q_n])


def gru_gates_step(bk, x, q_zr, h_prev, recurrent_activation, reset_input=None):
    """(z, r, r * h') of a GRU step without reset_after: the gates, and what U_n multiplies (r times
    ``reset_input``, h' with its recurrent-dropout mask, when given)."""
    units = h_prev.shape[1]
    z, r = (_act(bk, recurrent_activation, bk.add(_block(bk, x, k, units), _block(bk, q_zr, k, units)))
            for k in range(2))
    return z, r, bk.mul(r, h_prev if reset_input is None else reset_input)


def gru_candidate_step(bk, x, z, r, reset_product, h_prev, reset_state, activation):
    """(h, cache [z r n r*h']) of a GRU step without reset_after, from (r * h') @ U_n = ``reset_product``."""
    units = h_prev.shape[1]
    candidate = _act(bk, activation, bk.add(_block(bk, x, 2, units), reset_product))
    return _gru_mix(bk, z, h_prev, candidate), _joined(bk, [z, r, candidate, reset_state])


def _gru_mix(bk, z, h_prev, candidate):
    """h = z * h' + (1 - z) * n."""
    one = shared_constant(bk, 1.0, z.dtype)
    return bk.add(bk.mul(z, h_prev), bk.mul(bk.sub(one, z), candidate))


# -- one step backward --------------------------------------------------------------------------------------------
def simple_rnn_step_backward(bk, h, dh, activation):
    """dL/d(x + q) = a'(h) dh."""
    return bk.activation_backward(h, dh, activation, 0)


def lstm_step_backward(bk, cache, c_prev, dh, dc_next, activation, recurrent_activation):
    """(dz (n, 4u), dc') of one LSTM step, from dh and the carry's gradient from the step after (dc_next)."""
    units = c_prev.shape[1]
    i, f, g, o, _, squashed = (_block(bk, cache, k, units) for k in range(6))
    dc = bk.add(bk.activation_backward(squashed, bk.mul(dh, o), activation, 0), dc_next)   # h = o * a(c)
    d_gates = (bk.mul(dc, g), bk.mul(dc, c_prev), bk.mul(dc, i), bk.mul(dh, squashed))     # di, df, dg, do
    dz = [bk.activation_backward(gate, d_gate, activation if k == 2 else recurrent_activation, 0)
          for k, (gate, d_gate) in enumerate(zip((i, f, g, o), d_gates))]
    return _joined(bk, dz), bk.mul(dc, f)


def gru_step_backward(bk, cache, h_prev, dh, activation, recurrent_activation):
    """(dx (n, 3u), dq (n, 3u), dh' through h = z * h' + ...) of one GRU step with reset_after."""
    units = h_prev.shape[1]
    z, r, candidate, q_n = (_block(bk, cache, k, units) for k in range(4))
    d_candidate, d_update, direct = _gru_mix_backward(bk, z, h_prev, candidate, dh, activation,
                                                      recurrent_activation)
    d_reset = bk.activation_backward(r, bk.mul(d_candidate, q_n), recurrent_activation, 0)
    dx = _joined(bk, [d_update, d_reset, d_candidate])
    return dx, _joined(bk, [d_update, d_reset, bk.mul(d_candidate, r)]), direct


def _gru_mix_backward(bk, z, h_prev, candidate, dh, activation, recurrent_activation):
    """(dL/d n's input, dL/d z's input, dL/dh' directly) of h = z * h' + (1 - z) * n."""
    one = shared_constant(bk, 1.0, z.dtype)
    d_candidate = bk.activation_backward(candidate, bk.mul(dh, bk.sub(one, z)), activation, 0)
    d_update = bk.activation_backward(z, bk.mul(dh, bk.sub(h_prev, candidate)), recurrent_activation, 0)
    return d_candidate, d_update, bk.mul(dh, z)


def gru_candidate_step_backward(bk, cache, h_prev, dh, activation, recurrent_activation):
    """(dx with its r block still zero, dL/dh' directly) of a GRU step without reset_after; dx's n block is also
    the gradient of (r * h') @ U_n."""
    units = h_prev.shape[1]
    z, _, candidate, _ = (_block(bk, cache, k, units) for k in range(4))
    d_candidate, d_update, direct = _gru_mix_backward(bk, z, h_prev, candidate, dh, activation,
                                                      recurrent_activation)
    return _joined(bk, [d_update, bk.full(z.shape, 0, z.dtype), d_candidate]), direct


def gru_reset_step_backward(bk, cache, h_prev, d_reset_state, dx, direct, recurrent_activation, mask=None):
    """Complete dx's r block and dh' from d(r * h') = ``d_reset_state``; returns (dx, dh' directly). With a
    recurrent-dropout ``mask``, r multiplied h' * mask."""
    units = h_prev.shape[1]
    r = _block(bk, cache, 1, units)
    reset_input = h_prev if mask is None else bk.mul(h_prev, mask)
    bk.assign(_block(bk, dx, 1, units), bk.activation_backward(r, bk.mul(d_reset_state, reset_input),
                                                                recurrent_activation, 0))
    through = bk.mul(d_reset_state, r)
    return dx, bk.add(direct, through if mask is None else bk.mul(through, mask))


# -- the sequence ---------------------------------------------------------------------------------------------
def _step_index(k, steps, reverse):
    return steps - 1 - k if reverse else k


def _recurrent_product(bk, h, kernel, masks, first, count):
    """q for the gate blocks [first, first + count): h @ U, or with ``masks`` each block from its own masked h."""
    units = h.shape[1]
    if masks is None:
        return bk.matmul(h, _block(bk, kernel, first, units, count))
    return _joined(bk, [bk.matmul(bk.mul(h, bk.getitem(masks, g)), _block(bk, kernel, g, units))
                        for g in range(first, first + count)])


def _state_gradient(bk, dq, kernel, masks, first, count):
    """dL/dh' through q = _recurrent_product: dq @ U^T, or the sum over blocks of (dq_g @ U_g^T) * masks[g]."""
    units = kernel.shape[0]
    if masks is None:
        return bk.matmul(dq, _block(bk, kernel, first, units, count), transpose_b=True)
    total = None
    for j, g in enumerate(range(first, first + count)):
        part = bk.mul(bk.matmul(_block(bk, dq, j, units), _block(bk, kernel, g, units), transpose_b=True),
                      bk.getitem(masks, g))
        total = part if total is None else bk.add(total, part)
    return total


def _kept(bk, step_mask, t):
    """The bool (n, 1) column of step t: True where the step holds data."""
    column = bk.getitem(step_mask, t)
    return bk.not_equal(bk.reshape(column, (column.shape[0], 1)), shared_constant(bk, 0.0, step_mask.dtype))


def _held(bk, keep, new, previous, step_cache=None, units=None):
    """where(keep, new, previous): a padded step keeps the previous state; with the LSTM's ``step_cache``, its
    c block (what the next step reads as c') holds the kept c too."""
    kept = bk.where(keep, new, previous)
    if step_cache is not None:
        bk.assign(_block(bk, step_cache, 4, units), kept)
    return kept


def forward(bk, cell, p, kernel, bias, activation, recurrent_activation, reverse, reset_after, masks=None,
            step_mask=None, initial_state=None):
    """(states (T, n, u), the last state (n, u), cache (T, n, CACHE_BLOCKS[cell] * u))."""
    steps, n, _ = p.shape
    units = kernel.shape[0]
    states = bk.full((steps, n, units), 0, p.dtype)
    cache = bk.full((steps, n, CACHE_BLOCKS[cell] * units), 0, p.dtype)
    h, c = _initial(bk, cell, initial_state, (n, units), p.dtype)
    for k in range(steps):
        x = bk.getitem(p, _step_index(k, steps, reverse))
        h_prev, c_prev = h, c
        if cell == "gru" and not reset_after:
            reset_input = None if masks is None else bk.mul(h, bk.getitem(masks, 2))
            z, r, reset_state = gru_gates_step(bk, x, _recurrent_product(bk, h, kernel, masks, 0, 2), h,
                                               recurrent_activation, reset_input)
            product = bk.matmul(reset_state, _block(bk, kernel, 2, units))
            h, step_cache = gru_candidate_step(bk, x, z, r, product, h, reset_state, activation)
        elif cell == "gru":
            q = _recurrent_product(bk, h, kernel, masks, 0, 3)
            if bias is not None:
                x, q = bk.add(x, bk.getitem(bias, 0)), bk.add(q, bk.getitem(bias, 1))
            h, step_cache = gru_step(bk, x, q, h, activation, recurrent_activation)
        elif cell == "lstm":
            h, c, step_cache = lstm_step(bk, x, _recurrent_product(bk, h, kernel, masks, 0, 4), c, activation,
                                         recurrent_activation)
        else:
            h, step_cache = simple_rnn_step(bk, x, _recurrent_product(bk, h, kernel, masks, 0, 1), activation), None
        if step_mask is not None:
            keep = _kept(bk, step_mask, _step_index(k, steps, reverse))
            h = _held(bk, keep, h, h_prev)
            if cell == "lstm":
                c = _held(bk, keep, c, c_prev, step_cache, units)
        bk.assign(bk.getitem(states, k), h)
        if step_cache is not None:
            bk.assign(bk.getitem(cache, k), step_cache)
    return states, h, cache


def backward(bk, cell, kernel, bias, states, cache, grad, activation, recurrent_activation, reverse, reset_after,
             masks=None, step_mask=None, initial_state=None, d_last_cell=None):
    """(dp (T, n, G*u), d kernel, d bias or None, dh0, dc0): backpropagation through time from
    ``grad``, the gradient of every state (T, n, u) or of the last one only (n, u), and for the LSTM from
    ``d_last_cell``, the gradient of its last carry c_T (None: zero). dh0 and dc0 are the gradients of the
    ``initial_state`` (None without one; dc0 only for the LSTM)."""
    steps, n, units = states.shape
    width = GATES[cell] * units
    dz = bk.full((steps, n, width), 0, states.dtype)        # dL/d(x + q) per step, in step order
    dq = bk.full((steps, n, width), 0, states.dtype)        # the GRU's dL/dq (its n block: dL/d(r*h') @ U_n)
    zeros = bk.full((n, units), 0, states.dtype)
    h_first, c_first = _initial(bk, cell, initial_state, (n, units), states.dtype)
    dh_next, dc_next = zeros, (zeros if d_last_cell is None else d_last_cell)
    for k in range(steps - 1, -1, -1):
        h_prev = bk.getitem(states, k - 1) if k > 0 else h_first
        step_grad = bk.getitem(grad, k) if grad.ndim == 3 else grad if k == steps - 1 else zeros
        dh = bk.add(step_grad, dh_next)
        carried_h = carried_c = None
        if step_mask is not None:       # a padded step: its state's gradient goes straight to the previous state
            keep = _kept(bk, step_mask, _step_index(k, steps, reverse))
            carried_h, dh = bk.where(keep, zeros, dh), bk.where(keep, dh, zeros)
            if cell == "lstm":
                carried_c, dc_next = bk.where(keep, zeros, dc_next), bk.where(keep, dc_next, zeros)
        step_cache = bk.getitem(cache, k)
        if cell == "simple_rnn":
            dz_k = simple_rnn_step_backward(bk, bk.getitem(states, k), dh, activation)
            dh_next = _state_gradient(bk, dz_k, kernel, masks, 0, 1)
        elif cell == "lstm":
            c_prev = _block(bk, bk.getitem(cache, k - 1), 4, units) if k > 0 else c_first
            dz_k, dc_next = lstm_step_backward(bk, step_cache, c_prev, dh, dc_next, activation, recurrent_activation)
            dh_next = _state_gradient(bk, dz_k, kernel, masks, 0, 4)
        elif reset_after:
            dz_k, dq_k, direct = gru_step_backward(bk, step_cache, h_prev, dh, activation, recurrent_activation)
            bk.assign(bk.getitem(dq, k), dq_k)
            dh_next = bk.add(direct, _state_gradient(bk, dq_k, kernel, masks, 0, 3))
        else:
            dz_k, direct = gru_candidate_step_backward(bk, step_cache, h_prev, dh, activation, recurrent_activation)
            d_reset_state = bk.matmul(_block(bk, dz_k, 2, units), _block(bk, kernel, 2, units), transpose_b=True)
            reset_mask = None if masks is None else bk.getitem(masks, 2)
            dz_k, direct = gru_reset_step_backward(bk, step_cache, h_prev, d_reset_state, dz_k, direct,
                                                   recurrent_activation, reset_mask)
            bk.assign(bk.getitem(dq, k), dz_k)
            dh_next = bk.add(direct, _state_gradient(bk, _block(bk, dz_k, 0, units, 2), kernel, masks, 0, 2))
        bk.assign(bk.getitem(dz, k), dz_k)
        if carried_h is not None:
            dh_next = bk.add(dh_next, carried_h)
            if carried_c is not None:
                dc_next = bk.add(dc_next, carried_c)
    dp, d_kernel, d_bias = gradients(bk, cell, states, cache, dz, dq, bias, reverse, reset_after, masks)
    if initial_state is None:
        return dp, d_kernel, d_bias, None, None
    _add_first_step(bk, cell, reset_after, h_first, dz, dq, masks, d_kernel)
    return dp, d_kernel, d_bias, dh_next, (dc_next if cell == "lstm" else None)


def last_cell(bk, cache):
    """The LSTM's last carry c_T (n, u): block 4 of the last step's cache (a padded last step holds the kept c)."""
    units = cache.shape[2] // CACHE_BLOCKS["lstm"]
    return bk.getitem(cache, (cache.shape[0] - 1, slice(None), slice(4 * units, 5 * units)))


def _initial(bk, cell, initial_state, shape, dtype):
    """(h, c) before the first step: the ``initial_state`` given ((h0,) or the LSTM's (h0, c0)), else zeros."""
    zeros = bk.full(shape, 0, dtype)
    if initial_state is None:
        return zeros, zeros
    return initial_state[0], (initial_state[1] if cell == "lstm" else zeros)


def _add_first_step(bk, cell, reset_after, h_first, dz, dq, masks, d_kernel):
    """d_kernel += h0^T dq_0: the first step's share of dU, which ``gradients`` leaves out (it takes the state
    before step 0 to be zero). The GRU without reset_after already has its n block (from the cached r * h0)."""
    units = h_first.shape[1]
    first = bk.getitem(dq if cell == "gru" else dz, 0)
    blocks = 2 if cell == "gru" and not reset_after else GATES[cell]
    for g in range(blocks):
        state = h_first if masks is None else bk.mul(h_first, bk.getitem(masks, g))
        block = _block(bk, d_kernel, g, units)
        bk.assign(block, bk.add(block, bk.matmul(state, bk.ascontiguous(_block(bk, first, g, units)),
                                                 transpose_a=True)))


def gradients(bk, cell, states, cache, dz, dq, bias, reverse, reset_after, masks=None):
    """(dp, d kernel, d bias or None) from the per-step gradients in step order: dz = dL/d(x + q) (for the GRU,
    dL/dx) and, for the GRU, dq = dL/dq (without reset_after, its n block is dL/d((r * h') @ U_n))."""
    steps, n, units = states.shape
    dp = _in_input_order(bk, dz, reverse)
    if cell != "gru":
        return dp, _kernel_gradient(bk, states, dz, masks), None
    d_kernel = _kernel_gradient(bk, states, dq, masks)
    if not reset_after:       # U_n multiplies r * h' (cached) at every step, the first one included
        reset_states = bk.reshape(bk.ascontiguous(bk.getitem(cache, (slice(None), slice(None),
                                                                     slice(3 * units, 4 * units)))), (steps * n, units))
        d_candidates = bk.reshape(bk.ascontiguous(bk.getitem(dz, (slice(None), slice(None),
                                                                  slice(2 * units, 3 * units)))), (steps * n, units))
        bk.assign(_block(bk, d_kernel, 2, units), bk.matmul(reset_states, d_candidates, transpose_a=True))
    if bias is None:
        return dp, d_kernel, None
    d_bias = bk.full((2, 3 * units), 0, states.dtype)
    bk.assign(bk.getitem(d_bias, 0), bk.sum(dz, (0, 1), False))
    bk.assign(bk.getitem(d_bias, 1), bk.sum(dq, (0, 1), False))
    return dp, d_kernel, d_bias


def _in_input_order(bk, dz, reverse):
    """dp: the per-step gradients put back at the input steps they read."""
    if not reverse:
        return dz
    steps = dz.shape[0]
    dp = bk.full(dz.shape, 0, dz.dtype)
    for k in range(steps):
        bk.assign(bk.getitem(dp, steps - 1 - k), bk.getitem(dz, k))
    return dp


def _kernel_gradient(bk, states, dq, masks=None):
    """dU = sum over steps k >= 1 of h_{k-1}^T dq_k (h before step 0 is zero), as ONE product; with ``masks``,
    gate block g of dU from the masked states h_{k-1} * masks[g]."""
    steps, n, units = states.shape
    width = dq.shape[2]
    if steps < 2:
        return bk.full((units, width), 0, states.dtype)
    previous = bk.getitem(states, slice(0, steps - 1))
    later = bk.ascontiguous(bk.getitem(dq, slice(1, steps)))
    if masks is None:
        return bk.matmul(bk.reshape(previous, ((steps - 1) * n, units)),
                         bk.reshape(later, ((steps - 1) * n, width)), transpose_a=True)
    d_kernel = bk.full((units, width), 0, states.dtype)
    for g in range(width // units):
        masked = bk.reshape(bk.mul(previous, bk.getitem(masks, g)), ((steps - 1) * n, units))
        block = bk.reshape(bk.ascontiguous(bk.getitem(later, (slice(None), slice(None),
                                                              slice(g * units, (g + 1) * units)))),
                           ((steps - 1) * n, units))
        bk.assign(_block(bk, d_kernel, g, units), bk.matmul(masked, block, transpose_a=True))
    return d_kernel
