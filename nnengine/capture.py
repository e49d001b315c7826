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
random numbers every step, for example, which a plan would freeze). Layers that draw host randomness
say so up front (``Layer.capture_blocker``).

``jit(fn)`` applies the same machinery to a function of Tensors (``nnengine.jit``).
"""
import logging
import threading

import numpy as np

from .backends import Backend
from .backends.constants import is_shared_constant
from .tensor_base import TensorBase

__all__ = ["CaptureError", "Plan", "Recorder", "capturing", "jit"]

log = logging.getLogger("nnengine.capture")

_INPUT, _PARAM, _RESULT, _CONST, _TUPLE = range(5)
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

    def __init__(self, methods, steps, outputs, live=None, uploads=()):
        self.steps = steps
        self.outputs = outputs
        self.live = live
        self.uploads = uploads
        self.run = _compile_replay(methods, steps, outputs, live)

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
    def build(cls, recorder, inputs, params, outputs, strict=False, live=None):
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
        return cls(recorder.method, steps, output_specs, live, _uploads(recorder))

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
_UPDATES = ("sgd_update", "adam_update", "adam_update_many", "rmsprop_update", "adagrad_update")
#: primitives that write into their first argument
_IN_PLACE = ("assign", "index_add", *_UPDATES)


def _compile_replay(methods, steps, outputs, live=None):
    """``run(inputs) -> output arrays``: the plan as one generated Python function of straight-line calls.

    Each step becomes ``r<i> = <primitive>(<arguments>)``, its arguments written out once here instead
    of being looked up on every replay. Calls whose arguments are all constants (the 0-d scalars
    ``full`` makes, and pure arithmetic on them) are computed once now and read as constants, unless the
    plan writes in place into an array it made (then nothing is folded) or the value is an output. A
    ``copy`` of a result that nothing writes into in place is the result itself (autograd copies each
    gradient it hands to a leaf; in a plan nobody else holds it).
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
        if name == "copy" and args[0][0] == _RESULT and not {position, args[0][1][0]} & written_in_place:
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


def _signature(tensors):
    return tuple((t.shape, t.dtype.str, t.device) if isinstance(t, TensorBase) else ("value", repr(t))
                 for t in tensors)


class jit:
    """Capture a function of Tensors into plans and replay them: ``fast = nnengine.jit(fn)``.

    The first call with a given signature (each argument's shape, dtype and device; other arguments by
    value) runs ``fn`` eagerly while recording its primitive calls; later calls with that signature
    replay the plan and return Tensors holding the new results (with no graph: a replay does not
    record autograd nodes). Arrays ``fn`` reads that are not its arguments (weights it closes over)
    are read as they are at each call, so in-place updates are seen.

    When ``fn`` cannot be captured (see ``CaptureError``), or an argument requires grad, the call runs
    eagerly; ``reason`` then says why. ``plans`` counts the captured signatures.
    """

    def __init__(self, fn):
        self.fn = fn
        self._plans = {}            # signature -> (plan, how to rebuild the result), or None: runs eagerly
        self.reason = None
        self.__name__ = getattr(fn, "__name__", "jit")
        self.__doc__ = getattr(fn, "__doc__", None)

    @property
    def plans(self):
        """How many signatures have a captured plan."""
        return sum(1 for plan in self._plans.values() if plan is not None)

    def __call__(self, *args):
        tensors = [a for a in args if isinstance(a, TensorBase)]
        if not tensors or any(t.requires_grad for t in tensors) or capturing():
            self.reason = ("no Tensor argument" if not tensors else "called inside another capture" if capturing()
                           else "an argument requires grad (replays record no graph)")
            return self.fn(*args)
        key = _signature(args)
        if key not in self._plans:
            return self._capture(key, args, tensors)
        captured = self._plans[key]
        if captured is None:
            return self.fn(*args)
        plan, structure = captured
        backend, like = tensors[0]._backend, type(tensors[0])
        return _repack(structure, [like._make(a, backend) for a in plan.run([t._data for t in tensors])])

    def _capture(self, key, args, tensors):
        recorder, result = Recorder.listen(tensors[0]._backend, lambda: self.fn(*args))
        outputs, structure = _flatten(result)
        try:
            externals = _external_tensors(recorder, tensors, outputs)
            plan = Plan.build(recorder, [t._data for t in tensors], externals, [t._data for t in outputs])
        except CaptureError as error:
            self.reason = str(error)
            self._plans[key] = None
            return result
        self._plans[key] = (plan, structure)
        log.info("jit %s: captured a plan of %d primitive calls for %s", self.__name__, len(plan), key)
        return result


def _flatten(result):
    """(list of output Tensors, how to rebuild the result from them)."""
    if isinstance(result, TensorBase):
        return [result], None
    if isinstance(result, (tuple, list)) and all(isinstance(r, TensorBase) for r in result):
        return list(result), type(result)
    raise CaptureError("jit: the function must return a Tensor or a tuple/list of Tensors")


def _repack(structure, tensors):
    return tensors[0] if structure is None else structure(tensors)


class _ArrayRef:
    """A stand-in tensor for an array the function closes over: read the same array object every call."""

    def __init__(self, array):
        self._data = array


def _external_tensors(recorder, inputs, outputs):
    """Arrays the recorded calls read that neither an input nor a call made: the closed-over weights."""
    made = {id(t._data) for t in inputs}
    externals = []
    for _, args, kwargs, result in recorder.calls:
        for value in (*args, *kwargs.values()):
            if _is_array(value) and id(value) not in made:
                made.add(id(value))
                externals.append(_ArrayRef(value))
        for value in result if isinstance(result, tuple) else (result,):
            if value is not None and hasattr(value, "shape"):     # numpy's 0-d results are scalars: made too
                made.add(id(value))
    return externals
