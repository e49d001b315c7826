"""Backends (floor 2): the Backend interface, its implementations and their registry.

Devices are strings. ``"numpy"`` is the reference backend; ``"cpu"`` is the numba
backend (our kernels in ``kernels/cpu``, imported on first use so that importing
nnengine does not wait for numba); ``"cuda"`` and ``"cuda:N"`` name GPUs, served by
the CuPy backend.
"""
import re
import threading

from .base import DENSE_ACTIVATIONS, Backend, DeviceUnavailableError
from .determinism import are_deterministic_algorithms_enabled, use_deterministic_algorithms
from .numpy_backend import NumpyBackend

__all__ = [
    "Backend", "NumpyBackend", "DENSE_ACTIVATIONS", "DeviceUnavailableError",
    "parse_device", "get_backend", "register_backend", "registered_backends",
    "is_device_available", "use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
]

_DEVICE_PATTERN = re.compile(r"^(cpu|numpy|cuda)(?::(\d+))?$")


def parse_device(device):
    """Return the canonical form of a device string, or raise a clear error.

    ``"cpu"`` and ``"numpy"`` stay as they are, ``"cuda"`` becomes ``"cuda:0"``,
    ``"cuda:N"`` stays. Surrounding space and case are ignored.

    Raises:
        TypeError: ``device`` is not a string.
        ValueError: the string names no device kind nnengine knows.
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {type(device).__name__}")
    canonical = _CANONICAL.get(device)
    if canonical is None:
        canonical = _canonical(device)
        if len(_CANONICAL) < 64:            # every Tensor made parses its device: remember the few seen
            _CANONICAL[device] = canonical
    return canonical


_CANONICAL = {}


def _canonical(device):
    """parse_device's work, for a string not seen before."""
    match = _DEVICE_PATTERN.match(device.strip().lower())
    if match is None:
        raise ValueError(f"unknown device {device!r}: expected 'cpu', 'numpy', 'cuda' or 'cuda:N'")
    kind, index = match.groups()
    if kind == "cuda":
        return f"cuda:{int(index or 0)}"
    if index is not None:
        raise ValueError(f"device {device!r}: only 'cuda' devices take an index")
    return kind


def _device_kind(device):
    return device.split(":")[0]


def _numba_backend(device):
    """The numba backend, imported only when a "cpu" backend is first asked for."""
    from .numba_backend import NumbaBackend
    return NumbaBackend(device)


def _cupy_backend(device):
    """The CuPy backend, imported only when a "cuda" backend is first asked for.

    Raises DeviceUnavailableError when CuPy is missing or no GPU answers (see cupy_backend.py).
    """
    from .cupy_backend import CupyBackend
    return CupyBackend(device)


# kind -> factory(device) returning a Backend
_FACTORIES = {
    "numpy": NumpyBackend,
    "cpu": _numba_backend,
    "cuda": _cupy_backend,
}
_INSTANCES = {}
# held while a backend is made or the registry changes: two threads asking for the first "cpu" backend at
# once must get the SAME instance (tensors compare backends by identity), and the factories are slow
_REGISTRY_LOCK = threading.RLock()


def register_backend(kind, factory):
    """Make ``factory(device) -> Backend`` serve every device of ``kind`` ("cpu", "numpy", "cuda").

    Later registrations replace earlier ones; instances already handed out stay valid.
    """
    if kind not in ("cpu", "numpy", "cuda"):
        raise ValueError(f"unknown device kind {kind!r}: expected 'cpu', 'numpy' or 'cuda'")
    with _REGISTRY_LOCK:
        _FACTORIES[kind] = factory
        for device in [d for d in _INSTANCES if _device_kind(d) == kind]:
            del _INSTANCES[device]


def registered_backends():
    """Return ``{kind: factory}`` for every device kind that has a backend."""
    with _REGISTRY_LOCK:
        return dict(_FACTORIES)


def get_backend(device):
    """Return the (memoized) Backend instance that computes on ``device``.

    Safe under concurrent first use: every thread gets the same instance.

    Raises:
        DeviceUnavailableError: no backend serves this kind of device here.
    """
    device = parse_device(device)
    backend = _INSTANCES.get(device)            # the common case takes no lock
    if backend is None:
        with _REGISTRY_LOCK:
            backend = _INSTANCES.get(device)
            if backend is None:
                factory = _FACTORIES.get(_device_kind(device))
                if factory is None:
                    raise DeviceUnavailableError(f"device {device!r} is not available: no backend is "
                                                 "registered for it")
                backend = _INSTANCES[device] = factory(device)
    return backend


def is_device_available(device):
    """Return True when ``get_backend(device)`` would succeed."""
    try:
        get_backend(device)
    except DeviceUnavailableError:
        return False
    return True
