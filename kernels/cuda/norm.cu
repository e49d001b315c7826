// Normalization kernels: moments, normalize and its backward, on a matrix x (rows, cols) with
// statistics per column (batch normalization) or per row (layer normalization, `per_row`).
//
// Per-column sums are made in two launches, never with atomics: a (32, 8) block owns 32 columns
// and a chunk of `chunk_rows` rows (gridDim.y chunks); its warps take rows y, y + 8, ... and meet in
// shared memory in a fixed order, writing one double partial per column and chunk. A second kernel
// merges the chunks in order. So the result depends on the shape only, never on timing.
//
// Moments are stable: each chunk's mean comes first, then its sum of squared deviations M2 about
// that mean (a second sweep of the chunk, from cache), and the chunks are merged by Chan's formula
// (counts a and b, n = a + b, d = mean_b - mean_a):
//     mean = mean_a + d * b / n,    M2 = M2_a + M2_b + d^2 * a * b / n,    variance = M2 / rows.
// Rows (layer normalization) take one warp each: the mean, then the squared deviations, in double.
//
// The backward (docs/convolution.md): xhat = (x - mean) * r, r = 1 / sqrt(variance + eps),
// h = g * gamma, means over the statistics' axis:
//     dbeta = sum_rows g,  dgamma = sum_rows g * xhat,  dx = r * (h - mean(h) - xhat * mean(h * xhat))
// (dx = r * h when the statistics are constants: moving statistics).
#include "common.cuh"

// r = 1 / sqrt(variance + eps), rounded in T as the reference rounds it.
template <typename T> __device__ __forceinline__ T inverse_std(T variance, T epsilon) {
    return T(1) / sqrt(variance + epsilon);
}

// Sum the 8 warps' values of `v` for this thread's column through shared memory, in warp order;
// every thread of the block gets the column's total.
__device__ __forceinline__ double block_column_sum(double v, double (*share)[WARP_SIZE]) {
    share[threadIdx.y][threadIdx.x] = v;
    __syncthreads();
    double total = 0.0;
    for (int y = 0; y < WARPS_PER_BLOCK; ++y) total += share[y][threadIdx.x];
    __syncthreads();
    return total;
}

// partials[chunk][0][col] = the chunk's mean, partials[chunk][1][col] = its M2 (double).
template <typename T>
__global__ void column_moments(const T* __restrict__ x, double* __restrict__ partials, long long rows,
                               long long cols, long long chunk_rows) {
    __shared__ double share[WARPS_PER_BLOCK][WARP_SIZE];
    long long col = (long long)blockIdx.x * WARP_SIZE + threadIdx.x;
    long long start = (long long)blockIdx.y * chunk_rows, stop = min(start + chunk_rows, rows);
    bool inside = col < cols;
    double sum = 0.0;
    for (long long i = start + threadIdx.y; inside && i < stop; i += WARPS_PER_BLOCK) sum += (double)x[i * cols + col];
    double mean = block_column_sum(sum, share) / (double)(stop - start);
    double squares = 0.0;
    for (long long i = start + threadIdx.y; inside && i < stop; i += WARPS_PER_BLOCK) {
        double d = (double)x[i * cols + col] - mean;
        squares += d * d;
    }
    double m2 = block_column_sum(squares, share);
    if (inside && threadIdx.y == 0) {
        partials[(blockIdx.y * 2) * cols + col] = mean;
        partials[(blockIdx.y * 2 + 1) * cols + col] = m2;
    }
}

// out[0][col] = mean, out[1][col] = variance: the chunks merged in order by Chan's formula.
template <typename T>
__global__ void merge_column_moments(const double* __restrict__ partials, T* __restrict__ out, long long chunks,
                                     long long rows, long long cols, long long chunk_rows) {
    FOR_EACH_ELEMENT(col, cols) {
        double mean = partials[col], m2 = partials[cols + col];
        double seen = (double)min(chunk_rows, rows);
        for (long long k = 1; k < chunks; ++k) {
            double count = (double)min(chunk_rows, rows - k * chunk_rows), total = seen + count;
            double d = partials[(k * 2) * cols + col] - mean;
            mean += d * count / total;
            m2 += partials[(k * 2 + 1) * cols + col] + d * d * seen * count / total;
            seen = total;
        }
        out[col] = (T)mean;
        out[cols + col] = (T)(m2 / (double)rows);
    }
}

// out[0][row] = mean, out[1][row] = variance of each row: one warp per row, two sweeps, in double.
template <typename T>
__global__ void row_moments(const T* __restrict__ x, T* __restrict__ out, long long rows, long long cols) {
    long long row = warp_row();
    if (row >= rows) return;
    const T* line = x + row * cols;
    double sum = 0.0;
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE) sum += (double)line[j];
    double mean = warp_sum(sum) / (double)cols;
    double squares = 0.0;
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE) {
        double d = (double)line[j] - mean;
        squares += d * d;
    }
    double variance = warp_sum(squares) / (double)cols;
    if (threadIdx.x == 0) {
        out[row] = (T)mean;
        out[rows + row] = (T)variance;
    }
}

