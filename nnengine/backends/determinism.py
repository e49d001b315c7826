"""The switch between fast and deterministic kernels, where a backend has both (as PyTorch's)."""

import os

__all__ = ["use_deterministic_algorithms", "are_deterministic_algorithms_enabled"]

#: NNENGINE_DETERMINISTIC=1 in the environment starts a process in deterministic mode
ENV_VARIABLE = "NNENGINE_DETERMINISTIC"

_DETERMINISTIC = {"enabled": os.environ.get(ENV_VARIABLE, "").strip() == "1"}


def use_deterministic_algorithms(mode):
    """Make the backends choose deterministic kernels, which give the same bits on every run (as
    PyTorch's ``torch.use_deterministic_algorithms``).

    The numpy and numba backends always are. On CUDA the one primitive that is not by default is
    ``index_add`` (the backward of indexing and of Embedding), whose scatter-add adds repeated
    positions with atomics in whatever order the threads arrive; in deterministic mode it sorts the
    positions and adds each position's values in their original order instead (slower when many
    values meet at one position). The bias gradient and every reduction are deterministic anyway.
    ``NNENGINE_DETERMINISTIC=1`` in the environment turns it on from the start.
    """
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms takes True or False, got {mode!r}")
    _DETERMINISTIC["enabled"] = mode


def are_deterministic_algorithms_enabled():
    """Whether ``use_deterministic_algorithms(True)`` is in force."""
    return _DETERMINISTIC["enabled"]
