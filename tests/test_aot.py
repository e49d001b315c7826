"""The ahead-of-time tier of the CPU kernels (kernels/cpu/aot.py): exports equal to numba's kernels, bitwise.

Every export runs against numba's dispatcher of the same kernel on the same arguments, in both dtypes,
over shapes and values (signed zeros, infinities and NaN among them; any NaN equals any NaN); the ctypes
product against the numba one; the dispatch runs an export only for arguments of exactly its types, and
only for a process's first SERVE_CALLS calls; a stale or switched-off build is never used; and a whole
program, run in a fresh process, trains without loading numba and saves bitwise the weights of a run on
numba's kernels, also when its plans are lowered or numba takes over midway.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nnengine.kernels.activation_codes import ACTIVATION_CODES
from nnengine.kernels.cpu import aot, blas, blas_library, nn as nn_kernels, op_codes

needs_extension = pytest.mark.skipif(not aot.available(), reason=f"no ahead-of-time build: {aot.REASON}")
DTYPES = [np.float32, np.float64]


def test_the_install_built_the_extension_in_ci():
    """CI installs with ``pip install -e``, which must build the extension (else every test here but this
    one would skip, and the tier would go untested)."""
    if not os.environ.get("CI"):
        pytest.skip("only CI promises an install that built the extension")
    assert aot.available(), aot.REASON


# -- every export against numba's kernel ---------------------------------------------------------
def _values(rng, shape, dtype, special):
    """Normal values; with ``special``, some signed zeros, infinities and NaN among them."""
    values = rng.standard_normal(shape) * 3
    if special and values.size:
        flat = values.reshape(-1)
        picks = rng.integers(0, flat.size, size=max(1, flat.size // 5))
        flat[picks] = rng.choice([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e-30], size=picks.size)
    return values.astype(dtype)


def _arguments(kernel, dtype, rows, columns, rng, special):
    """Arguments for kernel ``kernel`` ((module, name) of aot.EXPORTS) as the backend passes them."""
    t = np.dtype(dtype).type
    m = lambda: _values(rng, (rows, columns), dtype, special)         # noqa: E731
    empty = lambda shape: np.zeros(shape, dtype)                      # noqa: E731
    code = int(rng.choice([c for c in ACTIVATION_CODES.values() if c != ACTIVATION_CODES["softmax"]]))
    flag = lambda: bool(rng.integers(0, 2))                           # noqa: E731
    scalar = lambda: t(abs(rng.standard_normal()) * 0.1)              # noqa: E731
    n = rows * columns
    state = lambda: abs(_values(rng, n, dtype, special))             # noqa: E731
    binary = lambda: int(rng.choice(list(op_codes.BINARY.values())))   # noqa: E731
    cases = {
        "bias_activation": lambda: (m(), _values(rng, columns, dtype, special), flag(), code, t(0), t(1)),
        "activation_grad": lambda: (m(), m(), code, empty((rows, columns)), empty(columns), t(0), t(1)),
        "softmax_rows_libm": lambda: (m(), empty((rows, columns)), t(1), dtype == np.float32,
                                      empty((rows, columns)), empty((rows, columns))),
        "log_softmax_rows_libm": lambda: (m(), empty((rows, columns)), dtype == np.float32, empty((rows, columns)),
                                          empty((rows, columns))),
        "softmax_cross_entropy_soft_libm": lambda: (
            m(), abs(m()), flag(), empty(rows), empty((rows, columns)), dtype == np.float32, empty((rows, columns)),
            empty((rows, columns))),
        "softmax_cross_entropy_labels_libm": lambda: (
            m(), rng.integers(0, columns, rows).astype(np.int64), flag(), empty(rows), empty((rows, columns)),
            dtype == np.float32, empty((rows, columns)), empty((rows, columns))),
        "sgd": lambda: (state(), state(), state(), scalar(), scalar(), t(1) - scalar(), flag(), flag()),
        "adam": lambda: (state(), state(), state(), state(), state(), scalar(), scalar(), scalar(), t(1e-7),
                         t(1) - scalar(), flag()),
        "rmsprop": lambda: (state(), state(), state(), state(), state(), scalar(), t(0.9), t(0.1), scalar(),
                            t(1e-7), t(1) - scalar(), flag(), flag()),
        "adagrad": lambda: (state(), state(), state(), scalar(), t(1e-7), t(1) - scalar()),
        "unary": lambda: (int(rng.choice(list(op_codes.UNARY.values()))), m().ravel(), empty(n), t(0), t(1)),
        "binary_same": lambda: (binary(), m().ravel(), m().ravel(), empty(n)),
        "binary_scalar": lambda: (binary(), m().ravel(), _values(rng, 1, dtype, special)[0], empty(n), flag()),
        "binary_rows": lambda: (binary(), m(), _values(rng, columns, dtype, special), empty((rows, columns)),
                                flag()),
        "argmax_matches_labels": lambda: (m(), rng.integers(0, columns, rows).astype(np.int64),
                                          np.full(1, -1, np.int64)),
        "argmax_matches_rows": lambda: (m(), m(), np.full(1, -1, np.int64)),
    }
    return cases[kernel[1]]()


def _copies(arguments):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in arguments]


def _bitwise_equal(a, b):
    """The same bytes, except that any NaN equals any NaN: which NaN an operation on two NaNs returns (sign,
    payload) follows the order of its operands in the instruction, which vector width may change; IEEE 754
    leaves it open, and no NaN is worth more than another."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    both_nan = np.isnan(a) & np.isnan(b) if a.dtype.kind == "f" else np.zeros(a.shape, bool)
    return np.array_equal(np.where(both_nan, 0, a).view(np.uint8), np.where(both_nan, 0, b).view(np.uint8))


