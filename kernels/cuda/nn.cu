// Fused neural-network kernels: the dense layer's epilogue and its backward, row softmax and
// log-softmax, and softmax cross-entropy forward + backward in one pass.
//
// Dense forward, a = act(x @ w + b): the product comes from a GEMM (cuBLAS or gemm.cu), then
// bias_activation adds the bias and applies the activation in place, one read and one write of
// the output. For softmax the bias is added inside softmax_rows instead.
//
// Dense backward: activation_grad_bias turns dL/da into dL/dz = g * act'(z), written from the
// output a (relu: [a > 0]; sigmoid: a(1 - a); tanh: 1 - a^2), and sums dL/dz over the rows for
// the bias gradient in the same pass (partial sums per block row, no atomics); softmax_grad_rows does the softmax case,
// dz = a (g - sum_j g_j a_j), one warp per row.
#include "common.cuh"

// In place on z (rows, cols): z = act(z + b). A 2-D grid: blockIdx.x / threadIdx.x pick the
// column (no 64-bit modulo per element) and the thread keeps its column's bias in a register
// while it strides down the rows; a warp touches 32 adjacent elements of a row (coalesced).
template <typename T>
__global__ void bias_activation(T* __restrict__ z, const T* __restrict__ bias, long long rows, long long cols,
                                long long has_bias, long long activation) {
    long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= cols) return;
    T b = has_bias ? bias[col] : T(0);
    for (long long row = (long long)blockIdx.y * blockDim.y + threadIdx.y; row < rows;
         row += (long long)gridDim.y * blockDim.y) {
        T v = z[row * cols + col] + b;
        if (activation == ACT_RELU) v = relu_keep_nan(v);
        else if (activation == ACT_SIGMOID) v = stable_sigmoid(v);
        else if (activation == ACT_TANH) v = tanh(v);
        z[row * cols + col] = v;
    }
}

// dz = g * act'(a) elementwise, and partial_b[blockIdx.y, j] = sum of dz[:, j] over the rows this
// block row owns. Launch: blockDim = (32, WARPS_PER_BLOCK); blockIdx.x picks 32 adjacent columns
// (so a warp reads 32 adjacent elements of a row: coalesced), and the rows are shared out in a
// grid-stride loop over threadIdx.y + blockIdx.y * WARPS_PER_BLOCK. Each thread keeps its column's
// partial sum in a register; the WARPS_PER_BLOCK partials of a column meet in shared memory and
// are added in a fixed order. No atomics: with one block row (gridDim.y == 1) partial_b IS the
// bias gradient; otherwise the caller sums partial_b over its rows with reduce_middle, so the
// result is the same on every run (deterministic).
template <typename T>
__global__ void activation_grad_bias(const T* __restrict__ out, const T* __restrict__ grad_out, T* __restrict__ dz,
                                     T* __restrict__ partial_b, long long rows, long long cols, long long activation) {
    __shared__ T partial[WARPS_PER_BLOCK][WARP_SIZE];
    long long col = (long long)blockIdx.x * WARP_SIZE + threadIdx.x;
    T sum = T(0);
    if (col < cols) {
        for (long long row = (long long)blockIdx.y * WARPS_PER_BLOCK + threadIdx.y; row < rows;
             row += (long long)gridDim.y * WARPS_PER_BLOCK) {
            long long i = row * cols + col;
            T a = out[i], g = grad_out[i], d = g;
            if (activation == ACT_RELU) d = a > T(0) ? g : T(0);
            else if (activation == ACT_SIGMOID) d = g * a * (T(1) - a);
            else if (activation == ACT_TANH) d = g * (T(1) - a * a);
            dz[i] = d;
            sum += d;
        }
    }
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
        T total = T(0);
        for (int w = 0; w < WARPS_PER_BLOCK; ++w) total += partial[w][threadIdx.x];
        partial_b[blockIdx.y * cols + col] = total;
    }
}

// One row of values v_j = x_j (+ bias_j), as the lanes of the calling warp see it: lane l owns
// the columns j = l + 32 k. A row of at most ROW_IN_REGISTERS * 32 columns is read from memory
// once and held in registers (k is a compile-time index there, so `held` stays in registers);
// a longer row is read again in each pass of the kernel.
#define ROW_IN_REGISTERS 8
template <typename T> struct WarpRow {
    const T* __restrict__ x;
    const T* __restrict__ bias;            // nullptr: no bias
    long long cols;
    bool in_registers;
    T held[ROW_IN_REGISTERS];

    __device__ __forceinline__ T load(long long j) const { return bias ? x[j] + bias[j] : x[j]; }

    __device__ __forceinline__ WarpRow(const T* x_, const T* bias_, long long cols_)
        : x(x_), bias(bias_), cols(cols_), in_registers(cols_ <= ROW_IN_REGISTERS * WARP_SIZE) {
        if (in_registers) {
#pragma unroll
            for (int k = 0; k < ROW_IN_REGISTERS; ++k) {
                long long j = threadIdx.x + (long long)k * WARP_SIZE;
                held[k] = j < cols ? load(j) : T(0);
            }
        }
    }

    // f(v_j, j) for each column j of this lane, in increasing j.
    template <typename F> __device__ __forceinline__ void for_each(F f) const {
        if (in_registers) {
#pragma unroll
            for (int k = 0; k < ROW_IN_REGISTERS; ++k) {
                long long j = threadIdx.x + (long long)k * WARP_SIZE;
                if (j < cols) f(held[k], j);
            }
        } else {
            for (long long j = threadIdx.x; j < cols; j += WARP_SIZE) f(load(j), j);
        }
    }
};

