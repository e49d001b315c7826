"""A plan's lowering to one numba function, put off until it is needed (the numba backend's ``lower_plan``).

While the ahead-of-time kernels serve a process (``kernels/cpu/aot.py``: numba not loaded), lowering a
plan at its capture would load numba, which is what that tier saves a short run from. The numba
backend then hands ``capture.Plan`` a ``DeferredLowering`` instead of the ``LoweredStep``: the plan
replays in Python until its ``LOWER_AFTER_REPLAYS``-th replay, and is lowered there.
"""


class DeferredLowering:
    """A plan's lowering, written only when first needed (see ``NumbaBackend.lower_plan``).

    ``ready_at_first_replay`` is False, so ``capture.Plan`` replays the plan until its
    ``LOWER_AFTER_REPLAYS``-th replay and then asks for ``argument_types`` and ``compile``: the first
    attribute asked for lowers the plan (which may raise LoweringRefused, as lowering at capture would),
    and from then on every attribute is the ``LoweredStep``'s own.
    """

    ready_at_first_replay = False

    def __init__(self, lower):
        self._lower = lower
        self._lowered = None

    @property
    def run(self):
        """The lowered step's ``run`` once lowered; None before (asking whether a plan is lowered lowers nothing)."""
        return None if self._lowered is None else self._lowered.run

    def __getattr__(self, name):                 # only names this class does not define
        if name.startswith("__") or name in ("_lower", "_lowered"):
            raise AttributeError(name)
        if self._lowered is None:
            self._lowered = self._lower()
        return getattr(self._lowered, name)
