// Reductions over axes (sum, max, argmax) and the scatter-add behind index_add.
//
// The Python side (reduce.py) views the input as (outer, reduced, inner), moving the reduced
// axes together first when they are not adjacent, and picks a kernel by shape:
//   inner == 1, short rows   -> reduce_rows_warp   (one warp per row of `reduced` elements)
//   inner == 1, long rows    -> reduce_rows_block  (one block per row, or per segment of a row)
//   inner > 1                -> reduce_middle      (32 adjacent outputs per block, coalesced)
// `op` is OP_SUM or OP_MAX (common.cuh); max propagates NaN as numpy does.
#include "common.cuh"

template <typename T> __device__ __forceinline__ T identity(long long op) {
    return op == OP_MAX ? lowest<T>() : T(0);
}

template <typename T> __device__ __forceinline__ T combine(T a, T b, long long op) {
    return op == OP_MAX ? nan_max(a, b) : a + b;
}

template <typename T> __device__ __forceinline__ T warp_combine(T v, long long op) {
    return op == OP_MAX ? warp_max(v) : warp_sum(v);
}

// out[r] = op over x[r*cols : min((r+1)*cols, total)], one warp per row.
template <typename T>
__global__ void reduce_rows_warp(const T* x, T* out, long long rows, long long cols,
                                 long long total, long long op) {
    long long row = warp_row();
    if (row >= rows) return;
    long long end = min((row + 1) * cols, total);
    T acc = identity<T>(op);
    for (long long i = row * cols + threadIdx.x; i < end; i += WARP_SIZE) acc = combine(acc, x[i], op);
    acc = warp_combine(acc, op);
    if (threadIdx.x == 0) out[row] = acc;
}

// The same with one block of blockDim.x threads (a multiple of 32, at most 1024) per row: each
// warp reduces its share with shuffles, the warps' results meet in shared memory and the first
// warp combines them. With `total` < rows * cols the last row is a partial segment, which lets
// the Python side reduce a very long array in two passes (segments, then their results).
template <typename T>
__global__ void reduce_rows_block(const T* x, T* out, long long rows, long long cols,
                                  long long total, long long op) {
    __shared__ T warp_results[1024 / WARP_SIZE];
    long long row = blockIdx.x;
    long long end = min((row + 1) * cols, total);
    T acc = identity<T>(op);
    for (long long i = row * cols + threadIdx.x; i < end; i += blockDim.x) acc = combine(acc, x[i], op);
    acc = warp_combine(acc, op);
    int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
    if (lane == 0) warp_results[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        int warps = blockDim.x / WARP_SIZE;
        acc = lane < warps ? warp_results[lane] : identity<T>(op);
        acc = warp_combine(acc, op);
        if (lane == 0) out[row] = acc;
    }
}

// out[o, i] = op over r of x[o, r, i] for x of shape (outer, reduced, inner).
// Launch: blockDim = (32, WARPS_PER_BLOCK), one block per (o, group of 32 adjacent i):
// grid = outer * ceil(inner / 32) blocks along x. threadIdx.x picks one of the 32 outputs
// (adjacent in memory, so loads coalesce) and threadIdx.y takes every WARPS_PER_BLOCK-th r;
// the WARPS_PER_BLOCK partials meet in shared memory.
template <typename T>
__global__ void reduce_middle(const T* x, T* out, long long outer, long long reduced,
                              long long inner, long long op) {
    __shared__ T partial[WARPS_PER_BLOCK][WARP_SIZE];
    long long groups = (inner + WARP_SIZE - 1) / WARP_SIZE;
    long long o = blockIdx.x / groups;
    long long i = (blockIdx.x % groups) * WARP_SIZE + threadIdx.x;
    T acc = identity<T>(op);
    if (i < inner)
        for (long long r = threadIdx.y; r < reduced; r += WARPS_PER_BLOCK)
            acc = combine(acc, x[(o * reduced + r) * inner + i], op);
    partial[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
        for (int w = 1; w < WARPS_PER_BLOCK; ++w) acc = combine(acc, partial[w][threadIdx.x], op);
        out[o * inner + i] = acc;
    }
}

// Is (value a at index ia) a better argmax than (b at ib)? numpy's rule: the first NaN wins,
// then the largest value, and among equals the smaller index.
template <typename T> __device__ __forceinline__ bool better(T a, long long ia, T b, long long ib) {
    bool a_nan = a != a, b_nan = b != b;
    if (a_nan || b_nan) return a_nan && (!b_nan || ia < ib);
    return a > b || (a == b && ia < ib);
}

// out[r] = index of the first maximum of row r of x (rows, cols), one warp per row.
template <typename T>
__global__ void argmax_rows(const T* x, long long* out, long long rows, long long cols) {
    long long row = warp_row();
    if (row >= rows) return;
    const T* xr = x + row * cols;
    T best = xr[0];
    long long best_index = 0;
    for (long long j = threadIdx.x; j < cols; j += WARP_SIZE)
        if (better(xr[j], j, best, best_index)) { best = xr[j]; best_index = j; }
    for (int offset = WARP_SIZE / 2; offset > 0; offset /= 2) {
        T other = __shfl_xor_sync(FULL_MASK, best, offset);
        long long other_index = __shfl_xor_sync(FULL_MASK, best_index, offset);
        if (better(other, other_index, best, best_index)) { best = other; best_index = other_index; }
    }
    if (threadIdx.x == 0) out[row] = best_index;
}

// out[o, i] = argmax over r of x[o, r, i], one thread per output (r loops serially).
template <typename T>
__global__ void argmax_middle(const T* x, long long* out, long long outer, long long reduced,
                              long long inner) {
    FOR_EACH_ELEMENT(k, outer * inner) {
        long long o = k / inner, i = k % inner;
        const T* column = x + o * reduced * inner + i;
        T best = column[0];
        long long best_index = 0;
        for (long long r = 1; r < reduced; ++r)
            if (better(column[r * inner], r, best, best_index)) { best = column[r * inner]; best_index = r; }
        out[k] = best_index;
    }
}
