// Shared device helpers for nnengine's CUDA kernels (included by every .cu file).
//
// Conventions of every kernel in this directory:
//  * kernels are templates over the element type T (float or double, some also int and
//    long long); the loader instantiates them by name, e.g. "softmax_rows<float>";
//  * sizes, strides and flags are `long long` (the Python side passes numpy.int64), and
//    scalars are T (passed as a numpy scalar of the arrays' dtype);
//  * arrays are C-contiguous; optional arrays come with a flag, never as null pointers;
//  * "row" kernels give one warp (32 threads) to each row: blockDim = (32, WARPS_PER_BLOCK),
//    threadIdx.x is the lane and threadIdx.y the warp inside the block.
#pragma once

#define WARP_SIZE 32
#define WARPS_PER_BLOCK 8
#define FULL_MASK 0xffffffffu

// Activation codes ACT_NONE, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX: the loader defines them in
// front of every source from the one table, kernels/activation_codes.py.

// Reduction codes shared with kernels/cuda/reduce.py.
#define OP_SUM 0
#define OP_MAX 1

// -inf and the smallest value of each type: the identity of a max reduction.
template <typename T> __device__ __forceinline__ T lowest();
template <> __device__ __forceinline__ float lowest<float>() { return __int_as_float(0xff800000); }
template <> __device__ __forceinline__ double lowest<double>() { return __longlong_as_double(0xfff0000000000000LL); }
template <> __device__ __forceinline__ int lowest<int>() { return -2147483647 - 1; }
template <> __device__ __forceinline__ long long lowest<long long>() { return -9223372036854775807LL - 1; }

// max that propagates NaN as numpy.max does: a NaN on either side wins (x != x only for NaN).
template <typename T> __device__ __forceinline__ T nan_max(T a, T b) {
    return (a != a || a > b) ? a : b;
}

// a * b rounded on its own: the compiler may not fuse it into a later add (an fma keeps the product
// exact, so h - mean(h) with h = g * gamma would leave a rounding residue where the math gives 0).
__device__ __forceinline__ float product_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double product_rn(double a, double b) { return __dmul_rn(a, b); }

// Butterfly reductions across the 32 lanes of a warp: after log2(32) = 5 exchanges every lane
// holds the result (no shared memory, no __syncthreads).
template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset /= 2)
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

template <typename T> __device__ __forceinline__ T warp_max(T v) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset /= 2)
        v = nan_max(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

// The row this warp owns, for a launch of blockDim = (32, WARPS_PER_BLOCK).
__device__ __forceinline__ long long warp_row() {
    return (long long)blockIdx.x * blockDim.y + threadIdx.y;
}

// Grid-stride loop over n elements: each thread starts at its global index and steps by the
// total number of threads, so any grid size covers any n.
#define FOR_EACH_ELEMENT(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

// Logistic function without overflow: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) for x < 0, so the
// exponent is always -|x| <= 0.
template <typename T> __device__ __forceinline__ T stable_sigmoid(T x) {
    T e = exp(-fabs(x));
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// relu that keeps NaN (numpy.maximum(x, 0) is NaN for NaN x).
template <typename T> __device__ __forceinline__ T relu_keep_nan(T x) {
    return (x > T(0) || x != x) ? x : T(0);
}
