"""CUDA Graphs: a compiled step of the CuPy backend, recorded once into one graph and launched once per step.

A plan's Python replay (``capture.py``) issues a step's kernels one by one, and the host pays for each
launch. On the GPU the same replay runs ONCE under CuPy's stream capture: nothing executes, and every
kernel, cuBLAS call, fill and copy is recorded into a CUDA Graph. Each later step is one graph launch.

A graph replays exactly what it recorded, the addresses and the values passed to each kernel included.
So a step that launches it must find:

* its batch where the graph reads it. The inputs are copied, on the stream and before the launch, into
  staging buffers that the graph owns.
* its weights where the graph reads and writes them. The graph is keyed on the parameters' buffers
  (``Tensor._data``: weights and optimizer slots). A tensor given a new buffer (``model.to``, a loaded
  optimizer state) makes the next step record a new graph.
* the optimizer's scalars of THIS step. They change every step: Adam's step size folds in the step
  number, and a schedule changes the learning rate. While recording, the update primitives launch their
  ``*_at`` kernels (``kernels/cuda/optim.cu``), which read the scalars from a small device array. Before
  each launch the host computes the step's scalars as the eager update would (``update_scalars``) and
  uploads them there: one small asynchronous copy.
* its intermediate arrays untouched between launches. Everything allocated while recording comes from a
  memory pool of the graph's own, which nothing else allocates from and which lives as long as the graph.

The outputs (loss, predictions, gradients) are the graph's own arrays, overwritten by its next launch;
the trainer reads them before it launches again. What cannot be recorded is refused (LoweringRefused)
and the plan keeps its Python replay: a host transfer inside the step (an upload that was not folded
into a constant, a read of a device value), or an update that makes several launches (parameters of
mixed dtypes). Recording costs about one replay, so a plan is recorded at its first replay.
"""
import contextlib
import functools
import inspect
import logging
import os
import threading

import numpy as np

from ..kernels.cuda import captured_gemm
from .base import Backend, LoweringRefused
from .optimizer_scalars import (adadelta_scalars, adagrad_scalars, adam_scalars, adamax_scalars, ftrl_scalars,
                                lion_scalars, nadam_scalars, rmsprop_scalars, sgd_scalars, typed_scalars)

__all__ = ["GraphStep", "Recording", "lower", "update_scalars"]

log = logging.getLogger("nnengine.capture")

#: the scalars each optimizer update primitive passes to its kernel (optimizer_scalars.py)
_SCALARS = {"sgd_update": sgd_scalars, "adam_update": adam_scalars, "adam_update_many": adam_scalars,
            "rmsprop_update": rmsprop_scalars, "adagrad_update": adagrad_scalars, "adamax_update": adamax_scalars,
            "nadam_update": nadam_scalars, "lion_update": lion_scalars, "adadelta_update": adadelta_scalars,
            "ftrl_update": ftrl_scalars}
#: primitives a graph cannot record: transfers between host and device
_HOST_TRANSFERS = ("from_numpy", "to_numpy")
#: whether compiled CUDA steps are recorded as graphs (NNENGINE_CUDA_GRAPHS=1). Off by default: the one
#: run on a real GPU so far found their results diverging from the Python replay (the scalar slots' memory,
#: fixed since, and checked on the fake GPU), and they stay off until a GPU run shows them equal.
ENABLED = os.environ.get("NNENGINE_CUDA_GRAPHS", "0").strip() == "1"


@functools.lru_cache(maxsize=None)
def _signature(function):
    return inspect.signature(function)


def update_scalars(name, args):
    """The typed scalars update primitive ``name`` hands its kernel when called with ``args`` (positional, as a
    plan calls it): the scalar function of ``_SCALARS`` applied to the arguments of the same names, in the
    dtype of the (first) parameter."""
    arguments = _signature(getattr(Backend, name)).bind(None, *args).arguments
    param = arguments["params"][0] if "params" in arguments else arguments["param"]
    make = _SCALARS[name]
    return typed_scalars(make, param.dtype, *(arguments[field] for field in _signature(make).parameters))


class Recording(threading.local):
    """Per thread: the scalar slots of the graph this thread is recording, or None (``CupyBackend`` asks it)."""

    slots = None


