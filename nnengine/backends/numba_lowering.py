"""Lowering a captured plan to ONE numba function: the CPU tier of the compiled step (docs/compile.md).

A plan (``capture.py``) replays its primitive calls from generated Python: each call still runs its
primitive's Python wrapper (contiguity, kernel choice, allocation) and a numba dispatch, some 3-5 us
each, which is most of a small model's step. Here the whole plan becomes the source of one numba
function that calls the *same kernels* with the *same arguments* in the same order, so a step is one
dispatch and its results are bitwise the eager step's.

How each primitive is written out (``numba_emitters.py``, ``numba_elementwise_emitters.py``): its
emitter takes the values the capture saw (their shapes and dtypes are fixed for the plan's key), makes
the choices the eager primitive makes through the backend's own helpers (``_dense_is_small``,
``_row_kernel``: the fused small-dense kernel or a BLAS product, libm's exp or the vectorised one) and
writes the kernel calls. Products go through ``kernels/cpu/blas.py``, the routine the eager products
call too.

What is lowered: the primitives of a dense network's training, evaluation and prediction step (dense
layers, softmax cross-entropy, sums, elementwise arithmetic and functions, activation gradients, reshapes,
the optimizers' updates; ``EMITTERS``), on small steps: every array under
``host_buffers.MIN_POOLED_BYTES`` and under the parallel kernels' threshold, so every kernel is its
serial variant. Anything else raises ``LoweringRefused`` with the reason and the plan keeps its Python
replay (large steps spend their time in kernels, and their replay reuses mapped host buffers).

The source is written to a file in the plan cache (``plan_cache_dir()``) and compiled with
``cache=True``, so a later process loads the machine code instead of compiling it again. The file's
name hashes the source and the kernels' own sources, so a changed kernel never meets a stale cache.
"""
import functools
import hashlib
import os
import sys
import tempfile
import types

import numba
import numpy as np

from ..kernels.cpu import nn
from .numba_array_emitters import ARRAY_EMITTERS
from .numba_elementwise_emitters import ELEMENTWISE_EMITTERS
from .numba_emitters import NN_EMITTERS, Builder, Literal, LoweringRefused, Value
from .numba_recurrent_emitters import RECURRENT_EMITTERS

#: every primitive that has a lowering, and its emitter
EMITTERS = {**NN_EMITTERS, **ELEMENTWISE_EMITTERS, **ARRAY_EMITTERS, **RECURRENT_EMITTERS}
#: the primitives that write into their first argument (its value cannot be a folded constant)
WRITES_INTO_FIRST = ("index_add",)

__all__ = ["LoweringRefused", "LoweredStep", "lower", "plan_cache_dir"]


def plan_cache_dir():
    """Where lowered plans' sources (and, beside them, numba's cache) go: ``NNENGINE_PLAN_CACHE``, else
    ``$NUMBA_CACHE_DIR/nnengine_plans`` (an empty numba cache is then an empty plan cache too), else
    ``~/.cache/nnengine/plans``."""
    if os.environ.get("NNENGINE_PLAN_CACHE"):
        return os.environ["NNENGINE_PLAN_CACHE"]
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.path.join(os.environ["NUMBA_CACHE_DIR"], "nnengine_plans")
    return os.path.join(os.path.expanduser("~"), ".cache", "nnengine", "plans")


# -- the whole plan ---------------------------------------------------------------------------------
def lower(backend, steps, calls, outputs, live=None, updates=()):
    """The plan as a ``LoweredStep``, or LoweringRefused saying why it cannot be.

    Args:
        backend: the NumbaBackend the plan was captured on.
        steps: per call, (primitive name, argument specs, keyword argument specs); a spec is ("input", index),
            ("param", tensor), ("result", (position, part)), ("const", value) or ("tuple", specs).
        calls: the recorder's calls (name, args, kwargs, result) with the values the capture saw.
        outputs: the specs of the plan's outputs.
        live: the optimizer whose ``update_scalars()`` the updates (primitives in ``updates``) take last.
    """
    b = Builder()
    live_count = 0
    if live is not None:
        live_count = len(live.update_scalars())
        optimizer = b.constant(live)
        b.increment = [f"    {optimizer}.iterations += 1"]
        b.prelude.append(f"    s = {optimizer}.update_scalars()")
    values, params = {}, {}          # params: the weights' and inputs' values, each passed once
    written = _written_results(steps)
    for position, ((name, specs, keyword_specs), (_, args, kwargs, result)) in enumerate(zip(steps, calls)):
        if name not in updates and position not in written and all(_constant_spec(spec, values)
                                                                    for spec in (*specs, *keyword_specs.values())):
            _remember(values, position, result, lambda part: ("folded", part))   # a constant of the shapes
            continue
        if name not in EMITTERS or kwargs and name in updates:
            raise LoweringRefused(f"primitive {name} has no lowering")
        first_live = len(specs) - live_count if live is not None and name in updates else len(specs)
        operands = [_operand(b, spec, actual, values, params, f"s[{i - first_live}]" if i >= first_live else None)
                    for i, (spec, actual) in enumerate(zip(specs, args))]
        keywords = {key: _operand(b, keyword_specs[key], kwargs[key], values, params, None) for key in kwargs}
        _remember(values, position, result, _checked(EMITTERS[name](b, backend, *operands, **keywords), result, name))
    returned = [_output(b, spec, values, params) for spec in outputs]
    return LoweredStep(b, returned)


