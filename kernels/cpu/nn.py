"""Fused neural-network kernels: the dense layer, softmax, log-softmax, softmax cross-entropy.

Activation codes: NONE, RELU, SIGMOID, TANH, SOFTMAX (softmax over each row), from the one table
in ``kernels/activation_codes.py``.
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

import numpy as np
from .jit import njit, prange

from ..activation_codes import ACTIVATION_CODES
from .elementwise import exp32, sigmoid_scalar

# the codes of kernels/activation_codes.py as module constants, which numba folds into the kernels
NONE, RELU, SIGMOID, TANH, SOFTMAX = (ACTIVATION_CODES[name] for name in ("none", "relu", "sigmoid", "tanh", "softmax"))


@njit(inline="always")
def _activate_row(row, activation, zero, one):
    """Apply an elementwise activation to one output row in place (softmax runs as its own row kernel).

    Softmax is not a branch here: numba compiles every branch of a kernel whatever the code at run
    time, and the softmax one (exp, the row maximum and sum) tripled the first compilation of
    ``dense_small``, which a model trained on its logits never takes.
    """
    if activation == RELU:
        for j in range(row.size):
            v = row[j]
            row[j] = v if not v <= zero else zero      # one comparison, so it vectorises; NaN stays NaN
    elif activation == SIGMOID:
        for j in range(row.size):
            row[j] = sigmoid_scalar(row[j], one)
    elif activation == TANH:
        for j in range(row.size):
            row[j] = math.tanh(row[j])


@njit(inline="always")
def _row_max(z):
    """max(z) with four independent running maxima, so the comparisons overlap instead of queueing."""
    n = z.size
    a = b = c = d = z[0]
    j = 0
    while j + 4 <= n:
        a = z[j] if z[j] > a else a
        b = z[j + 1] if z[j + 1] > b else b
        c = z[j + 2] if z[j + 2] > c else c
        d = z[j + 3] if z[j + 3] > d else d
        j += 4
    while j < n:
        a = z[j] if z[j] > a else a
        j += 1
    a = b if b > a else a
    c = d if d > c else c
    return c if c > a else a


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def row_sum(v):
    """sum(v). The only kernel allowed to reassociate: LLVM then sums in vector lanes (8x faster here,
    and no less accurate than one running sum). Kept out of line so the flag touches nothing else."""
    total = v[0] - v[0]
    for j in range(v.size):
        total += v[j]
    return total


@njit(inline="always")
def _exp_shifted(z, top, out, scratch, spare, fast):
    """out[j] = e^(z[j] - top); returns their sum. ``fast``: float32 rows take the vectorised exp32."""
    if fast:
        for j in range(z.size):
            scratch[j] = z[j] - top
        exp32(scratch, out, spare)
    else:
        for j in range(z.size):
            out[j] = math.exp(z[j] - top)
    return row_sum(out)


@njit(inline="always")
def _softmax_row(z, out, one, scratch, spare, fast):
    """out = softmax(z) for one row: shift by the max so exp never overflows."""
    total = _exp_shifted(z, _row_max(z), out, scratch, spare, fast)
    scale = one / total
    for j in range(z.size):
        out[j] *= scale


@njit(cache=True, error_model="numpy")
def dense_small(x, w, b, has_bias, activation, out, zero, one):
    """out = act(x @ w + b) in one pass per row: x (n, k), w (k, m), b (m,), out (n, m)."""
    n, k = x.shape
    for i in range(n):
        row = out[i]
        # element loops, not row[:] = b: numba's slice assignment costs seconds to compile on a first run
        if has_bias:
            for j in range(row.size):
                row[j] = b[j]
        else:
            for j in range(row.size):
                row[j] = zero
        for p in range(k):
            xip = x[i, p]
            w_p = w[p]
            for j in range(row.size):
                row[j] += xip * w_p[j]
        _activate_row(row, activation, zero, one)


@njit(inline="always")
def _bias_activation_row(z, i, b, has_bias, activation, zero, one):
    row = z[i]
    if has_bias:
        for j in range(row.size):
            row[j] += b[j]
    _activate_row(row, activation, zero, one)


@njit(inline="always")
def _bias_relu_row(z, i, b, zero):
    """relu(z[i] + b) in one pass over the row, the sum never stored before its relu."""
    row = z[i]
    for j in range(row.size):
        v = row[j] + b[j]
        row[j] = v if not v <= zero else zero


# bias + relu, the commonest epilogue, runs in a loop of its own: with the other activations' code in the
# same loop body LLVM vectorises neither well (1M float32 here: 52 us alone against 81 us in the shared
# loop); the results are the same bitwise, one addition and one comparison per element either way.

@njit(cache=True, error_model="numpy")
def bias_activation(z, b, has_bias, activation, zero, one):
    """z = act(z + b) in place, row by row (the epilogue after a GEMM)."""
    if has_bias and activation == RELU:
        for i in range(z.shape[0]):
            _bias_relu_row(z, i, b, zero)
        return
    for i in range(z.shape[0]):
        _bias_activation_row(z, i, b, has_bias, activation, zero, one)


@njit(cache=True, error_model="numpy", parallel=True)
def bias_activation_parallel(z, b, has_bias, activation, zero, one):
    """``bias_activation`` with the rows split across threads."""
    if has_bias and activation == RELU:
        for i in prange(z.shape[0]):
            _bias_relu_row(z, i, b, zero)
        return
    for i in prange(z.shape[0]):
        _bias_activation_row(z, i, b, has_bias, activation, zero, one)


@njit(inline="always")
def _activation_grad_row(a, g, d, activation, zero, one):
    """One row of dz = dL/dz from a = out and g = grad_out."""
    m = a.size
    if activation == NONE:
        for j in range(m):
            d[j] = g[j]
    elif activation == SIGMOID:             # relu has a loop of its own: _relu_grad_row
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


@njit(inline="always")
def _relu_grad_row(a, g, d, sums, zero):
    """One row of relu's dz (g where a > 0, else 0), added to the column sums ``sums`` in the same pass
    (kept out of the shared loop as ``_bias_relu_row`` is: 1M float32 here, 140 against 210 us)."""
    for j in range(a.size):
        v = g[j] if a[j] > zero else zero
        d[j] = v
        sums[j] += v


@njit(cache=True, error_model="numpy")
def activation_grad(out, grad_out, activation, dz, grad_b, zero, one):
    """dz = dL/dz from a = out and g = grad_out; grad_b = sum over rows of dz (zero-filled by the caller)."""
    if activation == RELU:
        for i in range(out.shape[0]):
            _relu_grad_row(out[i], grad_out[i], dz[i], grad_b, zero)
        return
    for i in range(out.shape[0]):
        _activation_grad_row(out[i], grad_out[i], dz[i], activation, zero, one)
        for j in range(grad_b.size):
            grad_b[j] += dz[i, j]


#: rows per chunk of the parallel activation gradient (each chunk sums its share of the bias gradient)
GRAD_CHUNK_ROWS = 512


@njit(cache=True, error_model="numpy", parallel=True)
def activation_grad_parallel(out, grad_out, activation, dz, grad_b, zero, one):
    """``activation_grad`` over chunks of GRAD_CHUNK_ROWS rows split across threads; each chunk's bias
    gradient is a partial sum, and the partials are added in chunk order (the same bits on any thread count)."""
    rows = out.shape[0]
    chunks = -(-rows // GRAD_CHUNK_ROWS)
    partials = np.zeros((chunks, grad_b.size), grad_b.dtype)
    if activation == RELU:
        for k in prange(chunks):
            for i in range(k * GRAD_CHUNK_ROWS, min((k + 1) * GRAD_CHUNK_ROWS, rows)):
                _relu_grad_row(out[i], grad_out[i], dz[i], partials[k], zero)
    else:
        for k in prange(chunks):
            part = partials[k]
            for i in range(k * GRAD_CHUNK_ROWS, min((k + 1) * GRAD_CHUNK_ROWS, rows)):
                _activation_grad_row(out[i], grad_out[i], dz[i], activation, zero, one)
                for j in range(part.size):
                    part[j] += dz[i, j]
    for k in range(chunks):
        for j in range(grad_b.size):
            grad_b[j] += partials[k, j]


# The row kernels below take two scratch arrays of the input's shape (allocated once by the caller,
# so no row allocates): rows of them hold z - max and exp32's bits for the vectorised float32 exp.

@njit(cache=True, error_model="numpy")
def softmax_rows(x, out, one, fast, scratch, spare):
    """Softmax of each row of a 2-D array (``fast``: float32, vectorised exp)."""
    for i in range(x.shape[0]):
        _softmax_row(x[i], out[i], one, scratch[i], spare[i], fast)


@njit(cache=True, error_model="numpy", parallel=True)
def softmax_rows_parallel(x, out, one, fast, scratch, spare):
    """``softmax_rows`` with the rows split across threads."""
    for i in prange(x.shape[0]):
        _softmax_row(x[i], out[i], one, scratch[i], spare[i], fast)


@njit(inline="always")
def _log_softmax_body(x, out, i, fast, scratch, spare):
    # out = z - max - log(sum(exp(z - max))): subtract the max first, then the log of the sum
    z, o = x[i], out[i]
    top = _row_max(z)
    total = _exp_shifted(z, top, o, scratch[i], spare[i], fast)
    log_total = math.log(total)
    for j in range(z.size):
        o[j] = (z[j] - top) - log_total


@njit(cache=True, error_model="numpy")
def log_softmax_rows(x, out, fast, scratch, spare):
    """Log-softmax of each row by a stable log-sum-exp."""
    for i in range(x.shape[0]):
        _log_softmax_body(x, out, i, fast, scratch, spare)


@njit(cache=True, error_model="numpy", parallel=True)
def log_softmax_rows_parallel(x, out, fast, scratch, spare):
    """``log_softmax_rows`` with the rows split across threads."""
    for i in prange(x.shape[0]):
        _log_softmax_body(x, out, i, fast, scratch, spare)


@njit(inline="always")
def _soft_cross_entropy_row(logits, targets, i, need_grad, losses, grad, fast, scratch, spare):
    # loss = sum_j t_j (lse - z_j) with lse = top + log(total), e_j = e^(z_j - top), so
    # loss = log_total sum_j t_j - sum_j t_j (z_j - top);  grad = e / total * sum_j t_j - t
    z = logits[i]
    top = _row_max(z)
    e = grad[i]                      # the exponentials, turned into the gradient below when it is wanted
    total = _exp_shifted(z, top, e, scratch[i], spare[i], fast)
    log_total = math.log(total)
    t = targets[i]
    terms = scratch[i]
    for j in range(z.size):
        terms[j] = t[j] * (z[j] - top)
    weight = row_sum(t)
    losses[i] = log_total * weight - row_sum(terms)
    if need_grad:
        scale = weight / total
        for j in range(z.size):
            e[j] = e[j] * scale - t[j]


@njit(inline="always")
def _label_cross_entropy_row(logits, labels, i, need_grad, losses, grad, fast, scratch, spare):
    # for a label y (t one-hot): loss = log(total) - (z_y - top);  grad = e / total - one_hot(y)
    z = logits[i]
    top = _row_max(z)
    e = grad[i]
    total = _exp_shifted(z, top, e, scratch[i], spare[i], fast)
    label = labels[i]
    losses[i] = math.log(total) - (z[label] - top)
    if need_grad:
        scale = (total / total) / total
        for j in range(z.size):
            e[j] *= scale
        e[label] -= 1


# Soft targets and class labels are kernels of their own, not a branch of one: numba compiles every
# branch, and the soft one typed for integer labels cost a label-trained model its compilation.

@njit(cache=True, error_model="numpy")
def softmax_cross_entropy_soft(logits, targets, need_grad, losses, grad, fast, scratch, spare):
    """Per-row softmax cross-entropy and its gradient p * sum(t) - t, one pass per row.

    ``targets`` is (n, classes) of floats (one-hot, soft or unnormalised); ``grad`` (n, classes) is
    always given: without ``need_grad`` it only holds the exponentials.
    """
    for i in range(logits.shape[0]):
        _soft_cross_entropy_row(logits, targets, i, need_grad, losses, grad, fast, scratch, spare)


@njit(cache=True, error_model="numpy", parallel=True)
def softmax_cross_entropy_soft_parallel(logits, targets, need_grad, losses, grad, fast, scratch, spare):
    """``softmax_cross_entropy_soft`` with the rows split across threads."""
    for i in prange(logits.shape[0]):
        _soft_cross_entropy_row(logits, targets, i, need_grad, losses, grad, fast, scratch, spare)


@njit(cache=True, error_model="numpy")
def softmax_cross_entropy_labels(logits, labels, need_grad, losses, grad, fast, scratch, spare):
    """Per-row softmax cross-entropy against int64 class ``labels`` (n,), and its gradient p - one_hot."""
    for i in range(logits.shape[0]):
        _label_cross_entropy_row(logits, labels, i, need_grad, losses, grad, fast, scratch, spare)


@njit(cache=True, error_model="numpy", parallel=True)
def softmax_cross_entropy_labels_parallel(logits, labels, need_grad, losses, grad, fast, scratch, spare):
    """``softmax_cross_entropy_labels`` with the rows split across threads."""
    for i in prange(logits.shape[0]):
        _label_cross_entropy_row(logits, labels, i, need_grad, losses, grad, fast, scratch, spare)


# Variants with libm's exp only: the backend runs them for small inputs (config.FAST_EXP_MIN_ELEMENTS), where
# the vectorised exp32 gains nothing. ``fast`` reaches the row helpers as a literal False, so numba prunes the
# exp32 branch and a program that never has a large float32 softmax never compiles exp32 (0.3 s of a first run).
@njit(cache=True, error_model="numpy")
def softmax_rows_libm(x, out, one, fast, scratch, spare):
    """``softmax_rows`` with libm's exp (``fast`` is ignored)."""
    for i in range(x.shape[0]):
        _softmax_row(x[i], out[i], one, scratch[i], spare[i], False)


@njit(cache=True, error_model="numpy")
def log_softmax_rows_libm(x, out, fast, scratch, spare):
    """``log_softmax_rows`` with libm's exp (``fast`` is ignored)."""
    for i in range(x.shape[0]):
        _log_softmax_body(x, out, i, False, scratch, spare)


@njit(cache=True, error_model="numpy")
def softmax_cross_entropy_soft_libm(logits, targets, need_grad, losses, grad, fast, scratch, spare):
    """``softmax_cross_entropy_soft`` with libm's exp (``fast`` is ignored)."""
    for i in range(logits.shape[0]):
        _soft_cross_entropy_row(logits, targets, i, need_grad, losses, grad, False, scratch, spare)


@njit(cache=True, error_model="numpy")
def softmax_cross_entropy_labels_libm(logits, labels, need_grad, losses, grad, fast, scratch, spare):
    """``softmax_cross_entropy_labels`` with libm's exp (``fast`` is ignored)."""
    for i in range(logits.shape[0]):
        _label_cross_entropy_row(logits, labels, i, need_grad, losses, grad, False, scratch, spare)

