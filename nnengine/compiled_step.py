"""The trainer's compiled steps: one plan per kind of step and shape, captured once, replayed after.

``StepCompiler.run(key, ...)`` runs a step's eager function the first time it meets ``key`` while a
``capture.Recorder`` listens, turns what it heard into a ``capture.Plan``, checks on the next step
(eager again, listening) that the step makes the same calls with the same uploaded host data, and from
then on replays the plan instead (see capture.py for what a plan is and why a replay is bitwise the
eager step). The key
holds everything a plan depends on (the kind of step, the shapes and dtypes of the batch, the device,
the model's layers and weights, the loss's path): a new key captures a new plan, so a plan never goes
stale. A fit with a fixed batch size captures at most two training plans (full and last partial
batch) and two evaluation plans.

Modes, as Keras 3's ``compile(jit_compile=...)``: ``"auto"`` compiles wherever a step can be captured
and runs the others eagerly, ``True`` demands it (``CaptureError`` naming the reason), ``False`` (or
``run_eagerly=True``) keeps every step eager.

Threads: a plan owns its buffers, so one thread at a time runs a model's plans. A thread that finds
another one inside this model's compiler (two threads predicting with one model) runs its step eagerly,
which gives the same numbers without waiting.
"""
import logging
import threading
from collections import Counter, OrderedDict

from .capture import CaptureError, Plan, Recorder, capturing

__all__ = ["StepCompiler", "JIT_MODES"]

log = logging.getLogger("nnengine.capture")

JIT_MODES = ("auto", True, False)

#: plans kept per model; the least recently used one goes when a new one would exceed this
MAX_PLANS = 16


class StepCompiler:
    """Plans of one model's steps, by key, and the record of what was captured and what fell back.

    Attributes:
        mode: "auto", True or False (see the module docstring).
        captures: how many plans were captured, by kind ("train", "test", "predict").
        fallback_reason: why the last step that could not be compiled ran eagerly, or None.
        mask_feeds: the dropout_masks.MaskFeed of each training key whose steps draw dropout masks (the trainer's).
    """

    def __init__(self, mode="auto"):
        if mode not in JIT_MODES or isinstance(mode, int) and not isinstance(mode, bool):
            raise ValueError(f"compile: jit_compile must be 'auto', True or False, got {mode!r}")
        self.mode = mode
        self.captures = Counter()
        self.fallback_reason = None
        self._plans = OrderedDict()
        self._unverified = set()
        self._ready = {}                 # verified plans of keys without a mask feed: what ``replay`` runs
        self._busy = threading.Lock()
        self.mask_feeds = {}

    @property
    def enabled(self):
        """False when every step runs eagerly."""
        return self.mode is not False

    def run(self, key, backend, inputs, params, eager, blocker=None, live=None, defer=False):
        """The step's output arrays: replayed from the plan of ``key``, or computed by ``eager()``.

        Args:
            key: a hashable whose first item is the kind of step.
            backend: the Backend the step computes on.
            inputs: the step's input arrays (the batch), in a fixed order.
            params: the tensors whose arrays the step reads (the model's weights), or a function giving them
                (called only when a plan is captured).
            eager: a function that runs the step eagerly and returns its output arrays (a list).
            blocker: a reason this step cannot be captured, known before running it, or None.
            live: the optimizer whose updates the step makes (their scalars are read on each replay).
            defer: run this step eagerly and capture a later one (the first step of a fresh optimizer); or a
                function saying so, called only while ``key`` has no plan.
        """
        if not self.enabled or capturing():         # inside another capture: that one records these calls
            return eager()
        if blocker is not None:
            return self._eager_because(blocker, eager)
        if not self._busy.acquire(blocking=False):   # another thread replays or captures this model's plans
            return eager()
        try:
            return self._planned(key, backend, inputs, params, eager, live, defer)
        finally:
            self._busy.release()

    def _planned(self, key, backend, inputs, params, eager, live, defer):
        """run's work once this thread holds the compiler: replay, verify or capture the plan of ``key``."""
        plan = self._plans.get(key)
        if plan is None:
            if defer() if callable(defer) else defer:
                return eager()
            return self._capture(key, backend, inputs, params() if callable(params) else params, eager, live)
        self._plans.move_to_end(key)
        if isinstance(plan, str):
            return self._eager_because(plan, eager)
        if key in self._unverified:
            return self._verify(key, plan, backend, eager)
        return plan.run(inputs)

    def _verify(self, key, plan, backend, eager):
        """Run the step once more eagerly, listening: a plan is trusted when this step matches its capture."""
        recorder, outputs = Recorder.listen(backend, eager)
        self._unverified.discard(key)
        if not plan.matches(recorder):
            reason = ("the step uploads host data that changes from step to step (new random numbers?), "
                      "which a plan would freeze; a layer that does so should say it in capture_blocker")
            self._keep(key, reason)
            return self._eager_because(reason, lambda: outputs)
        if self.mask_feeds.get(key) is None:
            self._ready[key] = plan
        return outputs

    def _capture(self, key, backend, inputs, params, eager, live):
        recorder, outputs = Recorder.listen(backend, eager)
        try:
            plan = Plan.build(recorder, inputs, params, outputs, strict=True, live=live, lower=True)
        except CaptureError as error:
            self._keep(key, str(error))
            return self._eager_because(str(error), lambda: outputs)
        self._keep(key, plan)
        self._unverified.add(key)
        self.captures[key[0]] += 1
        log.info("captured a %s plan of %d primitive calls (plan %d of this model)", key[0], len(plan),
                 sum(self.captures.values()))
        return outputs

    def _keep(self, key, plan):
        self._plans[key] = plan
        self._ready.pop(key, None)
        while len(self._plans) > MAX_PLANS:
            dropped, _ = self._plans.popitem(last=False)
            self._unverified.discard(dropped)
            self._ready.pop(dropped, None)

    def _eager_because(self, reason, eager):
        self.fallback_reason = reason
        if self.mode is True:
            raise CaptureError(f"compile(jit_compile=True): this step cannot be compiled: {reason}")
        return eager()

    def replays(self, key):
        """Whether the next step of ``key`` replays a verified plan (so it runs nothing eagerly)."""
        return self.enabled and isinstance(self._plans.get(key), Plan) and key not in self._unverified

    def replay(self, key, inputs):
        """The hot path of a step without dropout masks: its outputs, replayed from the verified plan of ``key``
        with one lookup, or None when ``run`` must take the step (no such plan, compilation off, inside a
        capture, or another thread in this compiler). The caller has checked that no blocker applies."""
        plan = self._ready.get(key)
        if plan is None or self.mode is False or capturing() or not self._busy.acquire(blocking=False):
            return None
        try:
            self._plans.move_to_end(key)
            return plan.run(inputs)
        finally:
            self._busy.release()

    def drop(self, key):
        """Forget the plan of ``key`` (a step found it depends on more than its key says)."""
        self._plans.pop(key, None)
        self._unverified.discard(key)
        self._ready.pop(key, None)

    def plans(self):
        """The captured plans, by key (steps that fell back are not among them)."""
        return {key: plan for key, plan in self._plans.items() if isinstance(plan, Plan)}

    def report(self):
        """What was compiled: mode, plans captured by kind, plans held, plans running as one compiled function
        (``capture.Plan.lower``), and the last fallback's reason."""
        plans = self.plans().values()
        return {"jit_compile": self.mode, "captured": dict(self.captures), "plans_held": len(plans),
                "plans_lowered": sum(plan.is_lowered for plan in plans), "fallback_reason": self.fallback_reason}
