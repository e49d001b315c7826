"""Normalization kernels: moments, normalize and its backward, for statistics per column (batch
normalization, x viewed as (samples, features)) or per row (layer normalization).

Stable moments in one pass over memory: the rows are cut into chunks of ``CHUNK_ROWS``; each chunk's
mean and sum of squared deviations M2 come from two sweeps over the chunk while it sits in cache
(float32 data: one sweep about the chunk's first row, float32 sums of 16 rows folded into float64 ones,
``_chunk_moments_shifted``),
and the chunks are merged in order by Chan's formula: with counts a, b (n = a + b), means m_a, m_b
and d = m_b - m_a,
    mean = m_a + d * b / n,    M2 = M2_a + M2_b + d^2 * a * b / n,    variance = M2 / rows.
No sum of squares minus a squared mean, which cancels catastrophically when |mean| >> std. Sums
accumulate in float64 whatever the input dtype. Chunks are fixed by the row count alone and merged in
a fixed order, so the serial and parallel (prange over chunks) variants give bitwise the same result,
on any number of threads. The per-row kernels keep each row in cache and take it twice (mean, then
deviations).

The backward (docs/convolution.md derives it): with xhat = (x - mean) * r, r = 1 / sqrt(variance + eps),
h = g * gamma and means over the statistics' axis,
    dbeta = sum_rows g,  dgamma = sum_rows g * xhat,  dx = r * (h - mean(h) - xhat * mean(h * xhat)),
or dx = r * h when the statistics are constants (moving statistics). One sweep makes the sums, one
writes dx: dx of any row needs sums over all rows, so two reads of x and g are the minimum.

Every kernel has a serial form and a ``_parallel`` one (prange over rows or chunks), both made of the
same inline pieces, so they give the same bits; the backend takes the parallel one from
``config.PARALLEL_MIN_ELEMENTS`` up. The serial forms compile in a fraction of the time (no parfor
pass): a small model's first run pays only for them. No slice assignment and no ``sum(axis=...)``
inside (each costs numba a second or more to compile).
"""
import numpy as np
from .jit import njit, prange

CHUNK_ROWS = 256


@njit(inline="always")
def _chunk_moments(x, k, means, m2s):
    """means[k], m2s[k] (float64 rows) of the rows of chunk k: its mean first, then its squared deviations."""
    start, stop = k * CHUNK_ROWS, min((k + 1) * CHUNK_ROWS, x.shape[0])
    mean, m2 = means[k], m2s[k]
    for j in range(mean.size):
        mean[j] = 0.0
        m2[j] = 0.0
    for i in range(start, stop):
        for j in range(mean.size):
            mean[j] += x[i, j]
    count = stop - start
    for j in range(mean.size):
        mean[j] /= count
    for i in range(start, stop):
        for j in range(mean.size):
            d = x[i, j] - mean[j]
            m2[j] += d * d


#: rows whose float32 sums are folded into the float64 ones at a time (the shifted sweep)
SUB_ROWS = 16


@njit(inline="always")
def _chunk_moments_shifted(x, k, means, m2s, scratch):
    """The same in ONE sweep, for float32 data: sums of d = x - c and d^2 about the chunk's first row c,
    then mean = c + sum(d) / n and M2 = sum(d^2) - sum(d)^2 / n. The sums run in float32 over SUB_ROWS rows
    at a time (few enough registers: the loop stays vectorised) and are folded into float64 after each,
    so a float32 partial holds at most 16 terms. The subtraction loses about ((mean - c) / std)^2 float64
    ulps, nothing at float32's resolution for any c within 10^4 standard deviations of the mean.
    ``scratch`` is a (2, columns) float64 array of the caller's (float64 data take the two sweeps above)."""
    start, stop = k * CHUNK_ROWS, min((k + 1) * CHUNK_ROWS, x.shape[0])
    columns = x.shape[1]
    centre, sub_d, sub_d2 = x[start].copy(), np.empty(columns, x.dtype), np.empty(columns, x.dtype)
    sum_d, sum_d2 = scratch[0], scratch[1]
    for j in range(columns):
        sum_d[j] = 0.0
        sum_d2[j] = 0.0
    for first in range(start, stop, SUB_ROWS):
        for j in range(columns):
            sub_d[j] = 0
            sub_d2[j] = 0
        for i in range(first, min(first + SUB_ROWS, stop)):
            for j in range(columns):
                d = x[i, j] - centre[j]
                sub_d[j] += d
                sub_d2[j] += d * d
        for j in range(columns):
            sum_d[j] += sub_d[j]
            sum_d2[j] += sub_d2[j]
    count = stop - start
    for j in range(columns):
        means[k, j] = centre[j] + sum_d[j] / count
        m2s[k, j] = max(sum_d2[j] - sum_d[j] * sum_d[j] / count, 0.0)


