"""How a parallel elementwise kernel splits its work: one contiguous span of elements per thread.

A ``prange`` over single elements hands numba's scheduler a loop whose body it outlines; with the
operation chosen by a code inside that body, LLVM no longer vectorises it: measured here (2 threads,
float32), ``relu`` over 2^24 elements took 40 ms in parallel against 3.7 ms in the serial kernel, Adam with
its amsgrad test per element lost the same way. So a parallel variant ranges over spans instead and runs
the serial kernel, which vectorises, on each one: elementwise, so the result is bitwise the serial one.
"""
from .jit import njit

#: spans per kernel: enough that any pool up to 64 threads gets an even share (the scheduler deals the spans
#: out in equal runs), few enough that each is long (the kernels run in parallel from a million elements up).
#: A fixed number, not numba.get_num_threads(): that call would keep the kernels out of numba's disk cache.
SPANS = 256


@njit(inline="always")
def span_count(n):
    """How many spans n elements split into: ``SPANS``, or n when there are fewer elements (at least 1)."""
    return max(1, min(n, SPANS))


@njit(inline="always")
def span(k, spans, n):
    """(start, stop) of span k when n elements split into ``spans`` contiguous spans of near-equal size."""
    return k * n // spans, (k + 1) * n // spans
