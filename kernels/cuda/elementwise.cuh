// Device functions behind the general elementwise primitives (kernels/cuda/elementwise.py).
// Those primitives are CuPy ElementwiseKernels whose one-line operations call these functions;
// CuPy supplies the broadcasting and the loop. This header is their preamble.
#include "common.cuh"

template <typename T> __device__ __forceinline__ T nne_sigmoid(T x) { return stable_sigmoid(x); }
template <typename T> __device__ __forceinline__ T nne_relu(T x) { return relu_keep_nan(x); }

// numpy.maximum / numpy.minimum: NaN on either side gives NaN.
template <typename T> __device__ __forceinline__ T nne_maximum(T a, T b) { return nan_max(a, b); }
template <typename T> __device__ __forceinline__ T nne_minimum(T a, T b) {
    return (a != a || a < b) ? a : b;
}

// a ** b: pow for floating types; exponentiation by squaring for integers, where the product
// wraps on overflow as numpy's does (negative exponents are refused on the host first).
template <typename T> __device__ __forceinline__ T nne_power(T a, T b) { return pow(a, b); }
template <typename T> __device__ __forceinline__ T integer_power(T base, T exponent) {
    unsigned long long result = 1, factor = (unsigned long long)base;
    for (unsigned long long e = (unsigned long long)exponent; e > 0; e >>= 1) {
        if (e & 1) result *= factor;
        factor *= factor;
    }
    return (T)result;
}
template <> __device__ __forceinline__ int nne_power<int>(int a, int b) { return integer_power(a, b); }
template <> __device__ __forceinline__ long long nne_power<long long>(long long a, long long b) {
    return integer_power(a, b);
}