def _assert_same_arrays(first, second, what):
    for index, (a, b) in enumerate(zip(first, second)):
        if isinstance(a, np.ndarray):
            assert _bitwise_equal(a, b), f"{what}: argument {index} differs"


@needs_extension
@pytest.mark.parametrize("kernel", sorted(aot.EXPORTS), ids=lambda k: f"{k[0]}.{k[1]}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 40), columns=st.integers(1, 40), seed=st.integers(0, 2**31), special=st.booleans())
def test_every_export_is_bitwise_numbas_kernel(kernel, dtype, rows, columns, seed, special):
    """Same arguments, same bytes out: the export and numba's dispatcher, in every output array."""
    arguments = _arguments(kernel, dtype, rows, columns, np.random.default_rng(seed), special)
    exported, jitted = _copies(arguments), _copies(arguments)
    _, exports = aot._exports_of(*kernel)
    exports[np.dtype(dtype)](*exported)
    getattr(aot.KernelModule(kernel[0]).real(), kernel[1])(*jitted)
    _assert_same_arrays(exported, jitted, f"{kernel[0]}.{kernel[1]} ({np.dtype(dtype).name})")


@pytest.mark.skipif(not blas.AVAILABLE, reason="numpy's bundled OpenBLAS was not found")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 70), n=st.integers(1, 70), k=st.integers(1, 70), transpose_a=st.booleans(),
       transpose_b=st.booleans(), seed=st.integers(0, 2**31))
