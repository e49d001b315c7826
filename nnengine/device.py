"""The default device: where new tensors live when no device is named.

Resolution order: the innermost ``with nnengine.device(...)`` block of the
current thread, else the value given to ``set_default_device``, else the
environment variable ``NNENGINE_DEVICE`` (read when first needed), else "cpu".
"""
import os
import threading

from .backends import parse_device

ENV_VARIABLE = "NNENGINE_DEVICE"

_state = {"default": None}
_local = threading.local()


def _context_stack():
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def get_default_device():
    """Return the canonical device string that new tensors use by default."""
    stack = _context_stack()
    if stack:
        return stack[-1]
    if _state["default"] is None:
        _state["default"] = parse_device(os.environ.get(ENV_VARIABLE, "cpu") or "cpu")
    return _state["default"]


def set_default_device(device):
    """Make ``device`` the process-wide default ("cpu", "numpy", "cuda", "cuda:N").

    ``None`` forgets the setting, so the environment variable is read again.
    """
    _state["default"] = None if device is None else parse_device(device)


class device:
    """Context manager: ``with nnengine.device("numpy"): ...`` makes it the default inside the block.

    Blocks nest, and each thread has its own stack of them.
    """

    def __init__(self, name):
        self.name = parse_device(name)

    def __enter__(self):
        _context_stack().append(self.name)
        return self.name

    def __exit__(self, *exc_info):
        _context_stack().pop()
        return False
