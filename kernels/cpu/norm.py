"""Normalization kernels: moments, normalize and its backward, for statistics per column (batch
normalization, x viewed as (samples, features)) or per row (layer normalization).

Stable moments in one pass over memory: the rows are cut into chunks of ``CHUNK_ROWS``; each chunk's
mean and sum of squared deviations M2 come from two sweeps over the chunk while it sits in cache
(float32 data: one sweep of float64 sums about the chunk's first row, ``_chunk_moments_shifted``),
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
"""
import numpy as np
from numba import njit, prange

CHUNK_ROWS = 256


def chunk_count(rows):
    """How many chunks of CHUNK_ROWS the rows make (at least one)."""
    return max(-(-rows // CHUNK_ROWS), 1)


@njit(inline="always")
def _chunk_moments(x, k, means, m2s):
    """means[k], m2s[k] (float64 rows) of the rows of chunk k: its mean first, then its squared deviations."""
    start, stop = k * CHUNK_ROWS, min((k + 1) * CHUNK_ROWS, x.shape[0])
    mean, m2 = means[k], m2s[k]
    mean[:] = 0.0
    m2[:] = 0.0
    for i in range(start, stop):
        row = x[i]
        for j in range(row.size):
            mean[j] += row[j]
    count = stop - start
    for j in range(mean.size):
        mean[j] /= count
    for i in range(start, stop):
        row = x[i]
        for j in range(row.size):
            d = row[j] - mean[j]
            m2[j] += d * d


@njit(inline="always")
def _chunk_moments_shifted(x, k, means, m2s):
    """The same in ONE sweep, for float32 data: sums of d = x - c and d^2 about the chunk's first row c,
    in float64, then mean = c + sum(d) / n and M2 = sum(d^2) - sum(d)^2 / n. The subtraction loses about
    ((mean - c) / std)^2 float64 ulps, far below float32's resolution for any c within 10^4 standard
    deviations of the mean (float64 data take the two sweeps above)."""
    start, stop = k * CHUNK_ROWS, min((k + 1) * CHUNK_ROWS, x.shape[0])
    mean, m2 = means[k], m2s[k]
    for j in range(mean.size):
        mean[j] = 0.0
        m2[j] = 0.0
    for i in range(start, stop):
        for j in range(mean.size):
            d = np.float64(x[i, j]) - np.float64(x[start, j])
            mean[j] += d
            m2[j] += d * d
    count = stop - start
    for j in range(mean.size):
        total = mean[j]
        mean[j] = np.float64(x[start, j]) + total / count
        m2[j] = max(m2[j] - total * total / count, 0.0)


@njit(inline="always")
def _merge_chunks(means, m2s, rows, out):
    """Chan's merge of the chunks, in order; out[0] = means, out[1] = M2 / rows."""
    mean, m2 = means[0].copy(), m2s[0].copy()
    seen = min(CHUNK_ROWS, rows)
    for k in range(1, means.shape[0]):
        count = min(CHUNK_ROWS, rows - k * CHUNK_ROWS)
        total = seen + count
        for j in range(mean.size):
            d = means[k, j] - mean[j]
            mean[j] += d * count / total
            m2[j] += m2s[k, j] + d * d * seen * count / total
        seen = total
    for j in range(mean.size):
        out[0, j] = mean[j]
        out[1, j] = m2[j] / rows


@njit(cache=True, error_model="numpy")
def moments_columns(x, out, shifted):
    """out (2, c) = per-column mean and biased variance of x (m, c), m >= 1 (``shifted``: one sweep per
    chunk, for float32 data)."""
    chunks = -(-x.shape[0] // CHUNK_ROWS)
    means, m2s = np.empty((chunks, x.shape[1])), np.empty((chunks, x.shape[1]))
    for k in range(chunks):
        if shifted:
            _chunk_moments_shifted(x, k, means, m2s)
        else:
            _chunk_moments(x, k, means, m2s)
    _merge_chunks(means, m2s, x.shape[0], out)


@njit(cache=True, error_model="numpy", parallel=True)
def moments_columns_parallel(x, out, shifted):
    """``moments_columns`` with the chunks split across threads (bitwise the same result)."""
    chunks = -(-x.shape[0] // CHUNK_ROWS)
    means, m2s = np.empty((chunks, x.shape[1])), np.empty((chunks, x.shape[1]))
    for k in prange(chunks):
        if shifted:
            _chunk_moments_shifted(x, k, means, m2s)
        else:
            _chunk_moments(x, k, means, m2s)
    _merge_chunks(means, m2s, x.shape[0], out)


@njit(cache=True, error_model="numpy", parallel=True)
def moments_rows(x, out):
    """out (2, m) = per-row mean and biased variance of x (m, c), c >= 1 (two sweeps of each cached row)."""
    for i in prange(x.shape[0]):
        row = x[i]
        total = 0.0
        for j in range(row.size):
            total += row[j]
        mean = total / row.size
        squares = 0.0
        for j in range(row.size):
            d = row[j] - mean
            squares += d * d
        out[0, i] = mean
        out[1, i] = squares / row.size


@njit(inline="always")
def _scales(variance, epsilon, one):
    """r = 1 / sqrt(variance + epsilon) in the statistics' dtype (as the reference rounds it)."""
    r = np.empty_like(variance)
    for j in range(r.size):
        r[j] = one / np.sqrt(variance[j] + epsilon)
    return r


@njit(inline="always")
def _affine(v, j, gamma, beta, has_gamma, has_beta):
    """v * gamma[j] + beta[j], each part only when the layer has it."""
    if has_gamma:
        v = v * gamma[j]
    if has_beta:
        v = v + beta[j]
    return v


@njit(cache=True, error_model="numpy", parallel=True)
def normalize(x, mean, variance, gamma, beta, has_gamma, has_beta, epsilon, one, per_row, out):
    """out = ((x - mean) * r) * gamma + beta, statistics per column (per_row false) or per row."""
    r = _scales(variance, epsilon, one)
    if per_row:
        for i in prange(x.shape[0]):
            row, y, m, ri = x[i], out[i], mean[i], r[i]
            for j in range(row.size):
                y[j] = _affine((row[j] - m) * ri, j, gamma, beta, has_gamma, has_beta)
    else:
        for i in prange(x.shape[0]):
            row, y = x[i], out[i]
            for j in range(row.size):
                y[j] = _affine((row[j] - mean[j]) * r[j], j, gamma, beta, has_gamma, has_beta)


@njit(inline="always")
def _chunk_gradient_sums(x, grad, mean, r, per_row, k, sums_g, sums_gx):
    """sums_g[k] = sum of g, sums_gx[k] = sum of g * xhat over chunk k's rows, per column (float64)."""
    start, stop = k * CHUNK_ROWS, min((k + 1) * CHUNK_ROWS, x.shape[0])
    sg, sgx = sums_g[k], sums_gx[k]
    sg[:] = 0.0
    sgx[:] = 0.0
    for i in range(start, stop):
        row, g = x[i], grad[i]
        for j in range(row.size):
            xhat = (row[j] - mean[i]) * r[i] if per_row else (row[j] - mean[j]) * r[j]
            sg[j] += g[j]
            sgx[j] += g[j] * xhat


@njit(cache=True, error_model="numpy", parallel=True)
def normalize_backward_columns(x, grad, mean, variance, gamma, has_gamma, epsilon, one, through, dx, dgamma, dbeta):
    """Backward with statistics per column (batch normalization): dx, dgamma, dbeta (see the docstring)."""
    rows, columns = x.shape
    r = _scales(variance, epsilon, one)
    chunks = -(-rows // CHUNK_ROWS)
    sums_g, sums_gx = np.empty((chunks, columns)), np.empty((chunks, columns))
    for k in prange(chunks):
        _chunk_gradient_sums(x, grad, mean, r, False, k, sums_g, sums_gx)
    total_g, total_gx = sums_g.sum(axis=0), sums_gx.sum(axis=0)
    mean_h, mean_hx = np.empty(columns, x.dtype), np.empty(columns, x.dtype)
    for j in range(columns):
        dbeta[j] = total_g[j]
        dgamma[j] = total_gx[j]
        scale = gamma[j] if has_gamma else 1.0
        mean_h[j] = scale * total_g[j] / rows
        mean_hx[j] = scale * total_gx[j] / rows
    for i in prange(rows):
        row, g, out = x[i], grad[i], dx[i]
        for j in range(columns):
            h = g[j] * gamma[j] if has_gamma else g[j]
            if through:
                h = h - mean_h[j] - (row[j] - mean[j]) * r[j] * mean_hx[j]
            out[j] = h * r[j]


@njit(cache=True, error_model="numpy", parallel=True)
def normalize_backward_rows(x, grad, mean, variance, gamma, has_gamma, epsilon, one, dx, dgamma, dbeta):
    """Backward with statistics per row (layer normalization, always through them): dx, dgamma, dbeta."""
    rows, columns = x.shape
    r = _scales(variance, epsilon, one)
    chunks = -(-rows // CHUNK_ROWS)
    sums_g, sums_gx = np.empty((chunks, columns)), np.empty((chunks, columns))
    for k in prange(chunks):
        _chunk_gradient_sums(x, grad, mean, r, True, k, sums_g, sums_gx)
        for i in range(k * CHUNK_ROWS, min((k + 1) * CHUNK_ROWS, rows)):
            row, g, out, m, ri = x[i], grad[i], dx[i], mean[i], r[i]
            total_h, total_hx = 0.0, 0.0
            for j in range(columns):
                h = g[j] * gamma[j] if has_gamma else g[j]
                total_h += h
                total_hx += h * ((row[j] - m) * ri)
            mean_h, mean_hx = total_h / columns, total_hx / columns
            for j in range(columns):
                h = g[j] * gamma[j] if has_gamma else g[j]
                out[j] = (h - mean_h - (row[j] - m) * ri * mean_hx) * ri
    total_g, total_gx = sums_g.sum(axis=0), sums_gx.sum(axis=0)
    for j in range(columns):
        dbeta[j] = total_g[j]
        dgamma[j] = total_gx[j]
