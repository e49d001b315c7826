// Reductions over axes (sum, max, argmax) and the scatter-add behind index_add.
//
// The Python side (reduce.py) views the input as (outer, reduced, inner), moving the reduced
// axes together first when they are not adjacent, and picks a kernel by shape:
//   inner == 1, short rows   -> reduce_rows_warp   (one warp per row of `reduced` elements)
//   inner == 1, long rows    -> reduce_rows_block  (one block per row, or per segment of a row)
//   inner > 1                -> reduce_middle      (32 adjacent outputs per block, coalesced)
// `op` is OP_SUM or OP_MAX (common.cuh); max propagates NaN as numpy does. Each thread's running
// sum is Kahan-compensated (Accumulator), so a long serial share loses no more than a few ulps.
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

// One thread's running reduction. For OP_SUM it is Kahan's compensated sum: `lost` keeps the low
// part each addition rounded away, (t - total) - y, and puts it back into the next addend, so the
// error stays O(ulp) instead of growing with the count. Once the total is inf or NaN there is
// nothing left to compensate (inf - inf would make NaN of an honest inf), so `lost` is reset.
template <typename T> struct Accumulator {
    long long op;
    T total, lost;
    __device__ __forceinline__ explicit Accumulator(long long op_) : op(op_), total(identity<T>(op_)), lost(T(0)) {}
    __device__ __forceinline__ void add(T x) {
        if (op == OP_MAX) { total = nan_max(total, x); return; }
        if (T(0.5) == T(0)) { total += x; return; }          // an integer type: exact, nothing to compensate
        T y = x - lost;
        T t = total + y;
        lost = (t - t == T(0)) ? (t - total) - y : T(0);      // t - t is 0 exactly when t is finite
        total = t;
    }
};

// out[r] = op over x[r*cols : min((r+1)*cols, total)], one warp per row.
template <typename T>
__global__ void reduce_rows_warp(const T* x, T* out, long long rows, long long cols,
                                 long long total, long long op) {
    long long row = warp_row();
    if (row >= rows) return;
    long long end = min((row + 1) * cols, total);
    Accumulator<T> acc(op);
    for (long long i = row * cols + threadIdx.x; i < end; i += WARP_SIZE) acc.add(x[i]);
    T result = warp_combine(acc.total, op);
    if (threadIdx.x == 0) out[row] = result;
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
    Accumulator<T> running(op);
    for (long long i = row * cols + threadIdx.x; i < end; i += blockDim.x) running.add(x[i]);
    T acc = warp_combine(running.total, op);
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

// out[o, c, i] = op over the r of chunk c (r in [c * chunk, (c + 1) * chunk)) of x[o, r, i], for
// x of shape (outer, reduced, inner); with chunk >= reduced there is one chunk and out is (outer,
// inner). Splitting `reduced` into chunks gives few outputs (a sum over axis 0 of an (N, 10) array)
// many blocks; the Python side then reduces the chunks' results in a second pass.
// Launch: blockDim = (32, WARPS_PER_BLOCK), one block per (o, c, group of 32 adjacent i), groups
// fastest: grid = outer * chunks * ceil(inner / 32) blocks along x. threadIdx.x picks one of the 32
// outputs (adjacent in memory, so loads coalesce) and threadIdx.y takes every WARPS_PER_BLOCK-th r;
// the WARPS_PER_BLOCK partials meet in shared memory and are combined in a fixed order.
template <typename T>
__global__ void reduce_middle(const T* __restrict__ x, T* __restrict__ out, long long outer, long long reduced,
                              long long inner, long long chunk, long long op) {
    __shared__ T partial[WARPS_PER_BLOCK][WARP_SIZE];
    long long groups = (inner + WARP_SIZE - 1) / WARP_SIZE;
    long long chunks = (reduced + chunk - 1) / chunk;
    long long g = blockIdx.x % groups, c = (blockIdx.x / groups) % chunks, o = blockIdx.x / groups / chunks;
    long long i = g * WARP_SIZE + threadIdx.x;
    long long r_end = min((c + 1) * chunk, reduced);
    Accumulator<T> acc(op);
    if (i < inner)
        for (long long r = c * chunk + threadIdx.y; r < r_end; r += WARPS_PER_BLOCK)
            acc.add(x[(o * reduced + r) * inner + i]);
    partial[threadIdx.y][threadIdx.x] = acc.total;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
        T total = acc.total;
        for (int w = 1; w < WARPS_PER_BLOCK; ++w) total = combine(total, partial[w][threadIdx.x], op);
        out[(o * chunks + c) * inner + i] = total;
    }
}