def test_the_ctypes_product_is_bitwise_numbas(dtype, m, n, k, transpose_a, transpose_b, seed):
    """blas_library.gemm (ctypes) and blas.gemm (numba) pass the same arguments to the same routine."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if transpose_b else (k, n)).astype(dtype)
    by_ctypes, by_numba = np.empty((m, n), dtype), np.empty((m, n), dtype)
    blas_library.gemm(a, b, by_ctypes, transpose_a, transpose_b)
    blas.gemm(a, b, by_numba, transpose_a, transpose_b)
    assert np.array_equal(by_ctypes, by_numba)
    expected = (a.T if transpose_a else a) @ (b.T if transpose_b else b)
    np.testing.assert_allclose(by_ctypes, expected, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4)


# -- which calls an export takes ---------------------------------------------------------------
class _Spy:
    """Stands for a compiled function: records that it ran."""

    def __init__(self):
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1


def _spied_kernel(monkeypatch):
    """nn.bias_activation as an AotKernel whose export and numba kernel are both spies; the tier serving."""
    monkeypatch.setattr(aot, "serving", lambda: True)
    export, jit = _Spy(), _Spy()
    kernel = aot.AotKernel(aot.KernelModule("nn"), "bias_activation", aot.EXPORTS[("nn", "bias_activation")],
                           {np.dtype(np.float32): export})
    kernel._jit = jit
    return kernel, export, jit


def _bias_arguments():
    return [np.zeros((3, 4), np.float32), np.zeros(4, np.float32), True, 1, np.float32(0), np.float32(1)]


def _changed(position, value):
    arguments = _bias_arguments()
    arguments[position] = value(arguments[position])
    return arguments


_OTHER_TYPES = [
    (_changed(0, lambda a: a.astype(np.float64)), "a float64 array for a float32 export"),
    (_changed(1, lambda b: b.astype(np.float64)), "one float64 array among float32 ones"),
    (_changed(0, lambda a: np.zeros((3, 8), np.float32)[:, ::2]), "a strided array"),
    (_changed(0, lambda a: np.asfortranarray(np.zeros((3, 4), np.float32))), "a Fortran-ordered array"),
    (_changed(0, lambda a: np.zeros(12, np.float32)), "an array of another rank"),
    (_changed(0, lambda a: np.broadcast_to(np.float32(0), (3, 4))), "a read-only array"),
    (_changed(4, lambda s: 0.0), "a Python float where a float32 scalar goes"),
    (_changed(4, lambda s: np.float64(0)), "a float64 scalar where a float32 one goes"),
    (_changed(2, lambda flag: 1), "an int where a bool goes"),
    (_changed(3, lambda code: 1.0), "a float where an int goes"),
    (_bias_arguments()[:5], "one argument too few"),
]


@pytest.mark.parametrize("arguments, why", _OTHER_TYPES, ids=[why for _, why in _OTHER_TYPES])
def test_arguments_of_other_types_go_to_numba(monkeypatch, arguments, why):
    """An export reads its arguments' memory as the types it was compiled for: anything else is numba's."""
    kernel, export, jit = _spied_kernel(monkeypatch)
    kernel(*arguments)
    assert (export.calls, jit.calls) == (0, 1), why


def test_matching_arguments_run_the_export_and_only_while_serving(monkeypatch):
    kernel, export, jit = _spied_kernel(monkeypatch)
    kernel(*_bias_arguments())
    kernel(*_changed(2, lambda flag: np.bool_(False)))        # numpy's bool and int64 are numba's too
    kernel(*_changed(3, lambda code: np.int64(2)))
    assert (export.calls, jit.calls) == (3, 0)
    monkeypatch.setattr(aot, "serving", lambda: False)        # numba loaded: its dispatchers are as near
    kernel(*_bias_arguments())
    assert (export.calls, jit.calls) == (3, 1)


def test_serving_needs_the_extension_no_numba_and_calls_left(monkeypatch):
    monkeypatch.setattr(aot, "_EXTENSION", object())
    monkeypatch.setattr(aot, "_SERVED", [aot.SERVE_CALLS - 1])
    monkeypatch.setitem(sys.modules, "numba", sys.modules.get("numba", object()))
    assert not aot.serving()
    monkeypatch.delitem(sys.modules, "numba")
    assert aot.serving()
    monkeypatch.setattr(aot, "_EXTENSION", None)
    assert not aot.serving()
    monkeypatch.setattr(aot, "_EXTENSION", object())
    aot._SERVED[0] += 1                          # the last call the tier serves in a process
    assert not aot.serving()


def test_each_served_call_counts_towards_the_budget(monkeypatch):
    kernel, export, jit = _spied_kernel(monkeypatch)
    monkeypatch.setattr(aot, "_SERVED", [0])
    for _ in range(3):
        kernel(*_bias_arguments())
    kernel(*_changed(0, lambda a: a.astype(np.float64)))     # numba's call: not the tier's
    assert aot._SERVED == [3] and (export.calls, jit.calls) == (3, 1)


def test_a_module_proxy_hands_out_numbas_own_names_for_the_rest():
    proxy = aot.KernelModule("nn")
    assert proxy.softmax_rows is nn_kernels.softmax_rows                # no export: numba's dispatcher
    assert proxy.GRAD_CHUNK_ROWS == nn_kernels.GRAD_CHUNK_ROWS
    if aot.available():
        assert isinstance(proxy.bias_activation, aot.AotKernel)
        assert proxy.bias_activation.jit is nn_kernels.bias_activation
    with pytest.raises(AttributeError):
        proxy.no_such_kernel


# -- a build is used only when it is this checkout's, and not switched off -----------------------
def test_a_stale_build_is_not_used(monkeypatch):
    """A build records the digest of the kernel sources it was compiled from; other sources, no tier."""
    if aot.available():
        monkeypatch.setattr(aot, "sources_digest", lambda: aot._EXTENSION.sources_digest() + 1)
    extension, reason = aot._load_extension()
    assert extension is None and ("stale" in reason or "not built" in reason)


def test_the_digest_follows_every_kernel_source_and_the_compiler(tmp_path, monkeypatch):
    """sources_digest reads the kernel folder's files and numba's version file: a changed character changes it."""
    folder = tmp_path / "kernels" / "cpu"
    folder.mkdir(parents=True)
    for name in ("nn.py", "optim.py"):
        (folder / name).write_text(f"# {name}\n")
    (tmp_path / "kernels" / "activation_codes.py").write_text("CODES = {}\n")
    numba_version = tmp_path / "numba_version.py"
    numba_version.write_text("version = '1'\n")
    monkeypatch.setattr(aot, "__file__", str(folder / "aot.py"))
    monkeypatch.setattr(aot, "_compiler_files", lambda: [str(numba_version)])
    before = aot.sources_digest()
    (folder / "optim.py").write_text("# optim.py!\n")
    changed = aot.sources_digest()
    (tmp_path / "kernels" / "activation_codes.py").write_text("CODES = {1: 1}\n")
    codes_changed = aot.sources_digest()
    numba_version.write_text("version = '2'\n")                   # another numba: another digest
    assert len({before, changed, codes_changed, aot.sources_digest()}) == 4
    assert 0 <= before < 2**62


def test_the_digest_reads_the_compilers_version_files():
    files = aot._compiler_files()
    assert [os.path.basename(os.path.dirname(path)) for path in files] == ["numba", "llvmlite"]
    assert all(os.path.isfile(path) for path in files)


@pytest.mark.parametrize("found, words", [
    (ImportError("bad ELF header"), "not built"),
    (SystemError("initialisation failed"), "unusable"),
    (object(), "records no digest"),              # some other module of that name
])
def test_a_missing_damaged_or_foreign_extension_is_not_used(monkeypatch, found, words):
    """Importing nnengine must not fail over the extension: whatever is there, the JIT serves and REASON says why."""
    def import_module(name):
        if isinstance(found, Exception):
            raise found
        return found
    monkeypatch.setattr(aot.importlib, "import_module", import_module)
    monkeypatch.delenv("NNENGINE_AOT", raising=False)
    monkeypatch.delenv("NUMBA_DISABLE_JIT", raising=False)
    extension, reason = aot._load_extension()
    assert extension is None and words in reason


def test_nnengine_aot_0_switches_the_tier_off(monkeypatch):
    monkeypatch.setenv("NNENGINE_AOT", "0")
    assert aot._load_extension() == (None, "switched off by NNENGINE_AOT=0")


@pytest.mark.parametrize("value, off", [("1", True), ("0", False), ("", False)])
def test_numbas_disable_jit_switches_the_tier_off_too(monkeypatch, value, off):
    """Kernels asked to run as Python code (numba's debugging switch) must not run compiled exports instead."""
    monkeypatch.setenv("NUMBA_DISABLE_JIT", value)
    monkeypatch.delenv("NNENGINE_AOT", raising=False)
    extension, reason = aot._load_extension()
    assert (reason is not None and "NUMBA_DISABLE_JIT" in reason) == off


def test_export_signatures():
    assert aot.signature("mvbiss", np.float32) == \
        "void(float32[:, ::1], float32[::1], boolean, int64, float32, float32)"
    assert aot.signature("ml", np.float64) == "void(float64[:, ::1], int64[::1])"
    assert aot.export_name("optim", "adam", np.float64) == "optim__adam__float64"


# -- whole programs in fresh processes -----------------------------------------------------------
_PROGRAM = textwrap.dedent("""
    import json, sys
    import numpy as np
    import nnengine as tf
    from nnengine import capture
    from nnengine.kernels.cpu import aot
    capture.LOWER_AFTER_REPLAYS = int(sys.argv[2])
    aot.SERVE_CALLS = int(sys.argv[4])
    tf.keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 10)).astype(np.float32)
    y = tf.keras.utils.to_categorical(rng.integers(0, 10, 200), num_classes=10)
    served = aot.serving()
    model = tf.keras.Sequential([
        tf.keras.layers.Dense(units=64, activation='relu', input_shape=(10,)),
        tf.keras.layers.Dense(units=32, activation='relu'),
        tf.keras.layers.Dense(units=10, activation='softmax')])
    model.compile(optimizer=sys.argv[3], loss='categorical_crossentropy', metrics=['accuracy'])
    history = model.fit(x, y, epochs=3, batch_size=32, validation_split=0.2, verbose=0).history
    predictions = model.predict(x, verbose=0)
    lowered = sum(plan.is_lowered for plan in model._compiler.plans().values())
    np.save(sys.argv[1], np.concatenate([w.numpy().ravel() for w in model.weights] + [predictions.ravel()]))
    print(json.dumps({"served": served, "numba": "numba" in sys.modules, "lowered": lowered,
                      "history": history}))
""")


def _run_program(tmp_path, name, lower_after, optimizer, serve_calls=10**9, **environment):
    script = tmp_path / "program.py"
    script.write_text(_PROGRAM)
    output = tmp_path / f"{name}.npy"
    env = dict(os.environ, NNENGINE_PLAN_CACHE=str(tmp_path / "plans"), **environment)
    env.pop("NNENGINE_DEVICE", None)
    result = subprocess.run([sys.executable, str(script), str(output), str(lower_after), optimizer, str(serve_calls)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), np.load(output, allow_pickle=False)


@needs_extension
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adagrad"])
def test_a_short_run_never_loads_numba_and_trains_as_numba_does(tmp_path, optimizer):
    """The document's model trained without numba: the same weights, predictions and history as on numba's
    kernels (NNENGINE_AOT=0), bit for bit."""
    served, weights = _run_program(tmp_path, "served", 1000, optimizer)
    assert served["served"] and not served["numba"] and served["lowered"] == 0
    jitted, expected = _run_program(tmp_path, "jitted", 1000, optimizer, NNENGINE_AOT="0")
    assert not jitted["served"] and jitted["numba"]
    assert served["history"] == jitted["history"]
    assert np.array_equal(weights, expected)


@needs_extension
def test_plans_lowered_midway_continue_bitwise(tmp_path):
    """The tier's plans replay, then lower at their LOWER_AFTER_REPLAYS-th replay (loading numba): the
    weights are those of a run lowered at once on numba's kernels."""
    midway, weights = _run_program(tmp_path, "midway", 4, "adam")
    assert midway["served"] and midway["numba"] and midway["lowered"] >= 1
    at_once, expected = _run_program(tmp_path, "at_once", 1, "adam", NNENGINE_AOT="0")
    assert at_once["lowered"] >= 1
    assert midway["history"] == at_once["history"]
    assert np.array_equal(weights, expected)


def test_the_build_writes_an_extension_that_runs_without_numbas_dispatcher(tmp_path, monkeypatch):
    """aot_build end to end, for one kernel (the install builds them all the same way): the file imports,
    reports this checkout's digest, and its export computes what numba's kernel computes."""
    import importlib.util
    import sysconfig
    from nnengine.kernels.cpu import aot_build
    monkeypatch.setattr(aot, "EXPORTS", {("optim", "adagrad"): aot.EXPORTS[("optim", "adagrad")]})
    path = tmp_path / (aot.EXTENSION + sysconfig.get_config_var("EXT_SUFFIX"))
    assert aot_build.main([str(path)]) == 0
    spec = importlib.util.spec_from_file_location(aot.EXTENSION, path)
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)
    assert extension.sources_digest() == aot.sources_digest()
    rng = np.random.default_rng(5)
    arguments = _arguments(("optim", "adagrad"), np.float32, 7, 9, rng, special=False)
    built, jitted = _copies(arguments), _copies(arguments)
    extension.optim__adagrad__float32(*built)
    optim_kernels = aot.KernelModule("optim").real()
    optim_kernels.adagrad(*jitted)
    _assert_same_arrays(built, jitted, "optim.adagrad from a fresh build")
    assert not hasattr(extension, "nn__bias_activation__float32")      # only what EXPORTS named


@needs_extension
def test_a_run_that_outlasts_the_serving_budget_goes_on_bitwise_on_numba(tmp_path):
    """After SERVE_CALLS calls numba's kernels take over, mid-epoch: the same weights as numba's from the start."""
    switched, weights = _run_program(tmp_path, "switched", 10**6, "adam", serve_calls=300)
    assert switched["served"] and switched["numba"] and switched["lowered"] == 0
    jitted, expected = _run_program(tmp_path, "jitted", 10**6, "adam", NNENGINE_AOT="0")
    assert switched["history"] == jitted["history"]
    assert np.array_equal(weights, expected)