// The shift m = max_j v_j and log_s = log sum_j exp(v_j - m) of a row, in every lane. They are
// kept apart on purpose: folding them into lse = m + log_s rounds away up to half an ulp of |m|,
// which exp(v_j - lse) then carries into every probability (3.8e-6 at |v| ~ 100 in float32).
template <typename T> struct ShiftedLogSum { T m, s, log_s; };

template <typename T> __device__ __forceinline__ ShiftedLogSum<T> row_shifted_log_sum(const WarpRow<T>& row) {
    T m = lowest<T>();
    row.for_each([&](T v, long long) { m = nan_max(m, v); });
    m = warp_max(m);
    T s = T(0);
    row.for_each([&](T v, long long) { s += exp(v - m); });
    s = warp_sum(s);
    return {m, s, log(s)};
}

// Softmax (or log-softmax) of each row of x (+ bias, when has_bias), one warp per row:
//   m = max_j v_j,  s = sum_j exp(v_j - m),
//   softmax_j = exp(v_j - m) / s,   log_softmax_j = (v_j - m) - log(s)   (stable for any finite v).
template <typename T>
__global__ void softmax_rows(const T* __restrict__ x, const T* __restrict__ bias, T* __restrict__ out,
                             long long rows, long long cols, long long has_bias, long long log_output) {
    long long row = warp_row();
    if (row >= rows) return;               // the whole warp leaves together
    WarpRow<T> v(x + row * cols, has_bias ? bias : nullptr, cols);
    ShiftedLogSum<T> stats = row_shifted_log_sum(v);
    T* outr = out + row * cols;
    v.for_each([&](T value, long long j) {
        T shifted = value - stats.m;
        outr[j] = log_output ? shifted - stats.log_s : exp(shifted) / stats.s;
    });
}

// Backward of a row softmax, one warp per row: dz_j = a_j (g_j - sum_k g_k a_k).
template <typename T>
__global__ void softmax_grad_rows(const T* out, const T* grad_out, T* dz, long long rows,
                                  long long cols) {
    long long row = warp_row();
    if (row >= rows) return;
    const T* a = out + row * cols;
    const T* g = grad_out + row * cols;
    T dot = T(0);
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE) dot += g[j] * a[j];
    dot = warp_sum(dot);
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE)
        dz[row * cols + j] = a[j] * (g[j] - dot);
}

// Softmax cross-entropy with dense targets t (one-hot, soft or unnormalised), one warp per row.
// With m and log_s of the row (row_shifted_log_sum), -log p_j = log_s - (z_j - m), so
//   loss = sum_j t_j (log_s - (z_j - m)),   grad_j = p_j * sum_k t_k - t_j,   p_j = exp((z_j - m) - log_s).
template <typename T>
__global__ void softmax_xent_dense(const T* __restrict__ logits, const T* __restrict__ targets,
                                   T* __restrict__ losses, T* __restrict__ grad,
                                   long long rows, long long cols, long long need_grad) {
    long long row = warp_row();
    if (row >= rows) return;
    const T* t = targets + row * cols;
    WarpRow<T> z(logits + row * cols, nullptr, cols);
    ShiftedLogSum<T> stats = row_shifted_log_sum(z);
    T loss = T(0), t_sum = T(0);
    z.for_each([&](T value, long long j) {
        loss += t[j] * (stats.log_s - (value - stats.m));
        t_sum += t[j];
    });
    loss = warp_sum(loss);
    t_sum = warp_sum(t_sum);
    if (threadIdx.x == 0) losses[row] = loss;
    if (need_grad)
        z.for_each([&](T value, long long j) {
            grad[row * cols + j] = exp((value - stats.m) - stats.log_s) * t_sum - t[j];
        });
}

// Softmax cross-entropy with class indices (the one-hot row of labels[row]), one warp per row:
//   loss = log_s - (z_label - m),   grad_j = p_j - [j == label],   p_j = exp((z_j - m) - log_s).
// The core checks labels on the host before the upload; a label outside [0, cols) that reaches
// the kernel anyway (a direct backend call) gives a NaN loss and gradient row, never a read
// outside the row.
template <typename T>
__global__ void softmax_xent_index(const T* __restrict__ logits, const long long* __restrict__ labels,
                                   T* __restrict__ losses, T* __restrict__ grad,
                                   long long rows, long long cols, long long need_grad) {
    long long row = warp_row();
    if (row >= rows) return;
    long long label = labels[row];
    const T* zr = logits + row * cols;
    if (label < 0 || label >= cols) {
        T nan = T(0) / T(0);
        if (threadIdx.x == 0) losses[row] = nan;
        if (need_grad)
            for (long long j = threadIdx.x; j < cols; j += WARP_SIZE) grad[row * cols + j] = nan;
        return;
    }
    WarpRow<T> z(zr, nullptr, cols);
    ShiftedLogSum<T> stats = row_shifted_log_sum(z);
    if (threadIdx.x == 0) losses[row] = stats.log_s - (zr[label] - stats.m);
    if (need_grad)
        z.for_each([&](T value, long long j) {
            grad[row * cols + j] = exp((value - stats.m) - stats.log_s) - (j == label ? T(1) : T(0));
        });
}
