// The scatter-add behind index_add, the backward of indexing: target[positions[k]] += values[k].
// The Python side turns any numpy-style index into flat positions; repeated positions must
// accumulate. Two ways:
//  * scatter_add: one thread per value, each addition an atomic read-modify-write. Fast, but
//    floating-point sums then depend on the order the threads arrive in (not deterministic);
//  * scatter_add_sorted (nnengine.use_deterministic_algorithms(True)): the positions come sorted,
//    with `order` the stable permutation that sorts them; the first thread of each run of equal
//    positions adds the run's values in their original order, then writes once. No atomics: the
//    same bits on every run.
#include "common.cuh"

// atomicAdd for every element type we instantiate: long long goes through the unsigned 64-bit
// overload (two's complement addition gives the same bits).
__device__ __forceinline__ void atomic_add(float* address, float value) { atomicAdd(address, value); }
__device__ __forceinline__ void atomic_add(double* address, double value) { atomicAdd(address, value); }
__device__ __forceinline__ void atomic_add(int* address, int value) { atomicAdd(address, value); }
__device__ __forceinline__ void atomic_add(long long* address, long long value) {
    atomicAdd(reinterpret_cast<unsigned long long*>(address), static_cast<unsigned long long>(value));
}

template <typename T>
__global__ void scatter_add(T* __restrict__ target, const long long* __restrict__ positions,
                            const T* __restrict__ values, long long n) {
    FOR_EACH_ELEMENT(k, n) atomic_add(target + positions[k], values[k]);
}

template <typename T>
__global__ void scatter_add_sorted(T* __restrict__ target, const long long* __restrict__ sorted_positions,
                                   const long long* __restrict__ order, const T* __restrict__ values, long long n) {
    FOR_EACH_ELEMENT(k, n) {
        long long position = sorted_positions[k];
        if (k > 0 && sorted_positions[k - 1] == position) continue;     // not the first of its run
        T sum = T(0);
        for (long long j = k; j < n && sorted_positions[j] == position; ++j) sum += values[order[j]];
        target[position] += sum;
    }
}
