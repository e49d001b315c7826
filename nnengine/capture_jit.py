"""``nnengine.jit``: capture a function of Tensors into plans (capture.py) and replay them on later calls."""
from .capture import CaptureError, Plan, Recorder, _is_array, capturing, log
from .tensor_base import TensorBase

__all__ = ["jit"]


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
