// Our tiled GEMM: C = op(A) @ op(B), op = transpose when its flag is set, for a batch of
// matrices (blockIdx.x picks the 128 x 128 tile of C, blockIdx.z the matrix; a stride of 0
// reuses one operand for every matrix).
//
// The scheme (the classic shared-memory + register blocking):
//  * Each block computes one 128 x 128 tile of C with 256 threads arranged 16 x 16.
//  * The K dimension is walked in slices of 8. For each slice the block copies a 128 x 8 panel
//    of op(A) and an 8 x 128 panel of op(B) into shared memory (4 + 4 elements per thread), so
//    every element loaded from global memory is reused 128 times from shared memory.
//  * Each thread accumulates an 8 x 8 block of C in registers: rows ty + 16 r and columns
//    tx + 16 c (r, c < 8). Per k it reads 8 values of A and 8 of B from shared memory and does
//    64 fused multiply-adds, so arithmetic outweighs shared-memory traffic 4 : 1.
//  * The strided row/column assignment makes the 16 threads of a half-warp read 16 adjacent
//    B values (no bank conflicts) and one broadcast A value, and write adjacent C elements.
//  * A is stored in shared memory transposed (k-major), so both panels are read along rows.
// Edges are handled by loading zeros outside the matrices and skipping stores outside C.
#include "common.cuh"

#define TILE 128
#define SLICE 8
#define THREADS_SIDE 16
#define PER_THREAD (TILE / THREADS_SIDE)   // 8 rows and 8 columns of C per thread
#define PAD 4

// Element (i, k) of op(A) for A stored row-major with leading dimension lda.
template <typename T> __device__ __forceinline__ T load_a(const T* a, long long i, long long k,
        long long m, long long kdim, long long lda, long long trans) {
    if (i >= m || k >= kdim) return T(0);
    return trans ? a[k * lda + i] : a[i * lda + k];
}

// Element (k, j) of op(B) for B stored row-major with leading dimension ldb.
template <typename T> __device__ __forceinline__ T load_b(const T* b, long long k, long long j,
        long long kdim, long long n, long long ldb, long long trans) {
    if (k >= kdim || j >= n) return T(0);
    return trans ? b[j * ldb + k] : b[k * ldb + j];
}

template <typename T>
__global__ void __launch_bounds__(THREADS_SIDE * THREADS_SIDE)
gemm_tiled(const T* a, const T* b, T* c, long long m, long long n, long long kdim,
           long long lda, long long ldb, long long trans_a, long long trans_b,
           long long stride_a, long long stride_b, long long stride_c) {
    // a_panel[k][i] = op(A)[row0 + i, k0 + k] and b_panel[k][j] = op(B)[k0 + k, col0 + j]. PAD
    // shifts each k-row by 4 banks: when consecutive threads store down a column (8 values of
    // k for one i), they hit 8 different banks instead of one.
    __shared__ T a_panel[SLICE][TILE + PAD];
    __shared__ T b_panel[SLICE][TILE + PAD];
    a += blockIdx.z * stride_a;
    b += blockIdx.z * stride_b;
    c += blockIdx.z * stride_c;
    // One flat tile index on x (CUDA allows 2^31 - 1 blocks there, 65535 on y): tiles run along
    // the rows of C, so consecutive blocks share their A panel through L2.
    const long long col_tiles = (n + TILE - 1) / TILE;
    const long long row0 = (long long)blockIdx.x / col_tiles * TILE, col0 = (long long)blockIdx.x % col_tiles * TILE;
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * THREADS_SIDE + tx;

    T acc[PER_THREAD][PER_THREAD];
#pragma unroll
    for (int r = 0; r < PER_THREAD; ++r)
#pragma unroll
        for (int s = 0; s < PER_THREAD; ++s) acc[r][s] = T(0);

    for (long long k0 = 0; k0 < kdim; k0 += SLICE) {
        // Copy the panels. Each of the 1024 elements of a panel gets one (thread, e) pair; the
        // mapping follows the stored layout so consecutive threads read consecutive addresses.
        for (int e = tid; e < TILE * SLICE; e += THREADS_SIDE * THREADS_SIDE) {
            int i = trans_a ? e % TILE : e / SLICE, k = trans_a ? e / TILE : e % SLICE;
            a_panel[k][i] = load_a(a, row0 + i, k0 + k, m, kdim, lda, trans_a);
            int j = trans_b ? e / SLICE : e % TILE, kb = trans_b ? e % SLICE : e / TILE;
            b_panel[kb][j] = load_b(b, k0 + kb, col0 + j, kdim, n, ldb, trans_b);
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < SLICE; ++k) {
            T a_reg[PER_THREAD], b_reg[PER_THREAD];
#pragma unroll
            for (int r = 0; r < PER_THREAD; ++r) a_reg[r] = a_panel[k][ty + THREADS_SIDE * r];
#pragma unroll
            for (int s = 0; s < PER_THREAD; ++s) b_reg[s] = b_panel[k][tx + THREADS_SIDE * s];
#pragma unroll
            for (int r = 0; r < PER_THREAD; ++r)
#pragma unroll
                for (int s = 0; s < PER_THREAD; ++s) acc[r][s] += a_reg[r] * b_reg[s];
        }
        __syncthreads();            // the panels are overwritten in the next slice
    }

#pragma unroll
    for (int r = 0; r < PER_THREAD; ++r) {
        long long i = row0 + ty + THREADS_SIDE * r;
#pragma unroll
        for (int s = 0; s < PER_THREAD; ++s) {
            long long j = col0 + tx + THREADS_SIDE * s;
            if (i < m && j < n) c[i * n + j] = acc[r][s];
        }
    }
}
