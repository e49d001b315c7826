"""Capture and replay: run a computation once while recording its backend primitive calls, then replay them.

Eager autograd pays for flexibility on every call: Tensors are made, ``Function.apply`` checks and
records nodes, ``backward`` walks the graph. None of that changes the numbers, which come from the
backend primitives alone. So a computation is run ONCE eagerly with a ``Recorder`` listening on its
backend, and what it heard becomes a ``Plan``: the ordered top-level primitive calls, each argument
resolved to one of

* an input (an array the caller passes anew on every replay: the batch),
* a parameter (a tensor whose ``_data`` is read at replay time, so in-place updates and ``assign_``
  are seen),
* the result of an earlier call in the plan,
* a constant (anything else: shapes, flags, scalars, dtypes, and host arrays built from them).

``Plan.run(inputs)`` calls the same primitives on the same backend in the same order, so its results
are bitwise those of the eager run. It skips Tensor, Node, autograd and every argument check.

What cannot be captured, the recorder refuses with a reason (``CaptureError``), and callers fall back
to eager: a host read of device data inside the region (``to_numpy``: data-dependent control flow may
follow), or a host array uploaded inside the region that the caller did not declare constant (new
random numbers every step, for example, which a plan would freeze). Dropout's masks are drawn before the
region and passed as inputs instead (dropout_masks.py); a layer that draws other host randomness says so
up front (``Layer.capture_blocker``).

``capture_jit.jit(fn)`` applies the same machinery to a function of Tensors (``nnengine.jit``).
"""
import logging
import os
import threading

import numpy as np

from .backends import Backend
from .backends.constants import is_shared_constant
from .backends.base import LoweringRefused

__all__ = ["CaptureError", "Plan", "Recorder", "capturing"]

log = logging.getLogger("nnengine.capture")

_INPUT, _PARAM, _RESULT, _CONST, _TUPLE = range(5)

#: replays of a plan before it is lowered to one compiled function (unless that function is in the disk cache)
LOWER_AFTER_REPLAYS = 1000
#: False keeps every plan on its Python replay (benchmarks compare the two tiers; NNENGINE_LOWER=0 sets it)
LOWERING_ENABLED = os.environ.get("NNENGINE_LOWER", "1") != "0"
_CAPTURE_LOCK = threading.Lock()
_THIS_THREAD = threading.local()


def capturing():
    """True while this thread records a capture: a nested capture (a jit function called inside a step
    being captured) then runs eagerly, and the outer plan records its primitives."""
    return getattr(_THIS_THREAD, "recording", False)


class CaptureError(RuntimeError):
    """A computation cannot be captured into a plan; the message says why."""


class Recorder:
    """Records the top-level primitive calls one thread makes on one backend, while in its ``with`` block.

    The backend instance is shared by every tensor of its device, so the recorder shadows each
    primitive with an instance attribute for the duration of the block. Calls from other threads pass
    straight through, and so do calls a primitive makes to other primitives (only the outermost call
    of a nest is recorded: it is the one a replay must make).

    Args:
        backend: the Backend to listen on.
        allow_uploads: record ``from_numpy`` calls as constants (their host arrays are copied): for
            regions whose uploads depend on shapes only. Otherwise an upload raises CaptureError.
    """

    def __init__(self, backend, allow_uploads=False):
        self.backend = backend
        self.allow_uploads = allow_uploads
        self.calls = []            # (name, args, kwargs, result)
        self.host_copies = set()   # ids of the host arrays of recorded uploads (constants by design)
        self.refusal = None
        self._thread = None
        self._depth = 0
        self._shadowed = {}

    def __enter__(self):
        if capturing():
            raise CaptureError("a capture is already recording in this thread")
        _CAPTURE_LOCK.acquire()
        _THIS_THREAD.recording = True
        self._thread = threading.get_ident()
        # a backend may keep its own per-instance wrappers (the CuPy one selects the GPU): keep them
        self._shadowed = {name: self.backend.__dict__.get(name) for name in Backend.primitives()}
        for name in Backend.primitives():
            setattr(self.backend, name, self._listener(name, self.method(name)))
        return self

    @classmethod
    def listen(cls, backend, compute, allow_uploads=True):
        """Run ``compute()`` with a recorder on ``backend``; return (the recorder, what compute returned)."""
        recorder = cls(backend, allow_uploads)
        with recorder:
            result = compute()
        return recorder, result

    def method(self, name):
        """Primitive ``name`` of the backend as it is when no recorder listens (what a plan calls)."""
        own = self._shadowed.get(name)
        return own if own is not None else getattr(type(self.backend), name).__get__(self.backend)

    def __exit__(self, *exc_info):
        for name, previous in self._shadowed.items():
            if previous is None:
                self.backend.__dict__.pop(name, None)
            else:
                setattr(self.backend, name, previous)
        _THIS_THREAD.recording = False
        _CAPTURE_LOCK.release()
        return False

    def _listener(self, name, method):
        def call(*args, **kwargs):
            if threading.get_ident() != self._thread or self._depth:
                return method(*args, **kwargs)
            self._depth += 1
            try:
                result = method(*args, **kwargs)
            finally:
                self._depth -= 1
            self._note(name, args, kwargs, result)
            return result
        return call

    def _note(self, name, args, kwargs, result):
        if name == "to_numpy" and self.refusal is None:
            self.refusal = "the computation reads device values on the host (to_numpy) between its steps"
        if name == "from_numpy":
            if not self.allow_uploads and self.refusal is None:
                self.refusal = "the computation uploads host data of its own (from_numpy), which a plan would freeze"
            args = (np.array(args[0], copy=True),)
            self.host_copies.add(id(args[0]))
        self.calls.append((name, args, kwargs, result))


