"""The compiled step's CPU tier: a plan lowered to one numba function (backends/numba_lowering.py).

A lowered step must give bitwise the eager step's weights, losses and predictions; a plan that cannot be
lowered keeps its Python replay and says why; the lowered function is written to the plan cache and a later
model with the same plan loads it from there.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnengine as nn
from nnengine import capture
from nnengine.backends import numba_lowering
from nnengine.kernels.cpu import blas, reduce

from test_compiled import CONFIGS, _data, _model

#: every one of test_compiled's configurations lowers every plan: dense layers, the cross-entropies, binary
#: cross-entropy, MSE and MAE, the hinge and focal losses (powers and maxima), GELU, swish and log-softmax
#: as separate ops, each of the optimizers (Adamax, Nadam, Lion, Adadelta and Ftrl too), the recurrent layers and
#: their dropout masks;
#: but a Bidirectional one with return_sequences, which puts the backward states back in time order with a
#: getitem (no lowering: its plans keep their Python replay)
LOWERED = [c[0] for c in CONFIGS if c[0] != "bidirectional-rmsprop"]
#: lowered too, but each compile costs CI seconds for no primitive the others do not lower already (binary focal's
#: powers, MSLE's logarithms, Dropout's products): test_compiled checks their Python replay bitwise
LOWERED = [name for name in LOWERED if name not in ("relu6-binary-focal", "softsign-msle-mape", "dropout-adam")]


@pytest.fixture(autouse=True)
def _lower_at_once(monkeypatch, tmp_path):
    """Lower every plan at its first replay, into a plan cache of this test's own."""
    monkeypatch.setattr(capture, "LOWER_AFTER_REPLAYS", 1)
    monkeypatch.setenv("NNENGINE_PLAN_CACHE", str(tmp_path / "plans"))


def _fit_thrice(model, x, y):
    """Fit three times (halving the learning rate every epoch), evaluating and predicting after each (a plan
    lowers at its first replay, and the last batch's plan replays once an epoch), then evaluate and predict
    once more: every plan runs lowered at the end."""
    def slower(epoch, logs):                 # the lowered update reads its learning rate on every step
        model.optimizer.learning_rate = model.optimizer.learning_rate * 0.5
    histories = []
    for _ in range(3):
        nn.utils.set_random_seed(11)
        histories.append(model.fit(x, y, epochs=2, batch_size=8, validation_split=0.2, verbose=0,
                                   callbacks=[nn.callbacks.LambdaCallback(on_epoch_end=slower)]).history)
        model.evaluate(x, y, verbose=0)
        model.predict(x, batch_size=16, verbose=0)
    return histories, model.evaluate(x, y, verbose=0), model.predict(x, batch_size=16, verbose=0)


def _assert_same_weights(model, other):
    for mine, theirs in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def _lowered_plan(config, x, y):
    """A fresh model of ``config`` trained 4 steps on (x, y), and its one plan (lowered at its first replay)."""
    model = _model(config, "cpu", "auto")
    for _ in range(4):
        model.train_on_batch(x, y)
    (plan,) = model._compiler.plans().values()
    return model, plan


@pytest.mark.parametrize("config", [c for c in CONFIGS if c[0] in LOWERED], ids=lambda c: c[0])
def test_lowered_steps_are_bitwise_the_eager_ones(config):
    x, y = _data(config)
    lowered, eager = _model(config, "cpu", "auto"), _model(config, "cpu", False)
    results = _fit_thrice(lowered, x, y)
    report = lowered.jit_report()
    assert report["plans_lowered"] == report["plans_held"] == 8, report    # train, test and predict, all shapes
    expected = _fit_thrice(eager, x, y)
    assert results[:2] == expected[:2]
    np.testing.assert_array_equal(results[2], expected[2])
    _assert_same_weights(lowered, eager)


