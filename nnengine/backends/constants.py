"""Shared 0-d constants (and shape-only index arrays): the core's scalar operands (1/n, 0, 0.5, ...) made once per backend and reused.

Making a constant is a device operation on a GPU (a fill kernel), and eager steps use several per
step; a cache turns them into zero. A shared constant is read only: the ops pass it to primitives as
an operand and nothing writes into it (the in-place primitives write into parameters, optimizer state
and arrays their caller made). It is made by the backend's class method, not through the instance,
so a capture recorder listening on the instance never sees it: a plan reads it as the constant it is.
"""
import threading

import numpy as np

#: constants kept per backend before the cache starts again (1/n for every batch size seen, and so on)
MAX_CONSTANTS = 256

_LOCK = threading.Lock()
_SHARED_IDS = set()     # ids of the arrays the caches hold (alive while held, so ids are not reused)


def _shared(backend, cache_name, limit, key, make, *arguments):
    """The array of ``key`` in the backend's cache ``cache_name``, made by ``make(*arguments)`` on first use
    (no closure on the hit path: eager steps ask for constants on every op) and registered as shared; the
    cache starts again when it holds ``limit`` arrays."""
    cache = backend.__dict__.setdefault(cache_name, {})
    array = cache.get(key)
    if array is None:
        array = make(*arguments)
        with _LOCK:
            if len(cache) >= limit:
                _SHARED_IDS.difference_update(id(a) for a in cache.values())
                cache.clear()
            cache[key] = array
            _SHARED_IDS.add(id(array))
    return array


def shared_constant(backend, value, dtype):
    """The 0-d array of ``dtype`` holding ``value`` on ``backend``, made on first use and then shared."""
    dtype = np.dtype(dtype)
    return _shared(backend, "_shared_constants", MAX_CONSTANTS, (type(value), value, dtype.str),
                   type(backend).full, backend, (), value, dtype)


def is_shared_constant(array):
    """Whether ``array`` is one of the shared constants (a capture may treat it as a constant)."""
    return id(array) in _SHARED_IDS


#: read-only index arrays kept per backend (a convolution's window positions, per input size)
MAX_SHARED_ARRAYS = 64


def shared_array(backend, key, make):
    """The read-only backend copy of the host array ``make()`` returns, uploaded once per backend and
    hashable ``key`` and then shared, like the 0-d constants (a capture reads it as a constant).

    For arrays that depend on shapes only: window positions, window counts. Nothing may write into it.
    """
    return _shared(backend, "_shared_arrays", MAX_SHARED_ARRAYS, key, _upload, backend, make)


def _upload(backend, make):
    return type(backend).from_numpy(backend, make())