class Plan:
    """Ordered primitive calls with resolved arguments; ``run(inputs)`` replays them (see the module docstring).

    Attributes:
        steps: the calls, as (primitive name, argument specs, keyword specs).
        outputs: a spec per output (an input, a parameter, a result or a constant).
    """

    def __init__(self, methods, steps, outputs, live=None, uploads=(), layout_copies=()):
        self.steps = steps
        self.outputs = outputs
        self.live = live
        self.uploads = uploads
        self.replay = self.run = _compile_replay(methods, steps, outputs, live, layout_copies)
        self.lowered = None
        self.lowering_reason = "not lowered (only a model's compiled steps are)"
        self.replays = 0

    def lower(self, recorder):
        """Run this plan as one compiled function where the backend can lower it (``lower_plan``: on the CPU
        one numba function, ``backends/numba_lowering.py``; on a GPU one CUDA Graph, ``backends/cuda_graphs.py``),
        from the values ``recorder`` saw. It is made, in the thread that runs the step, at the first replay when
        that is cheap (``ready_at_first_replay``: a numba function whose machine code is in the disk cache, a
        graph), else at the ``LOWER_AFTER_REPLAYS``-th replay, so that a short run never pays for compiling it.
        (Not on a thread of its own: numba's compiler enters ``warnings.catch_warnings``, whose global state
        would race with the user's own.) ``lowering_reason`` says why a plan keeps its Python replay."""
        lower = getattr(recorder.backend, "lower_plan", None)
        if not LOWERING_ENABLED:
            self.lowering_reason = "lowering is switched off (capture.LOWERING_ENABLED, NNENGINE_LOWER=0)"
            return
        if lower is None:
            self.lowering_reason = f"the {recorder.backend.name} backend replays plans in Python"
            return
        try:
            steps = [(name, tuple(map(_plain, args)), {key: _plain(spec) for key, spec in keywords.items()})
                     for name, args, keywords in self.steps]
            self.lowered = lower(steps, recorder.calls, [_plain(spec) for spec in self.outputs], self.live, _UPDATES,
                                 replay=self.replay)
        except LoweringRefused as refusal:
            self.lowering_reason = str(refusal)
            return
        self.lowering_reason = "to be compiled at its first replay" if self.lowered.ready_at_first_replay else \
            f"replayed until its {LOWER_AFTER_REPLAYS}th replay"
        self.run = self._counted_replay

    @property
    def is_lowered(self):
        """True once the plan's steps run as its one compiled function."""
        return self.lowered is not None and self.run == self.lowered.run     # == : bound methods are made anew

    def _counted_replay(self, inputs):
        self.replays += 1
        if self.replays < (1 if self.lowered.ready_at_first_replay else LOWER_AFTER_REPLAYS):
            return self.replay(inputs)
        try:
            self.lowered.compile(self.lowered.argument_types(inputs))
            outputs = self.lowered.run(inputs)        # a CUDA Graph is recorded here, and may refuse here
        except LoweringRefused as refusal:            # nothing ran: this step and the next ones replay
            self.lowering_reason, self.run = str(refusal), self.replay
            log.warning("a plan keeps its Python replay: %s", refusal)
            return self.replay(inputs)
        self.lowering_reason = None
        self.run = self.lowered.run
        log.info("a plan of %d primitive calls runs as one compiled function from now on", len(self.steps))
        return outputs

    def matches(self, recorder):
        """True when ``recorder`` heard the same calls and uploaded the same host data as this plan's capture.

        A second eager step checked this way shows that the uploads are constants of the step (shapes,
        indices), not data that changes from step to step (random numbers), which a plan would freeze.
        """
        if [call[0] for call in recorder.calls] != [step[0] for step in self.steps]:
            return False
        uploads = _uploads(recorder)
        return len(uploads) == len(self.uploads) and all(
            a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
            for a, b in zip(uploads, self.uploads))

    @classmethod
    def build(cls, recorder, inputs, params, outputs, strict=False, live=None, lower=False):
        """The plan of ``recorder``'s calls: ``inputs`` (arrays), ``params`` (tensors) and ``outputs`` (arrays).

        With ``strict``, every array a call reads must be an input, a parameter, a result or an
        upload's host array: any other (state left over from before, such as a stale gradient) would
        be frozen into the plan, so it is refused. ``live`` (an optimizer: ``iterations`` and
        ``update_scalars()``) makes the in-place updates read their trailing scalars anew on each replay,
        after ``iterations += 1``, as the optimizer's own step does. Raises CaptureError with the
        recorder's refusal, or when an output is none of the above.
        """
        if recorder.refusal is not None:
            raise CaptureError(recorder.refusal)
        known = {id(array): (_INPUT, index) for index, array in enumerate(inputs)}
        for tensor in params:
            known.setdefault(id(tensor._data), (_PARAM, tensor))
        allowed = recorder.host_copies if strict else None
        steps = []
        for position, (name, args, kwargs, result) in enumerate(recorder.calls):
            steps.append((name, tuple(_spec(a, known, allowed) for a in args),
                          {k: _spec(v, known, allowed) for k, v in kwargs.items()}))
            for part, value in enumerate(result if isinstance(result, tuple) else (result,)):
                if value is not None and hasattr(value, "shape"):
                    known[id(value)] = (_RESULT, (position, part if isinstance(result, tuple) else None))
        output_specs = []
        for array in outputs:
            spec = _spec(array, known) if array is not None else (_CONST, None)
            if spec[0] == _CONST and array is not None:
                raise CaptureError("an output of the computation was not made by the backend's primitives")
            output_specs.append(spec)
        plan = cls(recorder.method, steps, output_specs, live, _uploads(recorder), _layout_copies(recorder))
        if lower:
            plan.lower(recorder)
        return plan

    def __len__(self):
        return len(self.steps)

    def describe(self):
        """The plan as text, one primitive call a line (how docs/compile.md prints the document's model)."""
        lines = []
        for position, (name, args, kwargs) in enumerate(self.steps):
            shown = [_show(spec) for spec in args] + [f"{k}={_show(s)}" for k, s in kwargs.items()]
            lines.append(f"{position:3d}  {name}({', '.join(shown)})")
        lines.append("out  " + ", ".join(_show(spec) for spec in self.outputs))
        return "\n".join(lines)


