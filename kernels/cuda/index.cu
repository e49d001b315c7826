// The scatter-add behind index_add, the backward of indexing: target[positions[k]] += values[k].
// The Python side turns any numpy-style index into flat positions; repeated positions must
// accumulate, so each addition is an atomic read-modify-write.
#include "common.cuh"

template <typename T>
__global__ void scatter_add(T* target, const long long* positions, const T* values, long long n) {
    FOR_EACH_ELEMENT(k, n) atomicAdd(target + positions[k], values[k]);
}
