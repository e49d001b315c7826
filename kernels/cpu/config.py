"""Threading thresholds and the GEMM route of the numba kernels.

* ``PARALLEL_MIN_ELEMENTS`` and ``PARALLEL_MIN_STREAMING_ELEMENTS``: a kernel runs its parallel
  (prange) variant from this many elements up and the serial one below it; the first for kernels with
  real arithmetic per element (exp, tanh, sigmoid, softmax rows, normalisation, pooling), the second for
  the streaming ones, which do one or two operations per element and are bound by memory traffic (see
  ``parallel``). Both come from ``benchmarks/kernels_bench.py::parallel_threshold`` (part of
  ``python -m benchmarks``, reported as "threshold"), which times both variants of tanh (arithmetic),
  bias + relu and Adam (streaming) over sizes on this machine: below them, waking the thread pool (about
  70 µs here) costs more than it saves. A streaming kernel gains little from a second thread here even
  at 2^24 elements (one core nearly fills the memory bus: bias + relu 2.4 ms in parallel, 2.6 ms
  serial), so its threshold sits where the two meet, 2^22 elements (16 MB of float32), not at 2^20,
  where the serial kernel takes half the time or less (42 µs against 108 µs in the reference run of
  2026-12-01); on a machine with more cores and memory channels the parallel variants win from about there.
* ``gemm_route()``: "blas" (numpy's matmul, OpenBLAS) or "numba" (our GEMM in
  ``gemm.py``); the environment variable ``NNENGINE_GEMM`` sets it when nnengine is
  imported and ``set_gemm_route`` changes it at run time (tests and benchmarks).
* numba itself honours ``NUMBA_NUM_THREADS`` for the size of its thread pool.
* The threading layer is numba's "workqueue" (set by ``jit.py``) unless ``NUMBA_THREADING_LAYER`` says
  otherwise. With the OpenMP layer, GNU OpenMP's threads spin for a while after
  every parallel kernel and starve OpenBLAS's threads in the matrix product that
  follows: measured here, a 256 x 784 x 512 product took 1.6 ms alone and 7.7 ms
  right after a parallel kernel under OpenMP, 1.6 ms under workqueue. (workqueue
  does not allow parallel kernels to be launched from several Python threads at once: it aborts the
  process. ``OneThreadAtATime`` wraps a parallel kernel so that its launches hold one lock.)
"""
import os
import threading

PARALLEL_MIN_ELEMENTS = 1 << 20

#: the same for the streaming kernels (elementwise + - * max min and comparisons, neg, relu, bias + relu or
#: none, the activations' gradients, the optimizer updates)
PARALLEL_MIN_STREAMING_ELEMENTS = 1 << 22

#: below this many multiply-adds a dense layer runs entirely inside one serial fused kernel
SMALL_DENSE_FLOPS = 1 << 18

#: below this many elements a softmax (or its cross-entropy) takes libm's exp, not the vectorised exp32 (rows of
#: a few classes gain nothing from it, and a small model's first run then does not compile it: 0.3 s)
FAST_EXP_MIN_ELEMENTS = 1 << 14

#: up to this many elements, + - * / max min and totals take numpy's ufuncs: a numba dispatch costs as
#: much as numpy's call there, and a small model's first run then compiles three kernels fewer
NUMPY_MAX_ELEMENTS = 1 << 10


def parallel(elements, streaming=False):
    """Whether a kernel over ``elements`` elements runs its parallel variant (``streaming``: a kernel bound by
    memory traffic, which takes the higher threshold)."""
    return elements >= (PARALLEL_MIN_STREAMING_ELEMENTS if streaming else PARALLEL_MIN_ELEMENTS)


def workqueue_layer():
    """Whether numba's parallel kernels run on its workqueue threading layer (nnengine's default, set in jit.py)."""
    from .jit import numba
    return numba.config.THREADING_LAYER == "workqueue"


GEMM_ROUTES = ("blas", "numba")


def _checked(route, source):
    route = str(route).lower()
    if route not in GEMM_ROUTES:
        raise ValueError(f"{source} must be one of {GEMM_ROUTES}, got {route!r}")
    return route


_route = {"gemm": _checked(os.environ.get("NNENGINE_GEMM", "blas"), "NNENGINE_GEMM")}


def gemm_route():
    """The route of matrix products: 'blas' (the default) or 'numba'."""
    return _route["gemm"]


def set_gemm_route(route):
    """Send matrix products to 'blas' or 'numba' from now on; return the previous route."""
    previous = _route["gemm"]
    _route["gemm"] = _checked(route, "set_gemm_route")
    return previous


_PARALLEL_LAUNCH = threading.Lock()


class OneThreadAtATime:
    """A parallel numba kernel that one Python thread at a time runs (the others wait for the lock).

    numba's workqueue threading layer aborts the process ("Concurrent access has been detected") when
    two Python threads launch parallel kernels at once. Only parallel variants need this: they run from
    ``PARALLEL_MIN_ELEMENTS`` up, where a launch takes hundreds of microseconds and an uncontended lock
    well under one.
    """

    __slots__ = ("kernel", "_module", "_name")

    def __init__(self, kernel, name=None):
        """``OneThreadAtATime(kernel)``, or ``OneThreadAtATime(module, name)`` for the kernel ``module.name``,
        looked up at the first launch (so that naming a parallel kernel does not import numba)."""
        self.kernel = kernel if name is None else None
        self._module, self._name = kernel, name

    def __call__(self, *args):
        with _PARALLEL_LAUNCH:
            if self.kernel is None:
                self.kernel = getattr(self._module, self._name)
            return self.kernel(*args)