@njit(inline="always")
def _one_chunk_moments(x, k, means, m2s, shifted, scratch):
    if shifted:
        _chunk_moments_shifted(x, k, means, m2s, scratch)
    else:
        _chunk_moments(x, k, means, m2s)


@njit(inline="always")
def _merge_chunks(means, m2s, rows, out):
    """Chan's merge of the chunks, in order; out[0] = means, out[1] = M2 / rows."""
    for j in range(means.shape[1]):
        mean, m2 = means[0, j], m2s[0, j]
        seen = min(CHUNK_ROWS, rows)
        for k in range(1, means.shape[0]):
            count = min(CHUNK_ROWS, rows - k * CHUNK_ROWS)
            total = seen + count
            d = means[k, j] - mean
            mean += d * count / total
            m2 += m2s[k, j] + d * d * seen * count / total
            seen = total
        out[0, j] = mean
        out[1, j] = m2 / rows


@njit(cache=True, error_model="numpy")
def moments_columns(x, out, shifted):
    """out (2, c) = per-column mean and biased variance of x (m, c), m >= 1 (``shifted``: one sweep per
    chunk, for float32 data)."""
    chunks = -(-x.shape[0] // CHUNK_ROWS)
    means, m2s = np.empty((chunks, x.shape[1])), np.empty((chunks, x.shape[1]))
    scratch = np.empty((2, x.shape[1]))
    for k in range(chunks):
        _one_chunk_moments(x, k, means, m2s, shifted, scratch)
    _merge_chunks(means, m2s, x.shape[0], out)


@njit(cache=True, error_model="numpy", parallel=True)
def moments_columns_parallel(x, out, shifted):
    """``moments_columns`` with the chunks split across threads (bitwise the same result)."""
    chunks = -(-x.shape[0] // CHUNK_ROWS)
    means, m2s = np.empty((chunks, x.shape[1])), np.empty((chunks, x.shape[1]))
    for k in prange(chunks):
        _one_chunk_moments(x, k, means, m2s, shifted, np.empty((2, x.shape[1])))
    _merge_chunks(means, m2s, x.shape[0], out)


@njit(inline="always")
def _row_sum(x, i, shift):
    """sum over j of (x[i, j] - shift) in float64, in four interleaved partial sums (a single running sum
    waits on each addition's latency: four keep the adder busy)."""
    columns = x.shape[1]
    s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
    end = columns - columns % 4
    for j in range(0, end, 4):
        s0 += x[i, j] - shift
        s1 += x[i, j + 1] - shift
        s2 += x[i, j + 2] - shift
        s3 += x[i, j + 3] - shift
    for j in range(end, columns):
        s0 += x[i, j] - shift
    return (s0 + s1) + (s2 + s3)


@njit(inline="always")
def _row_squares(x, i, mean):
    """sum over j of (x[i, j] - mean)^2 in float64, four interleaved partial sums."""
    columns = x.shape[1]
    s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
    end = columns - columns % 4
    for j in range(0, end, 4):
        d0, d1, d2, d3 = x[i, j] - mean, x[i, j + 1] - mean, x[i, j + 2] - mean, x[i, j + 3] - mean
        s0 += d0 * d0
        s1 += d1 * d1
        s2 += d2 * d2
        s3 += d3 * d3
    for j in range(end, columns):
        d = x[i, j] - mean
        s0 += d * d
    return (s0 + s1) + (s2 + s3)


@njit(inline="always")
def _row_moments(x, i, out):
    """out[:, i] = mean and biased variance of row i: two sweeps of the cached row, in float64."""
    columns = x.shape[1]
    mean = _row_sum(x, i, 0.0) / columns
    out[0, i] = mean
    out[1, i] = _row_squares(x, i, mean) / columns


@njit(cache=True, error_model="numpy")
def moments_rows(x, out):
    """out (2, m) = per-row mean and biased variance of x (m, c), c >= 1."""
    for i in range(x.shape[0]):
        _row_moments(x, i, out)


@njit(cache=True, error_model="numpy", parallel=True)
def moments_rows_parallel(x, out):
    """``moments_rows`` with the rows split across threads."""
    for i in prange(x.shape[0]):
        _row_moments(x, i, out)


@njit(inline="always")
def _scales(variance, epsilon, one):
    """r = 1 / sqrt(variance + epsilon) in the statistics' dtype (as the reference rounds it)."""
    r = np.empty_like(variance)
    for j in range(r.size):
        r[j] = one / np.sqrt(variance[j] + epsilon)
    return r


@njit(inline="always")
def _scale_and_offset(gamma, beta, has_gamma, has_beta, columns, dtype):
    """gamma and beta as arrays: ones and zeros where the layer has none (x * 1 and x + 0 are exact, and the
    inner loops then carry no branch, which LLVM needs to vectorise them)."""
    return (gamma if has_gamma else np.ones(columns, dtype)), (beta if has_beta else np.zeros(columns, dtype))


@njit(inline="always")
def _normalize_row(x, mean, r, gamma, beta, per_row, out, i):
    """out[i] = ((x[i] - mean) * r) * gamma + beta, statistics of row i or per column."""
    # 2-D indexing, not row views: numba's serial loops over views of rows ran 6x slower here
    if per_row:
        m, ri = mean[i], r[i]
        for j in range(x.shape[1]):
            out[i, j] = ((x[i, j] - m) * ri) * gamma[j] + beta[j]
    else:
        for j in range(x.shape[1]):
            out[i, j] = ((x[i, j] - mean[j]) * r[j]) * gamma[j] + beta[j]


@njit(cache=True, error_model="numpy")
def normalize(x, mean, variance, gamma, beta, has_gamma, has_beta, epsilon, one, per_row, out):
    """out = ((x - mean) * r) * gamma + beta, statistics per column (per_row false) or per row."""
    r = _scales(variance, epsilon, one)
    gamma, beta = _scale_and_offset(gamma, beta, has_gamma, has_beta, x.shape[1], x.dtype)
    for i in range(x.shape[0]):
        _normalize_row(x, mean, r, gamma, beta, per_row, out, i)


@njit(cache=True, error_model="numpy", parallel=True)
def normalize_parallel(x, mean, variance, gamma, beta, has_gamma, has_beta, epsilon, one, per_row, out):
    """``normalize`` with the rows split across threads."""
    r = _scales(variance, epsilon, one)
    gamma, beta = _scale_and_offset(gamma, beta, has_gamma, has_beta, x.shape[1], x.dtype)
    for i in prange(x.shape[0]):
        _normalize_row(x, mean, r, gamma, beta, per_row, out, i)


@njit(inline="always")
def _chunk_gradient_sums(x, grad, mean, r, per_row, k, sums_g, sums_gx):
    """sums_g[k] = sum of g, sums_gx[k] = sum of g * xhat over chunk k's rows, per column (float64)."""
    start, stop = k * CHUNK_ROWS, min((k + 1) * CHUNK_ROWS, x.shape[0])
    for j in range(x.shape[1]):
        sums_g[k, j] = 0.0
        sums_gx[k, j] = 0.0
    for i in range(start, stop):
        if per_row:
            m, ri = mean[i], r[i]
            for j in range(x.shape[1]):
                sums_g[k, j] += grad[i, j]
                sums_gx[k, j] += grad[i, j] * ((x[i, j] - m) * ri)
        else:
            for j in range(x.shape[1]):
                sums_g[k, j] += grad[i, j]
                sums_gx[k, j] += grad[i, j] * ((x[i, j] - mean[j]) * r[j])


@njit(inline="always")
def _finish_sums(sums_g, sums_gx, dgamma, dbeta):
    """dbeta, dgamma = the chunks' sums added in chunk order."""
    for j in range(dbeta.size):
        total_g, total_gx = 0.0, 0.0
        for k in range(sums_g.shape[0]):
            total_g += sums_g[k, j]
            total_gx += sums_gx[k, j]
        dbeta[j] = total_g
        dgamma[j] = total_gx


@njit(inline="always")
def _column_means(dgamma, dbeta, gamma, rows):
    """mean(h) and mean(h * xhat) per column, h = g * gamma, from the column sums."""
    mean_h, mean_hx = np.empty_like(dbeta), np.empty_like(dbeta)
    for j in range(dbeta.size):
        mean_h[j] = gamma[j] * np.float64(dbeta[j]) / rows
        mean_hx[j] = gamma[j] * np.float64(dgamma[j]) / rows
    return mean_h, mean_hx


@njit(inline="always")
def _dx_row_columns(x, grad, mean, r, gamma, through, mean_h, mean_hx, dx, i):
    """dx[i] = (h - mean_h - xhat * mean_hx) * r (or h * r), h = g * gamma, statistics per column."""
    if through:
        for j in range(x.shape[1]):
            dx[i, j] = (grad[i, j] * gamma[j] - mean_h[j] - (x[i, j] - mean[j]) * r[j] * mean_hx[j]) * r[j]
    else:
        for j in range(x.shape[1]):
            dx[i, j] = (grad[i, j] * gamma[j]) * r[j]


@njit(cache=True, error_model="numpy")
def _gradient_sums_serial(x, grad, mean, r, sums_g, sums_gx):
    """Every chunk's column sums, in order (a function of its own: inlined into the kernel below, LLVM
    vectorised neither loop and the backward took 4.5 ms instead of 2.0 on 86528 x 32)."""
    for k in range(sums_g.shape[0]):
        _chunk_gradient_sums(x, grad, mean, r, False, k, sums_g, sums_gx)


@njit(cache=True, error_model="numpy")
def _dx_columns_serial(x, grad, mean, r, gamma, through, mean_h, mean_hx, dx):
    """dx of every row, statistics per column (a function of its own, as above)."""
    for i in range(x.shape[0]):
        _dx_row_columns(x, grad, mean, r, gamma, through, mean_h, mean_hx, dx, i)


@njit(cache=True, error_model="numpy")
def normalize_backward_columns(x, grad, mean, variance, gamma, has_gamma, epsilon, one, through, dx, dgamma, dbeta):
    """Backward with statistics per column (batch normalization): dx, dgamma, dbeta (see the docstring)."""
    rows, columns = x.shape
    r = _scales(variance, epsilon, one)
    chunks = -(-rows // CHUNK_ROWS)
    sums_g, sums_gx = np.empty((chunks, columns)), np.empty((chunks, columns))
    _gradient_sums_serial(x, grad, mean, r, sums_g, sums_gx)
    _finish_sums(sums_g, sums_gx, dgamma, dbeta)
    gamma, _ = _scale_and_offset(gamma, gamma, has_gamma, False, columns, x.dtype)
    mean_h, mean_hx = _column_means(dgamma, dbeta, gamma, rows)
    _dx_columns_serial(x, grad, mean, r, gamma, through, mean_h, mean_hx, dx)


@njit(cache=True, error_model="numpy", parallel=True)
def normalize_backward_columns_parallel(x, grad, mean, variance, gamma, has_gamma, epsilon, one, through, dx, dgamma,
                                        dbeta):
    """``normalize_backward_columns`` with the chunks, then the rows, split across threads."""
    rows, columns = x.shape
    r = _scales(variance, epsilon, one)
    chunks = -(-rows // CHUNK_ROWS)
    sums_g, sums_gx = np.empty((chunks, columns)), np.empty((chunks, columns))
    for k in prange(chunks):
        _chunk_gradient_sums(x, grad, mean, r, False, k, sums_g, sums_gx)
    _finish_sums(sums_g, sums_gx, dgamma, dbeta)
    gamma, _ = _scale_and_offset(gamma, gamma, has_gamma, False, columns, x.dtype)
    mean_h, mean_hx = _column_means(dgamma, dbeta, gamma, rows)
    for i in prange(rows):
        _dx_row_columns(x, grad, mean, r, gamma, through, mean_h, mean_hx, dx, i)


@njit(inline="always")
def _rows_chunk_backward(x, grad, mean, r, gamma, k, sums_g, sums_gx, dx):
    """Chunk k of the per-row backward: its column sums, and dx of its rows (each row's two means)."""
    _chunk_gradient_sums(x, grad, mean, r, True, k, sums_g, sums_gx)
    columns = x.shape[1]
    for i in range(k * CHUNK_ROWS, min((k + 1) * CHUNK_ROWS, x.shape[0])):
        m, ri = mean[i], r[i]
        h0, h1, hx0, hx1 = 0.0, 0.0, 0.0, 0.0      # two interleaved partial sums each (as _row_sum)
        end = columns - columns % 2
        for j in range(0, end, 2):
            ha, hb = grad[i, j] * gamma[j], grad[i, j + 1] * gamma[j + 1]
            h0 += ha
            h1 += hb
            hx0 += ha * ((x[i, j] - m) * ri)
            hx1 += hb * ((x[i, j + 1] - m) * ri)
        for j in range(end, columns):
            h = grad[i, j] * gamma[j]
            h0 += h
            hx0 += h * ((x[i, j] - m) * ri)
        mean_h, mean_hx = (h0 + h1) / columns, (hx0 + hx1) / columns
        for j in range(columns):
            dx[i, j] = (grad[i, j] * gamma[j] - mean_h - (x[i, j] - m) * ri * mean_hx) * ri


@njit(cache=True, error_model="numpy")
def _rows_backward_serial(x, grad, mean, r, gamma, sums_g, sums_gx, dx):
    """Every chunk of the per-row backward, in order (a function of its own, as _gradient_sums_serial)."""
    for k in range(sums_g.shape[0]):
        _rows_chunk_backward(x, grad, mean, r, gamma, k, sums_g, sums_gx, dx)


@njit(cache=True, error_model="numpy")
def normalize_backward_rows(x, grad, mean, variance, gamma, has_gamma, epsilon, one, dx, dgamma, dbeta):
    """Backward with statistics per row (layer normalization, always through them): dx, dgamma, dbeta."""
    r = _scales(variance, epsilon, one)
    gamma, _ = _scale_and_offset(gamma, gamma, has_gamma, False, x.shape[1], x.dtype)
    chunks = -(-x.shape[0] // CHUNK_ROWS)
    sums_g, sums_gx = np.empty((chunks, x.shape[1])), np.empty((chunks, x.shape[1]))
    _rows_backward_serial(x, grad, mean, r, gamma, sums_g, sums_gx, dx)
    _finish_sums(sums_g, sums_gx, dgamma, dbeta)


@njit(cache=True, error_model="numpy", parallel=True)
def normalize_backward_rows_parallel(x, grad, mean, variance, gamma, has_gamma, epsilon, one, dx, dgamma, dbeta):
    """``normalize_backward_rows`` with the chunks split across threads."""
    r = _scales(variance, epsilon, one)
    gamma, _ = _scale_and_offset(gamma, gamma, has_gamma, False, x.shape[1], x.dtype)
    chunks = -(-x.shape[0] // CHUNK_ROWS)
    sums_g, sums_gx = np.empty((chunks, x.shape[1])), np.empty((chunks, x.shape[1]))
    for k in prange(chunks):
        _rows_chunk_backward(x, grad, mean, r, gamma, k, sums_g, sums_gx, dx)
    _finish_sums(sums_g, sums_gx, dgamma, dbeta)
