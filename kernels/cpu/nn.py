"""Fused neural-network kernels: the dense layer, softmax, log-softmax, softmax cross-entropy.

Activation codes: NONE, RELU, SIGMOID, TANH, SOFTMAX (softmax over each row).
Scalars ``zero`` and ``one`` are passed in the arrays' dtype so float32 math stays float32.

Dense forward, a = act(x @ w + b): for small layers ``dense_small`` does the
product, the bias and the activation in one pass over each output row; for
large ones the backend computes the product with a GEMM and ``bias_activation``
finishes in place. Dense backward: ``activation_grad`` turns dL/da into
dL/dz = g * act'(z) (written from the output a: relu [a > 0], sigmoid a(1 - a),
tanh 1 - a^2, softmax a (g - sum(g a))) and sums dL/dz over the batch for the
bias gradient in the same pass; the products x^T dz and dz w^T follow (GEMM).
"""
import math

from numba import njit

from .elementwise import sigmoid_scalar

NONE, RELU, SIGMOID, TANH, SOFTMAX = range(5)
ACTIVATIONS = {"none": NONE, "relu": RELU, "sigmoid": SIGMOID, "tanh": TANH, "softmax": SOFTMAX}


@njit(inline="always")
def _activate_row(row, activation, zero, one):
    """Apply the activation to one output row in place."""
    if activation == RELU:
        for j in range(row.size):
            row[j] = row[j] if (row[j] > zero or row[j] != row[j]) else zero   # NaN stays NaN
    elif activation == SIGMOID:
        for j in range(row.size):
            row[j] = sigmoid_scalar(row[j], one)
    elif activation == TANH:
        for j in range(row.size):
            row[j] = math.tanh(row[j])
    elif activation == SOFTMAX:
        _softmax_row(row, row, zero, one)


@njit(inline="always")
def _softmax_row(z, out, zero, one):
    """out = softmax(z) for one row: shift by the max so exp never overflows."""
    top = z[0]
    for j in range(1, z.size):
        top = z[j] if z[j] > top else top
    total = zero
    for j in range(z.size):
        e = math.exp(z[j] - top)
        out[j] = e
        total += e
    scale = one / total
    for j in range(z.size):
        out[j] *= scale


@njit(cache=True)
def dense_small(x, w, b, has_bias, activation, out, zero, one):
    """out = act(x @ w + b) in one pass per row: x (n, k), w (k, m), b (m,), out (n, m)."""
    n, k = x.shape
    for i in range(n):
        row = out[i]
        if has_bias:
            row[:] = b
        else:
            row[:] = zero
        for p in range(k):
            xip = x[i, p]
            w_p = w[p]
            for j in range(row.size):
                row[j] += xip * w_p[j]
        _activate_row(row, activation, zero, one)


@njit(cache=True)
def bias_activation(z, b, has_bias, activation, zero, one):
    """z = act(z + b) in place, row by row (the epilogue after a GEMM)."""
    for i in range(z.shape[0]):
        row = z[i]
        if has_bias:
            for j in range(row.size):
                row[j] += b[j]
        _activate_row(row, activation, zero, one)


@njit(cache=True)
def activation_grad(out, grad_out, activation, dz, grad_b, zero, one):
    """dz = dL/dz from a = out and g = grad_out; grad_b = sum over rows of dz (zero-filled by the caller)."""
    n, m = out.shape
    for i in range(n):
        a, g, d = out[i], grad_out[i], dz[i]
        if activation == NONE:
            d[:] = g
        elif activation == RELU:
            for j in range(m):
                d[j] = g[j] if a[j] > zero else zero
        elif activation == SIGMOID:
            for j in range(m):
                d[j] = g[j] * a[j] * (one - a[j])
        elif activation == TANH:
            for j in range(m):
                d[j] = g[j] * (one - a[j] * a[j])
        else:
            dot = zero
            for j in range(m):
                dot += g[j] * a[j]
            for j in range(m):
                d[j] = a[j] * (g[j] - dot)
        for j in range(m):
            grad_b[j] += d[j]


@njit(cache=True)
def softmax_rows(x, out, zero, one):
    """Softmax of each row of a 2-D array."""
    for i in range(x.shape[0]):
        _softmax_row(x[i], out[i], zero, one)


@njit(cache=True)
def log_softmax_rows(x, out, zero):
    """out = z - max - log(sum(exp(z - max))) for each row (a stable log-sum-exp)."""
    for i in range(x.shape[0]):
        z, o = x[i], out[i]
        top = z[0]
        for j in range(1, z.size):
            top = z[j] if z[j] > top else top
        total = zero
        for j in range(z.size):
            total += math.exp(z[j] - top)
        log_total = math.log(total)
        for j in range(z.size):
            o[j] = (z[j] - top) - log_total     # subtract the max first: z - (top + log_total) loses digits


@njit(cache=True)
def softmax_cross_entropy_labels(logits, labels, need_grad, losses, grad, zero):
    """Integer targets: loss_i = lse_i - z_i[label]; grad = softmax(z) - onehot(label)."""
    for i in range(logits.shape[0]):
        z = logits[i]
        top = z[0]
        for j in range(1, z.size):
            top = z[j] if z[j] > top else top
        total = zero
        for j in range(z.size):
            total += math.exp(z[j] - top)
        log_total = math.log(total)       # lse = top + log_total, kept apart so large logits keep their digits
        losses[i] = log_total - (z[labels[i]] - top)
        if need_grad:
            g = grad[i]
            for j in range(z.size):
                g[j] = math.exp((z[j] - top) - log_total)
            g[labels[i]] -= 1


@njit(cache=True)
def softmax_cross_entropy_soft(logits, targets, need_grad, losses, grad, zero):
    """Float targets t: loss_i = sum_j t_ij (lse_i - z_ij); grad = p * sum_j t_ij - t (right for any t)."""
    for i in range(logits.shape[0]):
        z, t = logits[i], targets[i]
        top = z[0]
        for j in range(1, z.size):
            top = z[j] if z[j] > top else top
        total = zero
        for j in range(z.size):
            total += math.exp(z[j] - top)
        log_total = math.log(total)
        loss = zero
        weight = zero
        for j in range(z.size):
            loss += t[j] * (log_total - (z[j] - top))
            weight += t[j]
        losses[i] = loss
        if need_grad:
            g = grad[i]
            for j in range(z.size):
                g[j] = math.exp((z[j] - top) - log_total) * weight - t[j]
