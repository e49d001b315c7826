"""The math of the recurrent layers: one ``Function`` for a cell (SimpleRNN, LSTM, GRU) over a whole sequence.

The Function takes the inputs already projected for every step, ``P[t] = x_t @ W + b`` (the layer does that
with one fused dense product over all steps, since it does not depend on the state), and the recurrent
kernel ``U``. Its forward runs the recurrence through time and its backward runs back through time
(backpropagation through time, BPTT), each as ONE fused backend primitive (``Backend.recurrent_forward``
and ``recurrent_backward``, whose reference is ``backends/recurrent_reference.py``): autograd sees one node
for the sequence instead of some fifteen per step, and a compiled step records two calls.

Layout is time-major: ``P`` is (T, n, G*u) with G gates of u units side by side in Keras's order, and the
output ``H`` is (T, n, u), the state after each step, in the order the steps ran. With ``reverse``
(Keras's ``go_backwards``) step k reads ``P[T-1-k]``. The initial state is zero, as in Keras, or the one given
(Keras's ``initial_state``: h0, and c0 for the LSTM), whose gradient the backward then returns. With ``carry``
the output also holds the LSTM's last carry c_T as one more row (Keras's ``return_state``), so that its gradient
(from a decoder that starts from it, say) flows back through time too.

Notation: s is the recurrent activation (sigmoid by default), a the activation (tanh by default), * is
elementwise, h' and c' are the previous step's states, and dX is dL/dX.

* SimpleRNN: ``h = a(P_t + h' U)``;  dz = a'(z) dh, dh' = dz U^T, dU = sum h'^T dz.
* LSTM, gates i, f, g, o:  ``[i f g o] = [s s a s](P_t + h' U)``, ``c = f * c' + i * g``, ``h = o * a(c)``.
  Backward: do = dh * a(c); dc = dc_next + a'(c) (dh * o); di = dc * g; df = dc * c'; dg = dc * i;
  dc' = dc * f; then each gate's pre-activation gradient through its own activation, and dh' = dz U^T.
* GRU, gates z, r and the candidate:  with ``reset_after`` (Keras 3's default) q = h' U + b_r,
  ``[z r] = s(P_zr + q_zr)``, ``n = a(P_n + r * q_n)``; without it ``[z r] = s(P_zr + h' U_zr)``,
  ``n = a(P_n + (r * h') U_n)``. Both: ``h = z * h' + (1 - z) * n``.
  Backward: dz = dh * (h' - n); dn = dh * (1 - z); then through the activations as above, and
  dh' = dh * z + (the gates' gradients) U^T (plus, without reset_after, (dn~ U_n^T) * r).

Every derivative is checked against central finite differences in float64 (tests/test_recurrent.py).
"""
from .autograd import Function
from .backends.recurrent_reference import last_cell

__all__ = ["RecurrentSequence", "RECURRENT_ACTIVATIONS"]

#: the activations a recurrent primitive computes itself (Backend.activation_backward knows their derivatives)
RECURRENT_ACTIVATIONS = ("none", "relu", "sigmoid", "tanh")


class RecurrentSequence(Function):
    """H = the cell run over every step of P; returns every state (T, n, u) or, without ``sequences``, the last
    one (n, u); with ``carry`` (the LSTM) the last carry c_T follows as one more row: (T + 1, n, u), or (2, n, u)
    [h_T, c_T]. Gradients: dP, dU, for the GRU with reset_after its (2, 3u) bias, and those of h0 and c0 when
    given; ``masks`` (recurrent dropout, or None) and ``step_mask`` (T, n: Keras's mask of padded steps, 1 or 0,
    or None) are constants."""

    @staticmethod
    def forward(ctx, p, kernel, bias, masks, step_mask, h0, c0, cell, activation, recurrent_activation, reverse,
                reset_after, sequences, carry=False):
        bk = ctx.backend
        initial = None if h0 is None else ((h0, c0) if cell == "lstm" else (h0,))
        states, last, cache = bk.recurrent_forward(cell, p, kernel, bias, activation, recurrent_activation, reverse,
                                                   reset_after, masks, step_mask, initial)
        ctx.save_for_backward(kernel, bias, masks, step_mask, initial, states, cache)
        out = states if sequences else last
        if not carry:
            return out
        rows = states.shape[0] if sequences else 1
        joined = bk.full((rows + 1, *last.shape), 0, last.dtype)          # [h..., c_T]
        bk.assign(bk.getitem(joined, slice(0, rows)), bk.reshape(out, (rows, *last.shape)))
        bk.assign(bk.getitem(joined, rows), last_cell(bk, cache))
        return joined

    @staticmethod
    def backward(ctx, grad):
        kernel, bias, masks, step_mask, initial, states, cache = ctx.saved
        params, bk = ctx.params, ctx.backend
        d_last_cell = None
        if params.get("carry"):
            rows = grad.shape[0] - 1
            d_last_cell = bk.ascontiguous(bk.getitem(grad, rows))
            grad = bk.getitem(grad, slice(0, rows)) if params["sequences"] else bk.getitem(grad, 0)
        dp, d_kernel, d_bias, dh0, dc0 = bk.recurrent_backward(
            params["cell"], kernel, bias, states, cache, grad, params["activation"], params["recurrent_activation"],
            params["reverse"], params["reset_after"], masks, step_mask, initial, d_last_cell)
        return dp, d_kernel, d_bias, None, None, dh0, dc0