// Is (value a at index ia) a better argmax than (b at ib)? numpy's rule: the first NaN wins,
// then the largest value, and among equals the smaller index.
template <typename T> __device__ __forceinline__ bool better(T a, long long ia, T b, long long ib) {
    bool a_nan = a != a, b_nan = b != b;
    if (a_nan || b_nan) return a_nan && (!b_nan || ia < ib);
    return a > b || (a == b && ia < ib);
}

// The first maximum of x[begin:end] as seen by the calling warp: every lane gets its value and index.
template <typename T> __device__ __forceinline__ void warp_argmax(const T* x, long long begin, long long end,
                                                                  T& best, long long& best_index) {
    best = x[begin];
    best_index = begin;
    for (long long j = begin + threadIdx.x; j < end; j += WARP_SIZE)
        if (better(x[j], j, best, best_index)) { best = x[j]; best_index = j; }
    for (int offset = WARP_SIZE / 2; offset > 0; offset /= 2) {
        T other = __shfl_xor_sync(FULL_MASK, best, offset);
        long long other_index = __shfl_xor_sync(FULL_MASK, best_index, offset);
        if (better(other, other_index, best, best_index)) { best = other; best_index = other_index; }
    }
}

// out[r] = index of the first maximum of row r of x (rows, cols), one warp per row.
template <typename T>
__global__ void argmax_rows(const T* __restrict__ x, long long* __restrict__ out, long long rows, long long cols) {
    long long row = warp_row();
    if (row >= rows) return;
    T best;
    long long best_index;
    warp_argmax(x, row * cols, (row + 1) * cols, best, best_index);
    if (threadIdx.x == 0) out[row] = best_index - row * cols;
}

// The first maximum of row `row` of x (rows, cols) as an index into the row (every lane of the warp gets it).
template <typename T> __device__ __forceinline__ long long row_argmax(const T* x, long long row, long long cols) {
    T best;
    long long best_index;
    warp_argmax(x, row * cols, (row + 1) * cols, best, best_index);
    return best_index - row * cols;
}

// out[blockIdx.x] = the sum of each warp's `hits` (lane 0's count); every thread of the block must call it.
__device__ __forceinline__ void write_block_hits(long long hits, long long* out) {
    __shared__ long long per_warp[WARPS_PER_BLOCK];
    if (threadIdx.x == 0) per_warp[threadIdx.y] = hits;
    __syncthreads();
    if (threadIdx.x == 0 && threadIdx.y == 0) {
        long long total = 0;
        for (int w = 0; w < WARPS_PER_BLOCK; ++w) total += per_warp[w];
        out[blockIdx.x] = total;
    }
}

// The hits of an accuracy (Backend.argmax_matches): out[b] = how many of block b's rows of x (rows, cols) have
// their first maximum at the row's label. Warp w of block b takes rows (b * WARPS_PER_BLOCK + w) + k * (the
// grid's warps); the Python side adds the blocks' counts when there is more than one block.
template <typename T>
__global__ void argmax_hits_labels(const T* __restrict__ x, const long long* __restrict__ labels,
                                   long long* __restrict__ out, long long rows, long long cols) {
    long long hits = 0;
    long long warps = (long long)gridDim.x * blockDim.y;
    for (long long row = warp_row(); row < rows; row += warps)
        hits += row_argmax(x, row, cols) == labels[row];
    write_block_hits(hits, out);
}

// The same against target rows (rows, cols): a hit where both rows have their first maximum at one index.
template <typename T>
__global__ void argmax_hits_rows(const T* __restrict__ x, const T* __restrict__ targets,
                                 long long* __restrict__ out, long long rows, long long cols) {
    long long hits = 0;
    long long warps = (long long)gridDim.x * blockDim.y;
    for (long long row = warp_row(); row < rows; row += warps)
        hits += row_argmax(x, row, cols) == row_argmax(targets, row, cols);
    write_block_hits(hits, out);
}

// First pass of the argmax of one long flat array: segment s = x[s*length : min((s+1)*length, total)]
// gets one warp, which writes its first maximum's value and (global) index. The second pass takes
// the first maximum of the segments' values (argmax_rows), whose index is then looked up; ties and
// NaNs keep numpy's rule because segments are in order and each keeps its first best.
template <typename T>
__global__ void argmax_segments(const T* __restrict__ x, T* __restrict__ values, long long* __restrict__ indices,
                                long long segments, long long length, long long total) {
    long long segment = warp_row();
    if (segment >= segments) return;
    T best;
    long long best_index;
    warp_argmax(x, segment * length, min((segment + 1) * length, total), best, best_index);
    if (threadIdx.x == 0) {
        values[segment] = best;
        indices[segment] = best_index;
    }
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