def _uploads(recorder):
    """The host arrays of the recorded uploads, in order."""
    return [args[0] for name, args, _, _ in recorder.calls if name == "from_numpy"]


def _is_array(value):
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.generic)


#: the optimizer updates (in place on their first arguments, the parameter and its slots)
_UPDATES = ("sgd_update", "adam_update", "adam_update_many", "rmsprop_update", "adagrad_update", "adamax_update",
            "nadam_update", "lion_update", "adadelta_update", "ftrl_update")
#: primitives that write into their first argument
_IN_PLACE = ("assign", "index_add", *_UPDATES)


def _layout_copies(recorder):
    """The positions of the ``copy`` calls that made a contiguous array of a strided view (a transposed
    gradient): the replay keeps those, since the updates that read their results need C-contiguous arrays."""
    return {position for position, (name, args, _, _) in enumerate(recorder.calls)
            if name == "copy" and args and not getattr(getattr(args[0], "flags", None), "c_contiguous", True)}


def _compile_replay(methods, steps, outputs, live=None, layout_copies=()):
    """``run(inputs) -> output arrays``: the plan as one generated Python function of straight-line calls.

    Each step becomes ``r<i> = <primitive>(<arguments>)``, its arguments written out once here instead
    of being looked up on every replay. Calls whose arguments are all constants (the 0-d scalars
    ``full`` makes, and pure arithmetic on them) are computed once now and read as constants, unless the
    plan writes in place into an array it made (then nothing is folded) or the value is an output. A
    ``copy`` of a result that nothing writes into in place is the result itself (autograd copies each
    gradient it hands to a leaf; in a plan nobody else holds it), unless it made a strided view contiguous
    (``layout_copies``).
    With ``live``, the optimizer updates take their trailing scalars from ``live.update_scalars()``,
    read once per replay after ``live.iterations += 1``.
    """
    namespace, lines, folded = {}, [], {}
    written_in_place = {args[0][1][0] for name, args, _ in steps if name in _IN_PLACE and args and args[0][0] == _RESULT}
    fold = not written_in_place
    live_count = len(live.update_scalars()) if live is not None else 0
    live_started = False
    output_positions = {spec[1][0] for spec in outputs if spec[0] == _RESULT}

    def source(spec):
        kind, where = spec
        if kind == _INPUT:
            return f"inputs[{where}]"
        if kind == _RESULT:
            position, part = where
            if position in folded:
                value = folded[position] if part is None else folded[position][part]
                return constant(value)
            return f"r{position}" if part is None else f"r{position}[{part}]"
        if kind == _PARAM:
            return constant(where) + "._data"
        if kind == _TUPLE:
            return "(" + "".join(source(p) + ", " for p in where) + ")"
        return constant(where)

    def constant(value):
        name = f"c{len(namespace)}"
        namespace[name] = value
        return name

    for position, (name, args, kwargs) in enumerate(steps):
        method = methods(name)
        specs = (*args, *kwargs.values())
        pure_constant = all(spec[0] == _CONST or spec[0] == _RESULT and spec[1][0] in folded for spec in specs)
        if fold and pure_constant and name not in _IN_PLACE and name != "from_numpy" \
                and position not in output_positions:
            folded[position] = method(*(_folded(spec, folded) for spec in args),
                                      **{k: _folded(v, folded) for k, v in kwargs.items()})
            continue
        written = [source(spec) for spec in args]
        if name == "copy" and args[0][0] == _RESULT and not {position, args[0][1][0]} & written_in_place \
                and position not in layout_copies:
            lines.append(f"    r{position} = {written[0]}")    # a copy nobody writes into: the same values
            continue
        if live is not None and name in _UPDATES:
            if not live_started:
                optimizer = constant(live)
                lines += [f"    {optimizer}.iterations += 1", f"    s = {optimizer}.update_scalars()"]
                live_started = True
            written[len(written) - live_count:] = [f"s[{i}]" for i in range(live_count)]
        call = ", ".join(written + [f"{k}={source(v)}" for k, v in kwargs.items()])
        lines.append(f"    r{position} = {constant(method)}({call})")
    if live is not None and not live_started:
        lines.append(f"    {constant(live)}.iterations += 1")      # a step with nothing to update still counts
    lines.append("    return [" + ", ".join(source(spec) for spec in outputs) + "]")
    code = "def run(inputs):\n" + "\n".join(lines) + "\n"
    exec(compile(code, "<nnengine plan>", "exec"), namespace)     # noqa: S102 - our own generated code
    run = namespace["run"]
    run.source = code
    return run