def _written_results(steps):
    """The positions of the steps whose result a later step writes into: made anew each step, never folded (a
    folded constant would keep what the first step wrote into it)."""
    return {specs[0][1][0] for name, specs, _ in steps if name in WRITES_INTO_FIRST and specs[0][0] == "result"}


def _constant_spec(spec, values):
    """Whether ``spec`` is a constant of the plan: no input, no weight, no value the plan computes."""
    kind, where = spec
    if kind == "tuple":
        return all(_constant_spec(part, values) for part in where)
    if kind == "result":
        return _is_folded(values[where])
    return kind == "const"


def _is_folded(value):
    return isinstance(value, tuple) and len(value) == 2 and value[0] == "folded"


def _remember(values, position, result, lowered):
    if isinstance(result, tuple):
        for part, value in enumerate(result):
            values[(position, part)] = lowered(value) if callable(lowered) else lowered[part]
    else:
        values[(position, None)] = lowered(result) if callable(lowered) else lowered


def _checked(lowered, result, name):
    """The emitter's values, after checking their shapes and dtypes against what the eager call returned."""
    pairs = zip(lowered, result) if isinstance(result, tuple) else [(lowered, result)]
    for value, actual in pairs:
        if (value is None) != (actual is None) or value is not None and (
                tuple(value.example.shape) != tuple(np.shape(actual)) or value.example.dtype != actual.dtype):
            raise LoweringRefused(f"the lowering of {name} does not give the shapes the eager call gave")
    return lowered


def _operand(b, spec, actual, values, params, live_python):
    kind, where = spec
    if live_python is not None:
        return Literal(actual, live_python)
    if kind == "tuple":
        return [_operand(b, part, value, values, params, None) for part, value in zip(where, actual)]
    if kind == "input":
        if np.ndim(actual) == 0:
            raise LoweringRefused("a 0-d input")
        if ("input", where) not in params:
            params[("input", where)] = Value(b.pass_in(f"_contiguous(inputs[{where}])", "i"), actual)
        return params[("input", where)]
    if kind == "param":
        if id(where) not in params:
            params[id(where)] = Value(b.pass_in(f"{b.constant(where)}._data", "p"), actual)
        return params[id(where)]
    if kind == "result":
        value = values[where]
        return _constant(b, value[1]) if _is_folded(value) else value
    return _constant(b, actual)


def _constant(b, value):
    """A constant of the plan: arrays become parameters (size-1 ones scalars), other values literals."""
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        return Literal(value, b.constant(value))
    array = np.asarray(value)
    if array.size == 1:
        return Value(b.pass_in(b.constant(array.reshape(-1)[0])), array, scalar=True)
    return Value(b.pass_in(b.constant(array)), array)


def _output(b, spec, values, params):
    kind, where = spec
    if kind == "const" and where is None:
        return None
    value = values.get(where) if kind == "result" else None
    if not isinstance(value, Value):
        raise LoweringRefused("an output of the plan is not a value the lowered function computes")
    return value


@functools.lru_cache(maxsize=1)
def _kernel_fingerprint():
    """A hash of the kernels' sources and numba's version: a lowered plan compiled against other kernels
    has another file name, so numba's cache (which does not follow callees) is never stale."""
    import numba
    digest = hashlib.sha256(numba.__version__.encode())
    folder = os.path.dirname(os.path.abspath(nn.__file__))
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), "rb") as source:
                digest.update(source.read())
    return digest.hexdigest()[:16]