def test_a_plan_that_cannot_be_lowered_keeps_its_replay_and_says_why():
    nn.utils.set_random_seed(0)
    model = nn.Sequential([nn.layers.Conv1D(2, 3, activation="relu", input_shape=(8, 2)), nn.layers.Flatten(),
                           nn.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.random.default_rng(0).standard_normal((24, 8, 2)).astype(np.float32), np.arange(24) % 3
    for _ in range(3):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    plans = model._compiler.plans().values()
    assert plans and model.jit_report()["plans_lowered"] == 0
    assert all(not plan.is_lowered and "has no lowering" in plan.lowering_reason for plan in plans)


def test_the_numpy_reference_device_is_never_lowered():
    config = CONFIGS[0]
    x, y = _data(config)
    model = _model(config, "numpy", "auto")
    _fit_thrice(model, x, y)
    assert model.jit_report()["plans_lowered"] == 0
    assert all("replays plans in Python" in plan.lowering_reason for plan in model._compiler.plans().values())


def test_a_plan_waits_for_its_replays_before_compiling(monkeypatch):
    monkeypatch.setattr(capture, "LOWER_AFTER_REPLAYS", 10 ** 6)
    config = CONFIGS[0]
    x, y = _data(config, 16)
    model = _model(config, "cpu", "auto")
    for _ in range(20):
        model.train_on_batch(x, y)
    (plan,) = model._compiler.plans().values()
    assert plan.lowered is not None and not plan.is_lowered
    assert "replayed until" in plan.lowering_reason


def test_a_second_model_loads_the_lowered_plan_from_the_cache(tmp_path):
    config = CONFIGS[1]
    x, y = _data(config, 16)
    _, plan = _lowered_plan(config, x, y)
    assert plan.is_lowered and not plan.lowered.cached
    assert plan.lowered.path.startswith(str(tmp_path / "plans"))
    with open(plan.lowered.path) as source:
        assert source.read() == plan.lowered.source and "def step(" in plan.lowered.source
    _, again = _lowered_plan(config, x, y)
    assert again.lowered.cached and again.lowered.path == plan.lowered.path


def test_a_lowered_step_that_does_not_compile_falls_back_to_the_replay(monkeypatch):
    def refuse(self, types):
        raise numba_lowering.LoweringRefused("the lowered step did not compile: a test says so")
    monkeypatch.setattr(numba_lowering.LoweredStep, "compile", refuse)
    config = CONFIGS[1]
    x, y = _data(config, 16)
    model, eager = _model(config, "cpu", "auto"), _model(config, "cpu", False)
    for _ in range(6):
        model.train_on_batch(x, y)
        eager.train_on_batch(x, y)
    (plan,) = model._compiler.plans().values()
    assert not plan.is_lowered and "a test says so" in plan.lowering_reason
    _assert_same_weights(model, eager)


def test_plan_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NNENGINE_PLAN_CACHE", str(tmp_path / "mine"))
    assert numba_lowering.plan_cache_dir() == str(tmp_path / "mine")
    monkeypatch.delenv("NNENGINE_PLAN_CACHE")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert numba_lowering.plan_cache_dir() == str(tmp_path / "numba" / "nnengine_plans")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 1500), st.sampled_from([np.float32, np.float64]), st.integers(0, 2 ** 32 - 1))
def test_numpy_total_sums_as_numpy_does(n, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 10.0 ** rng.uniform(-4, 4, n)).astype(dtype)
    assert reduce.numpy_total(x) == np.add.reduce(x, dtype=dtype)
    assert np.signbit(reduce.numpy_total(np.full(n, -0.0, dtype))) == np.signbit(np.add.reduce(np.full(n, -0.0, dtype)))


@pytest.mark.skipif(not blas.AVAILABLE, reason="numpy's bundled OpenBLAS was not found")
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40), st.booleans(), st.booleans(),
       st.sampled_from([np.float32, np.float64]))