// out = ((x - mean) * r) * gamma + beta, gamma and beta per column when the flags say so.
template <typename T>
__global__ void normalize(const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ variance,
                          const T* __restrict__ gamma, const T* __restrict__ beta, T* __restrict__ out,
                          long long rows, long long cols, long long has_gamma, long long has_beta,
                          long long per_row, T epsilon) {
    FOR_EACH_ELEMENT(e, rows * cols) {
        long long col = e % cols, s = per_row ? e / cols : col;
        T v = (x[e] - mean[s]) * inverse_std(variance[s], epsilon);
        if (has_gamma) v = v * gamma[col];
        if (has_beta) v = v + beta[col];
        out[e] = v;
    }
}

// partials[chunk][0][col] = sum of g, partials[chunk][1][col] = sum of g * xhat over the chunk's rows.
template <typename T>
__global__ void column_gradient_sums(const T* __restrict__ x, const T* __restrict__ grad, const T* __restrict__ mean,
                                     const T* __restrict__ variance, double* __restrict__ partials, long long rows,
                                     long long cols, long long chunk_rows, long long per_row, T epsilon) {
    __shared__ double share[WARPS_PER_BLOCK][WARP_SIZE];
    long long col = (long long)blockIdx.x * WARP_SIZE + threadIdx.x;
    long long start = (long long)blockIdx.y * chunk_rows, stop = min(start + chunk_rows, rows);
    bool inside = col < cols;
    double sum_g = 0.0, sum_gx = 0.0;
    for (long long i = start + threadIdx.y; inside && i < stop; i += WARPS_PER_BLOCK) {
        long long s = per_row ? i : col;
        T g = grad[i * cols + col];
        T xhat = (x[i * cols + col] - mean[s]) * inverse_std(variance[s], epsilon);
        sum_g += (double)g;
        sum_gx += (double)g * (double)xhat;
    }
    sum_g = block_column_sum(sum_g, share);
    sum_gx = block_column_sum(sum_gx, share);
    if (inside && threadIdx.y == 0) {
        partials[(blockIdx.y * 2) * cols + col] = sum_g;
        partials[(blockIdx.y * 2 + 1) * cols + col] = sum_gx;
    }
}

// dbeta[col], dgamma[col]: the chunks' sums added in order.
template <typename T>
__global__ void finish_gradient_sums(const double* __restrict__ partials, T* __restrict__ dgamma,
                                     T* __restrict__ dbeta, long long chunks, long long cols) {
    FOR_EACH_ELEMENT(col, cols) {
        double sum_g = 0.0, sum_gx = 0.0;
        for (long long k = 0; k < chunks; ++k) {
            sum_g += partials[(k * 2) * cols + col];
            sum_gx += partials[(k * 2 + 1) * cols + col];
        }
        dbeta[col] = (T)sum_g;
        dgamma[col] = (T)sum_gx;
    }
}

// dx with statistics per column, from dgamma and dbeta (the sums over rows).
template <typename T>
__global__ void normalize_dx_columns(const T* __restrict__ x, const T* __restrict__ grad, const T* __restrict__ mean,
                                     const T* __restrict__ variance, const T* __restrict__ gamma,
                                     const T* __restrict__ dgamma, const T* __restrict__ dbeta, T* __restrict__ dx,
                                     long long rows, long long cols, long long has_gamma, long long through,
                                     T epsilon) {
    FOR_EACH_ELEMENT(e, rows * cols) {
        long long col = e % cols;
        T scale = has_gamma ? gamma[col] : T(1);
        T r = inverse_std(variance[col], epsilon);
        T h = product_rn(grad[e], scale);
        if (through) {
            T mean_h = scale * dbeta[col] / T(rows), mean_hx = scale * dgamma[col] / T(rows);
            h = h - mean_h - (x[e] - mean[col]) * r * mean_hx;
        }
        dx[e] = h * r;
    }
}

// dx with statistics per row (always through them): one warp per row makes the row's two means.
template <typename T>
__global__ void normalize_dx_rows(const T* __restrict__ x, const T* __restrict__ grad, const T* __restrict__ mean,
                                  const T* __restrict__ variance, const T* __restrict__ gamma, T* __restrict__ dx,
                                  long long rows, long long cols, long long has_gamma, T epsilon) {
    long long row = warp_row();
    if (row >= rows) return;
    T m = mean[row], r = inverse_std(variance[row], epsilon);
    double sum_h = 0.0, sum_hx = 0.0;
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE) {
        T h = has_gamma ? product_rn(grad[row * cols + j], gamma[j]) : grad[row * cols + j];
        sum_h += (double)h;
        sum_hx += (double)h * (double)((x[row * cols + j] - m) * r);
    }
    T mean_h = (T)(warp_sum(sum_h) / (double)cols), mean_hx = (T)(warp_sum(sum_hx) / (double)cols);
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE) {
        T h = has_gamma ? product_rn(grad[row * cols + j], gamma[j]) : grad[row * cols + j];
        dx[row * cols + j] = (h - mean_h - (x[row * cols + j] - m) * r * mean_hx) * r;
    }
}