class ScalarSlots:
    """The device arrays a recorded graph's updates read their scalars from, one per update call, in order.

    They are allocated BEFORE the capture, from CuPy's shared pool, and handed out in order while the
    updates are recorded (``take``). An array allocated while recording would come from the graph's own
    pool, whose memory may also serve an intermediate freed earlier in the step: the graph writes that
    intermediate at every launch, over the scalars uploaded just before it. (The first run on a real GPU
    found exactly that: every update read zeros, and the weights collapsed.)
    """

    def __init__(self, cupy, layouts=()):
        """``layouts``: one update's typed scalars per update call, for the arrays' lengths and dtypes."""
        self.cupy = cupy
        self.arrays = [cupy.empty(len(scalars), type(scalars[0])) for scalars in layouts]
        self.taken = 0

    def take(self, scalars):
        """The next update's device array; LoweringRefused when the updates do not match the slots made."""
        if self.taken == len(self.arrays):
            raise LoweringRefused(f"the optimizer's updates made more than {len(self.arrays)} launches (parameters "
                                  "of mixed dtypes); a graph needs one launch per update")
        array = self.arrays[self.taken]
        if len(array) != len(scalars) or array.dtype != np.dtype(type(scalars[0])):
            raise LoweringRefused(f"update {self.taken} passed {len(scalars)} scalars of {type(scalars[0]).__name__}"
                                  f", not the {len(array)} of {array.dtype} its slot was made for")
        self.taken += 1
        return array

    def upload(self, scalars_per_update):
        """Copy each update's scalars into its array, asynchronously on the current stream (no host sync)."""
        stream = self.cupy.cuda.get_current_stream()
        for array, scalars in zip(self.arrays, scalars_per_update):
            array.set(np.array(scalars, dtype=array.dtype), stream=stream)


def lower(backend, steps, calls, outputs, live=None, updates=(), replay=None):
    """The plan as a ``GraphStep`` recorded at its first run, or LoweringRefused saying why it cannot be.

    Args are those of ``capture.Plan.lower`` (see ``numba_lowering.lower``); ``replay`` is the plan's Python
    replay, which the graph records.
    """
    if not ENABLED:
        raise LoweringRefused("CUDA Graphs are off by default until a run on a real GPU shows them equal to the "
                              "Python replay (docs/compile.md, 'The GPU tier'); NNENGINE_CUDA_GRAPHS=1 turns them on")
    if replay is None:
        raise LoweringRefused("a CUDA Graph records the plan's Python replay, and none was given")
    transfers = sorted({name for name, _, _ in steps if name in _HOST_TRANSFERS})
    if transfers:
        raise LoweringRefused(f"the step transfers between host and device inside it ({', '.join(transfers)}), "
                              "which a CUDA Graph cannot record")
    live_count = len(live.update_scalars()) if live is not None else 0
    update_calls = []
    for (name, _, keywords), (_, args, _, _) in zip(steps, calls):
        if name in updates:
            if keywords:
                raise LoweringRefused(f"{name} is called with keyword arguments, which a graph's scalars do not follow")
            update_calls.append((name, tuple(map(_dtype_only, args[:len(args) - live_count]))))
    params = _parameters(steps)
    return GraphStep(backend, replay, params, update_calls, live)


class _DtypeOf:
    """Stands for an update's array argument: ``update_scalars`` reads only its dtype (holding the capture's
    arrays, gradients included, would keep a whole step's memory alive with the graph)."""

    def __init__(self, dtype):
        self.dtype = dtype


def _dtype_only(value):
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return _DtypeOf(value.dtype)
    if isinstance(value, (list, tuple)) and value and hasattr(value[0], "dtype"):
        return [_DtypeOf(value[0].dtype)]
    return value


def _parameters(steps):
    """The distinct tensors the plan reads as parameters (weights and optimizer slots), in order."""
    found = {}

    def visit(spec):
        kind, where = spec
        if kind == "param":
            found.setdefault(id(where), where)
        elif kind == "tuple":
            for part in where:
                visit(part)
    for _, specs, keywords in steps:
        for spec in (*specs, *keywords.values()):
            visit(spec)
    return list(found.values())