def test_blas_gemm_is_the_matrix_product(m, n, k, transpose_a, transpose_b, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if transpose_b else (k, n)).astype(dtype)
    out = np.full((m, n), np.nan, dtype)
    blas.gemm(a, b, out, transpose_a, transpose_b)
    expected = (a.T if transpose_a else a).astype(np.float64) @ (b.T if transpose_b else b).astype(np.float64)
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_a_float64_model_lowers_bitwise_too():
    from keras_helpers import classification_data, small_model
    x, labels = classification_data(40)
    models = []
    for jit in ("auto", False):
        model = small_model(dtype="float64")
        model.to("cpu")
        model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", jit_compile=jit)
        models.append(model)
    lowered, eager = models
    for model in models:
        for _ in range(3):
            model.fit(x, labels, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert lowered.jit_report()["plans_lowered"] == 1
    assert "np.float64" in next(iter(lowered._compiler.plans().values())).lowered.source
    assert all(weight.dtype == np.float64 for weight in lowered.get_weights())
    _assert_same_weights(lowered, eager)


def test_a_tampered_plan_cache_file_is_rewritten_never_run(tmp_path):
    config = CONFIGS[1]
    x, y = _data(config, 16)
    _, plan = _lowered_plan(config, x, y)
    marker = tmp_path / "ran"
    with open(plan.lowered.path, "w") as file:         # someone else's code where our plan's source was
        file.write(f"open({str(marker)!r}, 'w').close()\n")
    second, eager = _model(config, "cpu", "auto"), _model(config, "cpu", False)
    for _ in range(6):
        second.train_on_batch(x, y)
        eager.train_on_batch(x, y)
    (again,) = second._compiler.plans().values()
    assert again.is_lowered and not marker.exists()
    with open(again.lowered.path) as file:
        assert file.read() == again.lowered.source
    _assert_same_weights(second, eager)


def test_without_the_bundled_blas_products_take_matmul_and_plans_keep_their_replay(tmp_path):
    """NNENGINE_NO_BUNDLED_BLAS=1 is numpy on MKL or Accelerate: no cblas to call from numba."""
    import os
    import subprocess
    import sys
    script = """
import numpy as np, nnengine as nn
from nnengine import capture
from nnengine.kernels.cpu import blas
capture.LOWER_AFTER_REPLAYS = 1
assert not blas.AVAILABLE
nn.utils.set_random_seed(0)
model = nn.Sequential([nn.layers.Dense(8, activation="relu", input_shape=(6,)), nn.layers.Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
x, y = np.random.default_rng(0).standard_normal((16, 6)).astype(np.float32), np.arange(16) % 3
losses = [model.train_on_batch(x, y) for _ in range(6)]
assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
(plan,) = model._compiler.plans().values()
assert not plan.is_lowered and "numpy's matmul" in plan.lowering_reason, plan.lowering_reason
print("ok")
"""
    env = {**os.environ, "NNENGINE_NO_BUNDLED_BLAS": "1", "NNENGINE_PLAN_CACHE": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def _functional_graph(jit_compile):
    """Branches joined by Concatenate (full, index_add and getitem of slices in its plan) and Add, a shared layer."""
    nn.utils.set_random_seed(5)
    keras = nn.keras
    inputs = keras.Input(shape=(6,))
    shared = keras.layers.Dense(5, activation="relu")
    left, right = shared(keras.layers.Dense(4)(inputs)), shared(keras.layers.Dense(4, activation="tanh")(inputs))
    joined = keras.layers.Concatenate()([keras.layers.Add()([left, right]), right, inputs])
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(joined))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=jit_compile)
    return model


def test_a_functional_graph_with_a_concatenation_lowers_bitwise():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((30, 6)).astype(np.float32), rng.integers(0, 3, 30)
    lowered, eager = _functional_graph("auto"), _functional_graph(False)
    results = _fit_thrice(lowered, x, y)
    report = lowered.jit_report()
    assert report["plans_lowered"] == report["plans_held"] > 0, report
    expected = _fit_thrice(eager, x, y)
    assert results[:2] == expected[:2]
    np.testing.assert_array_equal(results[2], expected[2])
    _assert_same_weights(lowered, eager)
