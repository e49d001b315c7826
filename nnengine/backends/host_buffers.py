"""Reused host buffers for the CPU backend's large outputs: memory that is already mapped.

Why: a training step makes the same large arrays every time (a convolution's patch matrix, its
gradients, the pooled maps). A fresh large array is fresh memory from the kernel (numpy asks glibc,
which maps it anew above its mmap threshold), and its first write page-faults on every 4 KiB page,
or waits for a 2 MiB huge page to be zeroed and compacted. Measured on the MNIST-size CNN step
(benchmarks/cnn.py): one max-pooling backward took 0.16 ms writing into touched memory and 8-10 ms
writing into a fresh 4 MB array, inside the step.

How: the pool keeps the large buffers it handed out. A buffer is free again when nothing but the pool
refers to it: every array made from it (views, reshapes) holds a reference to it, so its reference
count says when the last user is gone, with no release call to forget. A request takes a free buffer
of the same byte size, or makes a new one. The pool holds at most ``MAX_POOLED_BYTES``; beyond that,
arrays are made and freed as numpy does. A free buffer that no request took during the last
``STALE_AFTER_REQUESTS`` requests goes back to the allocator (a model that is gone, a batch size seen
once), and ``release_free()`` gives back every free buffer at once. Buffers below ``MIN_POOLED_BYTES``
are never pooled (malloc reuses small blocks itself).
"""
import math
import sys
import threading

import numpy as np

#: arrays from this size up come from the pool
MIN_POOLED_BYTES = 1 << 20
#: the most memory the pool keeps (free and in use)
MAX_POOLED_BYTES = 1 << 30
#: a free buffer that no request took during this many pooled requests is given back (a model that is gone,
#: or a batch size seen once); a training step makes a few dozen requests
STALE_AFTER_REQUESTS = 4096

_LOCK = threading.Lock()
_BUFFERS = {}            # byte size -> the uint8 buffers of that size the pool owns
_HELD = [0]              # bytes the pool owns
_ITEMSIZES = {}          # dtype (as the callers pass it) -> bytes per element
_REQUESTS = [0]          # pooled requests so far
_LAST_USED = {}          # id(buffer) -> the request that last took it
# a buffer only the pool refers to: its list's slot, the loop's name, and getrefcount's argument
_FREE_REFERENCES = 3


def _free_buffer(nbytes):
    """A pooled buffer of ``nbytes`` that nothing else uses, a new pooled one, or None (pool full)."""
    _REQUESTS[0] += 1
    if _REQUESTS[0] % STALE_AFTER_REQUESTS == 0:
        _drop_free(_REQUESTS[0] - STALE_AFTER_REQUESTS)
    buffers = _BUFFERS.setdefault(nbytes, [])
    for buffer in buffers:
        if sys.getrefcount(buffer) == _FREE_REFERENCES:
            _LAST_USED[id(buffer)] = _REQUESTS[0]
            return buffer
    if _HELD[0] + nbytes > MAX_POOLED_BYTES:
        _drop_free()                     # shapes change (a new batch size): free sizes make room
        if _HELD[0] + nbytes > MAX_POOLED_BYTES:
            return None
    buffer = np.empty(nbytes, np.uint8)
    buffers.append(buffer)
    _HELD[0] += nbytes
    _LAST_USED[id(buffer)] = _REQUESTS[0]
    return buffer


def empty(shape, dtype, min_bytes=None):
    """Like ``numpy.empty(shape, dtype)`` (C order), from the pool when it is large: ``min_bytes`` and up
    (``MIN_POOLED_BYTES`` by default; a primitive whose every call makes the same medium-size arrays may pool
    from lower, as the recurrent ones do)."""
    elements = shape if isinstance(shape, int) else math.prod(shape)
    itemsize = _ITEMSIZES.get(dtype)
    if itemsize is None:
        itemsize = _ITEMSIZES[dtype] = np.dtype(dtype).itemsize
    nbytes = elements * itemsize
    if nbytes < (MIN_POOLED_BYTES if min_bytes is None else min_bytes):     # small: numpy's own, nothing else
        return np.empty(shape, dtype)
    with _LOCK:                          # the view is made before another thread can see the buffer free
        buffer = _free_buffer(nbytes)
        if buffer is None:
            return np.empty(shape, dtype)
        return buffer.view(dtype).reshape(shape)


def zeros(shape, dtype):
    """Like ``numpy.zeros(shape, dtype)``, from the pool when it is large."""
    out = empty(shape, dtype)
    out.fill(0)
    return out


def empty_like(x):
    """``empty(x.shape, x.dtype)``."""
    return empty(x.shape, x.dtype)


def held_bytes():
    """How many bytes the pool owns now (free and in use)."""
    return _HELD[0]


def _drop_free(used_before=None):
    """Give back the free buffers (only those last taken before request ``used_before``, when given)."""
    for nbytes, buffers in list(_BUFFERS.items()):
        kept = []
        for buffer in buffers:
            if sys.getrefcount(buffer) > _FREE_REFERENCES or (
                    used_before is not None and _LAST_USED[id(buffer)] >= used_before):
                kept.append(buffer)
            else:
                del _LAST_USED[id(buffer)]
        _HELD[0] -= nbytes * (len(buffers) - len(kept))
        _BUFFERS[nbytes] = kept


def release_free():
    """Give back every buffer nothing uses now (as torch.cuda.empty_cache does for PyTorch's GPU cache): for
    a long-lived process that is done with a large model. Free buffers also go back by themselves once
    STALE_AFTER_REQUESTS pooled requests pass without taking them."""
    with _LOCK:
        _drop_free()