class GraphStep:
    """A plan recorded into one CUDA Graph at its first run, then launched once per step (module docstring).

    Attributes:
        recordings: how many times a graph was recorded (1, plus one per change of parameter buffers).
        launches: how many steps ran as a graph launch.
    """

    #: recording costs about one replay, so ``capture.Plan`` records the graph at the plan's first replay
    ready_at_first_replay = True

    def __init__(self, backend, replay, params, update_calls, live):
        self.backend = backend
        self.replay = replay
        self.params = params
        self.update_calls = update_calls      # (primitive name, its arguments but the live scalars)
        self.live = live
        self.recordings = self.launches = 0
        self.graph = None
        self.refusal = None

    def argument_types(self, inputs):
        """Nothing to type: a graph takes the arrays it recorded (``capture.Plan`` asks every lowered step)."""
        return None

    def compile(self, _types):
        """Nothing to compile ahead: the graph is recorded by the first ``run``, from that step's arrays."""

    def run(self, inputs):
        """One step: the batch staged, the step's scalars uploaded, one graph launch. Returns the outputs.

        The first run records the graph; a refusal then reaches ``capture.Plan``, which keeps the Python
        replay and says why. A later recording (the parameters' buffers changed) that is refused makes this
        step and every later one replay in Python, with a warning."""
        if self.refusal is not None:
            return self.replay(inputs)
        if self.backend.several_gpus:           # staging, uploads and the launch on this plan's GPU
            self.backend.make_current()
        if self.graph is None or self._moved():
            try:
                self._record(inputs)
            except LoweringRefused as refusal:
                if not self.recordings:
                    raise
                self.refusal = str(refusal)
                log.warning("a plan's CUDA Graph could not be recorded again; it replays in Python: %s", refusal)
                return self.replay(inputs)
        else:
            self._stage(inputs)
            self._advance()
        self.graph.launch()
        self.launches += 1
        return self.outputs

    def _moved(self):
        """True when a parameter tensor holds another buffer than the one the graph recorded."""
        return any(tensor._data is not buffer for tensor, buffer in zip(self.params, self.buffers))

    def _stage(self, inputs):
        cupy = self.backend.cupy
        for staged, array in zip(self.staging, inputs):
            cupy.copyto(staged, array)

    def _advance(self):
        """The optimizer's next step (``iterations += 1``, as the replay does) and its scalars, uploaded."""
        if self.live is None:          # no live scalars: the ones uploaded when recording hold
            return
        self.live.iterations += 1
        self.slots.upload(self._step_scalars())

    def _step_scalars(self):
        """Each update's typed scalars for the optimizer's current step, as the eager updates compute them."""
        live = self.live.update_scalars() if self.live is not None else ()
        return [update_scalars(name, (*args, *live)) for name, args in self.update_calls]

    def _record(self, inputs):
        """Record the replay into a new graph (its arrays from a pool of its own) and stage this step for it."""
        cupy = self.backend.cupy
        self.graph = None
        self.staging = [cupy.empty(array.shape, array.dtype) for array in inputs]
        self._stage(inputs)
        self.pool, self.slots = cupy.cuda.MemoryPool(), ScalarSlots(cupy, self._step_scalars())
        self.buffers = [tensor._data for tensor in self.params]
        iterations = None if self.live is None else self.live.iterations
        stream = cupy.cuda.Stream(non_blocking=True)
        try:
            # the products' own cuBLAS handle is readied first: nothing it allocates may be recorded
            with captured_gemm.recording(stream), cupy.cuda.using_allocator(self.pool.malloc), stream:
                self.outputs, graph = self._captured(stream)
            if self.slots.taken != len(self.update_calls):
                raise LoweringRefused(f"{len(self.update_calls)} optimizer updates made {self.slots.taken} "
                                      "launches; a graph needs one launch per update")
        except Exception as error:            # nothing ran: the optimizer's count goes back, the step replays
            if iterations is not None:
                self.live.iterations = iterations
            if isinstance(error, LoweringRefused):
                raise
            raise LoweringRefused(f"the step could not be recorded into a CUDA Graph: {error}") from error
        self.slots.upload(self._step_scalars())     # of the step the replay advanced the optimizer to
        self.graph = graph
        self.recordings += 1

    def _captured(self, stream):
        """(outputs, graph): the replay run once under stream capture, its update scalars taken from slots."""
        recording = self.backend.graph_recording
        stream.begin_capture()
        recording.slots = self.slots
        try:
            outputs = self.replay(self.staging)
        except BaseException:
            # the capture is invalid: end it so that the stream works again; the replay's error is the one to report
            with contextlib.suppress(Exception):
                stream.end_capture()
            raise
        finally:
            recording.slots = None
        return outputs, stream.end_capture()
