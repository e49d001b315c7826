// Fused neural-network kernels: the dense layer's epilogue and its backward, row softmax and
// log-softmax, and softmax cross-entropy forward + backward in one pass.
//
// Dense forward, a = act(x @ w + b): the product comes from a GEMM (cuBLAS or gemm.cu), then
// bias_activation adds the bias and applies the activation in place, one read and one write of
// the output. For softmax the bias is added inside softmax_rows instead.
//
// Dense backward: activation_grad_bias turns dL/da into dL/dz = g * act'(z), written from the
// output a (relu: [a > 0]; sigmoid: a(1 - a); tanh: 1 - a^2), and sums dL/dz over the rows for
// the bias gradient in the same pass; softmax_grad_rows does the softmax case,
// dz = a (g - sum_j g_j a_j), one warp per row.
#include "common.cuh"

// In place on z (rows, cols): z = act(z + b). Grid-stride over the elements; the column of
// element i is i % cols because z is row-major.
template <typename T>
__global__ void bias_activation(T* z, const T* bias, long long rows, long long cols,
                                long long has_bias, long long activation) {
    FOR_EACH_ELEMENT(i, rows * cols) {
        T v = z[i];
        if (has_bias) v += bias[i % cols];
        if (activation == ACT_RELU) v = relu_keep_nan(v);
        else if (activation == ACT_SIGMOID) v = stable_sigmoid(v);
        else if (activation == ACT_TANH) v = tanh(v);
        z[i] = v;
    }
}

// dz = g * act'(a) elementwise, and grad_b[j] += sum over this block's rows of dz[:, j].
// Launch: blockDim = (32, WARPS_PER_BLOCK); blockIdx.x picks 32 adjacent columns (so a warp reads
// 32 adjacent elements of a row: coalesced), and the rows are shared out in a grid-stride loop
// over threadIdx.y + blockIdx.y * WARPS_PER_BLOCK. Each thread keeps its column's partial sum in a
// register; the WARPS_PER_BLOCK partials of a column meet in shared memory, and one thread per
// column adds the block's total to grad_b with an atomic (grad_b starts at zero).
template <typename T>
__global__ void activation_grad_bias(const T* out, const T* grad_out, T* dz, T* grad_b,
                                     long long rows, long long cols, long long activation) {
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
        atomicAdd(grad_b + col, total);
    }
}

// Softmax (or log-softmax) of each row of x (+ bias, when has_bias), one warp per row:
//   m = max_j v_j,  s = sum_j exp(v_j - m),
//   softmax_j = exp(v_j - m) / s,   log_softmax_j = v_j - m - log(s)   (stable for any finite v).
template <typename T>
__global__ void softmax_rows(const T* x, const T* bias, T* out, long long rows, long long cols,
                             long long has_bias, long long log_output) {
    long long row = warp_row();
    if (row >= rows) return;               // the whole warp leaves together
    const T* xr = x + row * cols;
    T* outr = out + row * cols;
    T m = lowest<T>();
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE)
        m = nan_max(m, xr[j] + (has_bias ? bias[j] : T(0)));
    m = warp_max(m);
    T s = T(0);
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE)
        s += exp(xr[j] + (has_bias ? bias[j] : T(0)) - m);
    s = warp_sum(s);
    T log_s = log(s);
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE) {
        T shifted = xr[j] + (has_bias ? bias[j] : T(0)) - m;
        outr[j] = log_output ? shifted - log_s : exp(shifted) / s;
    }
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

// log sum_j exp(z_j) of one row, computed by the calling warp as m + log sum_j exp(z_j - m) with
// m = max_j z_j, so no exp overflows; every lane gets the result.
template <typename T> __device__ __forceinline__ T warp_log_sum_exp(const T* z, long long cols) {
    T m = lowest<T>();
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE) m = nan_max(m, z[j]);
    m = warp_max(m);
    T s = T(0);
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE) s += exp(z[j] - m);
    return m + log(warp_sum(s));
}

// Softmax cross-entropy with dense targets t (one-hot, soft or unnormalised), one warp per row.
// With lse = m + log sum_j exp(z_j - m), -log p_j = lse - z_j, so
//   loss = sum_j t_j (lse - z_j),   grad_j = p_j * sum_k t_k - t_j,   p_j = exp(z_j - lse).
template <typename T>
__global__ void softmax_xent_dense(const T* logits, const T* targets, T* losses, T* grad,
                                   long long rows, long long cols, long long need_grad) {
    long long row = warp_row();
    if (row >= rows) return;
    const T* z = logits + row * cols;
    const T* t = targets + row * cols;
    T lse = warp_log_sum_exp(z, cols);
    T loss = T(0), t_sum = T(0);
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE) {
        loss += t[j] * (lse - z[j]);
        t_sum += t[j];
    }
    loss = warp_sum(loss);
    t_sum = warp_sum(t_sum);
    if (threadIdx.x == 0) losses[row] = loss;
    if (need_grad)
        for (long long j = threadIdx.x; j < cols; j += WARP_SIZE)
            grad[row * cols + j] = exp(z[j] - lse) * t_sum - t[j];
}

// Softmax cross-entropy with class indices (the one-hot row of labels[row]), one warp per row:
//   loss = lse - z_label,   grad_j = p_j - [j == label].
// The labels were checked to lie in [0, cols) on the host before the launch.
template <typename T>
__global__ void softmax_xent_index(const T* logits, const long long* labels, T* losses, T* grad,
                                   long long rows, long long cols, long long need_grad) {
    long long row = warp_row();
    if (row >= rows) return;
    const T* z = logits + row * cols;
    long long label = labels[row];
    T lse = warp_log_sum_exp(z, cols);
    if (threadIdx.x == 0) losses[row] = lse - z[label];
    if (need_grad)
        for (long long j = threadIdx.x; j < cols; j += WARP_SIZE)
            grad[row * cols + j] = exp(z[j] - lse) - (j == label ? T(1) : T(0));
}
