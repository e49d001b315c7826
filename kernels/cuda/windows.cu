// Window kernels of convolution and pooling: im2col, col2im, max and average pooling.
//
// Layout (channels_last, spatial axes flattened): x is (n, size, channels); `positions` has
// `entries` = windows * window int64 values: entry w * window + j is the flat input position of
// element j of window w, or `size` where that element lies in the padding. One thread per output
// element, channels fastest, so neighbouring threads read neighbouring channels (coalesced).
//
// The backward passes gather instead of scattering: each thread owns one input element (b, p, ch)
// and adds what the entries reading p contributed, in increasing entry order. So no atomics, no
// zero-filled output, and the same bits on every run. The entries reading p come from the inverse
// of `positions`, made once per positions array by the Python side (windows.py): `order` lists the
// entries sorted by position (a stable sort, so increasing within a position) and
// order[starts[p]] .. order[starts[p + 1] - 1] are those reading p.
#include "common.cuh"

// im2col: out[b, i, ch] = x[b, positions[i], ch], or `fill` where positions[i] is the padding.
template <typename T>
__global__ void window_gather(const T* __restrict__ x, const long long* __restrict__ positions,
                              T* __restrict__ out, long long n, long long size, long long entries,
                              long long channels, T fill) {
    FOR_EACH_ELEMENT(e, n * entries * channels) {
        long long ch = e % channels, row = e / channels;          // row = b * entries + i
        long long i = row % entries, b = row / entries;
        long long position = positions[i];
        out[e] = position < size ? x[(b * size + position) * channels + ch] : fill;
    }
}

// col2im: out[b, p, ch] = the sum of grad[b, i, ch] over the entries i that read p.
template <typename T>
__global__ void window_scatter(const T* __restrict__ grad, const long long* __restrict__ order,
                               const long long* __restrict__ starts, T* __restrict__ out, long long n,
                               long long size, long long entries, long long channels) {
    FOR_EACH_ELEMENT(e, n * size * channels) {
        long long ch = e % channels, row = e / channels;          // row = b * size + p
        long long p = row % size, b = row / size;
        T total = T(0);
        for (long long j = starts[p]; j < starts[p + 1]; ++j)
            total += grad[(b * entries + order[j]) * channels + ch];
        out[e] = total;
    }
}

// out[b, w, ch] = the maximum of window w's real elements; chosen[b, w, ch] = the position of the
// FIRST holding it (strictly greater replaces; the first NaN wins and stays, as numpy's max).
template <typename T>
__global__ void max_pool(const T* __restrict__ x, const long long* __restrict__ positions, T* __restrict__ out,
                         long long* __restrict__ chosen, long long n, long long size, long long windows,
                         long long window, long long channels) {
    FOR_EACH_ELEMENT(e, n * windows * channels) {
        long long ch = e % channels, row = e / channels;          // row = b * windows + w
        long long w = row % windows, b = row / windows;
        T best = T(0);
        long long where = -1;
        for (long long j = w * window; j < (w + 1) * window; ++j) {
            long long position = positions[j];
            if (position >= size) continue;
            T v = x[(b * size + position) * channels + ch];
            if (where < 0 || v > best || (v != v && best == best)) {
                best = v;
                where = position;
            }
        }
        out[e] = best;
        chosen[e] = where;
    }
}

// out[b, p, ch] = the sum of grad[b, w, ch] over the windows w that read p and chose it.
template <typename T>
__global__ void max_pool_backward(const T* __restrict__ grad, const long long* __restrict__ chosen,
                                  const long long* __restrict__ order, const long long* __restrict__ starts,
                                  T* __restrict__ out, long long n, long long size, long long windows,
                                  long long window, long long channels) {
    FOR_EACH_ELEMENT(e, n * size * channels) {
        long long ch = e % channels, row = e / channels;
        long long p = row % size, b = row / size;
        T total = T(0);
        for (long long j = starts[p]; j < starts[p + 1]; ++j) {
            long long k = (b * windows + order[j] / window) * channels + ch;
            if (chosen[k] == p) total += grad[k];
        }
        out[e] = total;
    }
}

// How many of window w's elements are real (not padding).
__device__ __forceinline__ long long real_count(const long long* positions, long long w, long long window,
                                                long long size) {
    long long count = 0;
    for (long long j = w * window; j < (w + 1) * window; ++j) count += positions[j] < size;
    return count;
}

// out[b, w, ch] = the mean of window w's real elements (padding left out of the count, as Keras).
template <typename T>
__global__ void average_pool(const T* __restrict__ x, const long long* __restrict__ positions, T* __restrict__ out,
                             long long n, long long size, long long windows, long long window, long long channels) {
    FOR_EACH_ELEMENT(e, n * windows * channels) {
        long long ch = e % channels, row = e / channels;
        long long w = row % windows, b = row / windows;
        T total = T(0);
        for (long long j = w * window; j < (w + 1) * window; ++j) {
            long long position = positions[j];
            if (position < size) total += x[(b * size + position) * channels + ch];
        }
        out[e] = total / T(real_count(positions, w, window, size));
    }
}

// out[b, p, ch] = the sum of grad[b, w, ch] / count(w) over the windows w that read p.
template <typename T>
__global__ void average_pool_backward(const T* __restrict__ grad, const long long* __restrict__ positions,
                                      const long long* __restrict__ order, const long long* __restrict__ starts,
                                      T* __restrict__ out, long long n, long long size, long long windows,
                                      long long window, long long channels) {
    FOR_EACH_ELEMENT(e, n * size * channels) {
        long long ch = e % channels, row = e / channels;
        long long p = row % size, b = row / size;
        T total = T(0);
        for (long long j = starts[p]; j < starts[p + 1]; ++j) {
            long long w = order[j] / window;
            total += grad[(b * windows + w) * channels + ch] / T(real_count(positions, w, window, size));
        }
        out[e] = total;
    }
}