def _folded(spec, folded):
    """The value of a constant spec, or of a result computed at build time."""
    if spec[0] == _RESULT:
        position, part = spec[1]
        return folded[position] if part is None else folded[position][part]
    return spec[1]


def _spec(value, known, allowed=None):
    """How a replay finds ``value``: an input, a parameter, a result, a tuple of those, or a constant."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):     # arrays, and numpy's 0-d results (scalars)
        found = known.get(id(value))
        if found is not None:
            return found
        if _is_array(value) and allowed is not None and id(value) not in allowed and not is_shared_constant(value):
            raise CaptureError("the step reads an array that is neither its batch, a weight, nor made by the step "
                               f"(state left over from before, shape {tuple(value.shape)}), which a plan would freeze")
        return (_CONST, value)
    if isinstance(value, tuple) and any(_is_array(v) for v in value):
        return (_TUPLE, tuple(_spec(v, known, allowed) for v in value))
    return (_CONST, value)


def _resolve(spec, inputs, results):
    kind, where = spec
    if kind == _RESULT:
        position, part = where
        return results[position] if part is None else results[position][part]
    if kind == _INPUT:
        return inputs[where]
    if kind == _PARAM:
        return where._data
    if kind == _TUPLE:
        return tuple(_resolve(part, inputs, results) for part in where)
    return where


_KIND_NAMES = {_INPUT: "input", _PARAM: "param", _RESULT: "result", _CONST: "const", _TUPLE: "tuple"}


def _plain(spec):
    """A spec as the backends' lowering reads it: (kind name, where), tuples' parts likewise."""
    kind, where = spec
    return _KIND_NAMES[kind], tuple(_plain(part) for part in where) if kind == _TUPLE else where


def _show(spec):
    kind, where = spec
    if kind == _TUPLE:
        return "(" + ", ".join(_show(part) for part in where) + ")"
    if kind == _RESULT:
        return f"%{where[0]}" if where[1] is None else f"%{where[0]}[{where[1]}]"
    if kind == _INPUT:
        return f"input{where}"
    if kind == _PARAM:
        return f"param{tuple(where.shape)}"
    if _is_array(where):
        return f"const{tuple(where.shape)}"
    return repr(where)