class LoweredStep:
    """A plan lowered to one numba function. ``run(inputs)`` takes and returns what ``Plan.run`` does.

    Attributes:
        source: the generated numba function's source.
        path: the file it is (or will be) written to in the plan cache.
        cached: True when that file existed already: an earlier process compiled it, and numba's cache
            should load its machine code in milliseconds.
        run: ``run(inputs)``, the Python wrapper around the compiled function (once ``compile`` returned).
    """

    def __init__(self, builder, returned):
        imports = "".join(f"import {module} as {alias}\n" for module, alias in builder.modules.items())
        outputs = "".join(f"{value.code}, " for value in returned if value is not None)
        self.source = (f"# an nnengine plan, lowered (kernels {_kernel_fingerprint()})\n"
                       f"import numpy as np\nfrom numba import njit\n{imports}\n\n"
                       "@njit(cache=True, nogil=True, error_model='numpy')\n"
                       f"def step({', '.join(builder.parameters)}):\n" + "\n".join(builder.body)
                       + f"\n    return ({outputs})\n")
        digest = hashlib.sha256(self.source.encode()).hexdigest()[:24]
        self.path = os.path.join(plan_cache_dir(), f"plan_{digest}.py")
        self.cached = os.path.exists(self.path)
        self.ready_at_first_replay = self.cached     # a cached function loads in milliseconds (capture.Plan)
        self.run = _wrapper(builder, returned)
        self._arguments = _arguments(builder)

    def argument_types(self, inputs):
        """The numba types of the function's arguments for a step on ``inputs`` (counts no step)."""
        return tuple(numba.typeof(argument) for argument in self._arguments(inputs))

    def compile(self, types):
        """Write and import the source, and compile it for ``types`` (numba loads it from its disk cache when it
        can). Raises LoweringRefused when it does not compile; ``run`` may be called once this returned."""
        try:
            step = _import_step(self.path, self.source)
            step.compile(types)
        except Exception as error:      # noqa: BLE001 - any failure leaves the plan on its Python replay
            raise LoweringRefused(f"the lowered step did not compile: {type(error).__name__}: {error}") from error
        self.run.__globals__["step"] = step


def _wrapper(builder, returned):
    """The Python function around the numba one: live scalars, then one call, then 0-d outputs as arrays."""
    results, position = [], 0
    for value in returned:
        if value is None:
            results.append("None")
            continue
        results.append(f"np.asarray(r[{position}], np.{value.example.dtype.name})" if value.scalar
                       else f"r[{position}]")
        position += 1
    return _generated(builder, builder.increment + builder.prelude + [
        f"    r = step({', '.join(builder.passed)})", f"    return [{', '.join(results)}]"])


def _arguments(builder):
    """A function giving the numba call's arguments for ``inputs`` without counting a step (to compile by)."""
    return _generated(builder, builder.prelude + [f"    return ({''.join(p + ', ' for p in builder.passed)})"])


def _generated(builder, lines):
    code = "def run(inputs):\n" + "\n".join(lines) + "\n"
    namespace = dict(builder.namespace)
    exec(compile(code, "<nnengine lowered plan>", "exec"), namespace)     # noqa: S102 - our own generated code
    run = namespace["run"]
    run.source = code
    return run


def _import_step(path, source):
    """The ``step`` dispatcher of ``source``, run from memory as the module of file ``path`` (numba's disk cache
    is kept beside that file and keyed by its time stamp). The file is (re)written first whenever it does not
    hold exactly ``source``, so only our own generated code ever runs, whatever the cache folder holds."""
    path = _written(path, source)
    name = "nnengine_lowered_" + os.path.basename(path)[:-3]
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module          # numba's cache finds a function's module by its name
    exec(compile(source, path, "exec"), module.__dict__)      # noqa: S102 - our own generated code
    return module.step


def _written(path, source):
    """``path`` holding exactly ``source`` (written atomically when it does not); a private copy when the plan
    cache cannot be written (its functions then compile in every process)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if _read(path) != source:
            handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
            with os.fdopen(handle, "w") as file:
                file.write(source)
            os.replace(temporary, path)
        return path
    except OSError:
        private = os.path.join(tempfile.mkdtemp(prefix="nnengine_plans_"), os.path.basename(path))
        with open(private, "w") as file:
            file.write(source)
        return private


def _read(path):
    try:
        with open(path) as file:
            return file.read()
    except (OSError, UnicodeDecodeError):
        return None
