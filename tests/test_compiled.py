"""Compiled steps (capture and replay) give bitwise the eager results, fall back with a reason, and stay bounded.

Every comparison here is exact (assert_array_equal, ==): a plan replays the same primitives in the same
order as the eager step it was captured from, so nothing may differ, not even in the last bit.
"""
import gc
import logging
import threading
import tracemalloc
import weakref

import numpy as np
import pytest

import nnengine as nn
from nnengine import capture
from nnengine import functional as F
from nnengine.capture import CaptureError
from nnengine.compiled_step import StepCompiler
from nnengine.utility_layers import inverted_dropout

DEVICES = ["numpy", "cpu"]

# (name, layers maker, loss, metrics, optimizer maker, target kind, input shape)
CONFIGS = [
    ("relu-softmax-cce-adam", lambda: [nn.layers.Dense(8, activation="relu"), nn.layers.Dense(4, activation="softmax")],
     "categorical_crossentropy", ["accuracy"], lambda: nn.optimizers.Adam(amsgrad=True), "onehot", (6,)),
    ("tanh-softmax-sparse-sgd", lambda: [nn.layers.Dense(8, activation="tanh"), nn.layers.Dense(4, activation="softmax")],
     "sparse_categorical_crossentropy", ["accuracy", "sparse_categorical_accuracy"],
     lambda: nn.optimizers.SGD(0.05, momentum=0.9, nesterov=True), "labels", (6,)),
    ("sigmoid-bce-rmsprop", lambda: [nn.layers.Dense(8, activation="elu"), nn.layers.Dense(1, activation="sigmoid")],
     "binary_crossentropy", ["accuracy", "binary_accuracy"],
     lambda: nn.optimizers.RMSprop(momentum=0.5, centered=True), "binary", (6,)),
    ("linear-mse-adagrad", lambda: [nn.layers.Dense(8, activation="gelu"), nn.layers.Dense(3)],
     "mse", ["mae", "mse"], lambda: nn.optimizers.Adagrad(0.05), "regression", (6,)),
    ("flatten-activation-mae-adamw", lambda: [nn.layers.Flatten(), nn.layers.Dense(5, activation="sigmoid"),
                                              nn.layers.Dense(3), nn.layers.Activation("softplus")],
     "mae", ["mse"], lambda: nn.optimizers.AdamW(0.01), "regression", (2, 3)),
    ("logits-cce-smoothing-ftrl", lambda: [nn.layers.Dense(8, activation="swish"), nn.layers.Dense(4)],
     nn.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), ["categorical_accuracy"],
     lambda: nn.optimizers.Ftrl(0.05, l1_regularization_strength=0.001, l2_regularization_strength=0.01, beta=0.1,
                                l2_shrinkage_regularization_strength=0.01), "onehot", (6,)),
    ("sparse-on-probabilities-lion", lambda: [nn.layers.Dense(8, activation="relu"),
                                             nn.layers.Dense(4, activation="sigmoid")],
     "sparse_categorical_crossentropy", ["accuracy"], lambda: nn.optimizers.Lion(0.003, weight_decay=0.01), "labels",
     (6,)),
    ("bce-on-softmax-adadelta", lambda: [nn.layers.Dense(4, activation="softmax")],
     "binary_crossentropy", ["binary_accuracy"], lambda: nn.optimizers.Adadelta(1.0, rho=0.9), "onehot", (6,)),
    ("recurrent-sparse-adam", lambda: [nn.layers.LSTM(5, return_sequences=True),
                                       nn.layers.GRU(4, return_sequences=True, go_backwards=True),
                                       nn.layers.GRU(4, return_sequences=True, reset_after=False),
                                       nn.layers.SimpleRNN(3), nn.layers.Dense(4, activation="softmax")],
     "sparse_categorical_crossentropy", ["accuracy"], lambda: nn.optimizers.Adam(), "labels", (5, 3)),
    ("time-distributed-sgd", lambda: [nn.layers.TimeDistributed(nn.layers.Dense(4, activation="relu")),
                                      nn.layers.Flatten(), nn.layers.Dense(4, activation="softmax")],
     "sparse_categorical_crossentropy", ["accuracy"], lambda: nn.optimizers.SGD(0.05, momentum=0.9), "labels", (5, 3)),
    ("selu-hinge-adamax", lambda: [nn.layers.Dense(8, activation="selu"), nn.layers.Dense(1)],
     "hinge", ["hinge"], lambda: nn.optimizers.Adamax(0.01, weight_decay=0.01), "binary", (6,)),
    ("mish-categorical-focal", lambda: [nn.layers.Dense(8, activation="mish"),
                                        nn.layers.Dense(4, activation="softmax")],
     nn.losses.CategoricalFocalCrossentropy(gamma=1.5, label_smoothing=0.1), ["categorical_accuracy"],
     lambda: nn.optimizers.RMSprop(), "onehot", (6,)),
    ("log-softmax-categorical-hinge-nadam", lambda: [nn.layers.Dense(8, activation="hard_silu"),
                                                     nn.layers.Dense(4, activation="log_softmax")],
     "categorical_hinge", ["categorical_accuracy"], lambda: nn.optimizers.Nadam(0.01), "onehot", (6,)),
    ("relu6-binary-focal", lambda: [nn.layers.Dense(8, activation="relu6"), nn.layers.Dense(1, activation="sigmoid")],
     nn.losses.BinaryFocalCrossentropy(apply_class_balancing=True), ["binary_accuracy"], lambda: nn.optimizers.Adam(),
     "binary", (6,)),
    ("softsign-msle-mape", lambda: [nn.layers.Dense(8, activation="softsign"),
                                    nn.layers.Dense(3, activation="softplus")],
     "msle", ["mape"], lambda: nn.optimizers.Adagrad(0.05), "regression", (6,)),
    ("dropout-adam", lambda: [nn.layers.Dense(16, activation="relu"), nn.layers.Dropout(0.3),
                              nn.layers.Dense(8, activation="relu"), nn.layers.Dropout(0.2, seed=5),
                              nn.layers.Dense(4, activation="softmax")],
     "sparse_categorical_crossentropy", ["accuracy"], lambda: nn.optimizers.Adam(), "labels", (6,)),
    ("recurrent-dropout-sgd", lambda: [nn.layers.GRU(4, dropout=0.2, recurrent_dropout=0.25, seed=3),
                                       nn.layers.Dense(4, activation="softmax")],
     "sparse_categorical_crossentropy", ["accuracy"], lambda: nn.optimizers.SGD(0.05), "labels", (5, 3)),
    ("bidirectional-rmsprop", lambda: [nn.layers.Bidirectional(nn.layers.LSTM(4, return_sequences=True)),
                                       nn.layers.Bidirectional(nn.layers.GRU(3), merge_mode="ave"),
                                       nn.layers.Dense(4, activation="softmax")],
     "sparse_categorical_crossentropy", ["accuracy"], lambda: nn.optimizers.RMSprop(), "labels", (5, 3)),
]


def _targets(kind, rng, n):
    if kind == "onehot":
        return np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)]
    if kind == "labels":
        return rng.integers(0, 4, n)
    if kind == "binary":
        return rng.integers(0, 2, (n, 1)).astype(np.float32)
    return rng.standard_normal((n, 3)).astype(np.float32)


def _model(config, device, jit_compile):
    _, make_layers, loss, metrics, make_optimizer, _, shape = config
    nn.utils.set_random_seed(7)
    model = nn.Sequential([nn.Input(shape=shape), *make_layers()])
    model.compile(optimizer=make_optimizer(), loss=loss, metrics=metrics, jit_compile=jit_compile)
    return model.to(device)


def _data(config, n=45):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, *config[6])).astype(np.float32)
    return x, _targets(config[5], rng, n)


def _train(model, x, y):
    """Fit with a partial last batch, validation, shuffling, and a callback that changes the learning rate."""
    def slower(epoch, logs):
        model.optimizer.learning_rate = model.optimizer.learning_rate * 0.5
    nn.utils.set_random_seed(11)
    history = model.fit(x, y, epochs=3, batch_size=8, validation_split=0.2, verbose=0,
                        callbacks=[nn.callbacks.LambdaCallback(on_epoch_end=slower)])
    after_fit = model.jit_report()
    return history.history, model.evaluate(x, y, verbose=0), model.predict(x, batch_size=16, verbose=0), after_fit


def _bitwise_on_cpu(config):
    """``config``'s model trained (``_train``) compiled and eagerly on the cpu device; asserts that histories,
    evaluations, predictions, weights and optimizer state agree bitwise; returns the compiled model."""
    x, y = _data(config)
    compiled, eager = _model(config, "cpu", "auto"), _model(config, "cpu", False)
    ran_compiled, ran_eager = _train(compiled, x, y), _train(eager, x, y)
    assert ran_compiled[:2] == ran_eager[:2]
    np.testing.assert_array_equal(ran_compiled[2], ran_eager[2])
    _assert_same_models(compiled, eager)
    return compiled


def _assert_same_models(compiled, eager):
    for a, b in zip(compiled.get_weights(), eager.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert compiled.optimizer.iterations == eager.optimizer.iterations
    for (_, name_a, a), (_, name_b, b) in zip(compiled.optimizer.slot_variables(), eager.optimizer.slot_variables()):
        assert name_a == name_b
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_compiled_fit_evaluate_predict_are_bitwise_the_eager_ones(config, device):
    x, y = _data(config)
    compiled, eager = _model(config, device, "auto"), _model(config, device, False)
    history_c, evaluated_c, predicted_c, report = _train(compiled, x, y)
    history_e, evaluated_e, predicted_e, _ = _train(eager, x, y)
    assert history_c == history_e
    assert evaluated_c == evaluated_e
    np.testing.assert_array_equal(predicted_c, predicted_e)
    _assert_same_models(compiled, eager)
    assert report["fallback_reason"] is None
    # a fit with a fixed batch size: full and partial training batches, full and partial validation batches
    assert report["captured"] == {"train": 2, "test": 2}
    assert compiled.jit_report()["captured"]["predict"] == 2       # then predict: 16 and 13 rows
    assert eager.jit_report()["captured"] == {}


@pytest.mark.parametrize("device", DEVICES)
def test_train_on_batch_and_test_on_batch_replay_many_steps_exactly(device):
    config = CONFIGS[0]
    x, y = _data(config, 16)
    compiled, eager = _model(config, device, True), _model(config, device, False)
    for step in range(30):
        assert compiled.train_on_batch(x, y) == eager.train_on_batch(x, y), step
    assert compiled.test_on_batch(x, y) == eager.test_on_batch(x, y)
    np.testing.assert_array_equal(compiled.predict_on_batch(x), eager.predict_on_batch(x))
    _assert_same_models(compiled, eager)
    assert compiled.jit_report()["captured"] == {"train": 1, "test": 1, "predict": 1}


def test_a_verified_plan_replays_on_the_hot_path_and_a_masked_one_on_the_full_path(monkeypatch):
    """After an eager first step (the optimizer's slots), its capture (step 2) and verification (step 3), a plan
    without dropout masks replays through StepCompiler.replay, not run(); a plan with masks always takes run()
    (its masks are drawn first)."""
    calls = []
    original = StepCompiler.run
    monkeypatch.setattr(StepCompiler, "run", lambda self, key, *rest, **options: calls.append(key[0]) or
                        original(self, key, *rest, **options))
    for config, expected in ((CONFIGS[0], ["train"] * 3), (CONFIGS[0][:1] + (lambda: [
            nn.layers.Dense(8, activation="relu"), nn.layers.Dropout(0.3), nn.layers.Dense(4, activation="softmax")],)
            + CONFIGS[0][2:], ["train"] * 6)):
        calls.clear()
        x, y = _data(config, 16)
        model = _model(config, "cpu", True)
        for _ in range(6):
            model.train_on_batch(x, y)
        assert calls == expected
        assert bool(model._compiler._ready) == (len(expected) == 3)


def test_a_replay_reads_weights_set_after_the_capture():
    config = CONFIGS[1]
    x, y = _data(config, 16)
    compiled, eager = _model(config, "cpu", "auto"), _model(config, "cpu", False)
    for model in (compiled, eager):
        model.train_on_batch(x, y)
        model.set_weights([w * 0.5 for w in model.get_weights()])     # new arrays behind the same tensors
        model.train_on_batch(x, y)
    _assert_same_models(compiled, eager)


def test_dropout_is_compiled_with_masks_drawn_before_each_step():
    """The masks are the step's inputs: each step gets new ones (a frozen mask would part from eager at step 3),
    drawn from the same generator in the same order as an eager step draws them, so the results are bitwise."""
    def layers():
        return [nn.layers.Dense(8, activation="relu"), nn.layers.Dropout(0.3), nn.layers.Dense(4, activation="softmax")]
    config = ("dropout", layers, "categorical_crossentropy", ["accuracy"], lambda: nn.optimizers.Adam(),
              "onehot", (6,))
    compiled = _bitwise_on_cpu(config)
    report = compiled.jit_report()
    assert report["fallback_reason"] is None and report["captured"]["train"] == 2     # full and last batch
    feeds = compiled._compiler.mask_feeds
    assert [len(feed.spec) for feed in feeds.values()] == [1, 1] and all(feed.learnt for feed in feeds.values())


class _Shifting(nn.layers.Layer):
    """A custom layer whose dropout masks change shape from step to step (its own control flow)."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def draws_dropout_masks(self, training):
        return training

    def call(self, x, training=False):
        if not training:
            return x
        self.steps += 1
        width = 1 + self.steps % 2
        return F.concatenate([inverted_dropout(x[:, :width], 0.5, None), x[:, width:]], axis=1)


def test_masks_that_change_shape_run_eagerly_saying_why():
    def layers():
        return [nn.layers.Dense(6, activation="relu"), _Shifting(), nn.layers.Dense(4, activation="softmax")]
    config = ("shifting", layers, "categorical_crossentropy", [], lambda: nn.optimizers.SGD(0.1), "onehot", (6,))
    compiled = _bitwise_on_cpu(config)
    assert "dropout masks of a training step change" in compiled.jit_report()["fallback_reason"]
    assert all(key[0] != "train" for key in compiled._compiler.plans())


class _TransposedKernel(nn.layers.Layer):
    """x @ w.T: the gradient of w arrives as a transposed (strided) view, which autograd copies contiguous."""

    def build(self, input_shape):
        self.w = self.add_weight((4, input_shape[-1]), "glorot_uniform")

    def call(self, x, training=False):
        return x @ self.w.T


def test_a_gradient_made_contiguous_by_a_copy_stays_contiguous_in_the_replay():
    """The replay drops autograd's copy of a leaf's gradient (nobody else holds it), but not when that copy made
    a strided view contiguous: the updates need C-contiguous arrays (this replayed into a ValueError)."""
    config = ("transposed", lambda: [_TransposedKernel(), nn.layers.Dense(4, activation="softmax")],
              "categorical_crossentropy", ["accuracy"], lambda: nn.optimizers.Adam(), "onehot", (6,))
    compiled = _bitwise_on_cpu(config)
    assert compiled.jit_report()["fallback_reason"] is None and compiled.jit_report()["captured"]["train"] == 2


class _HostRead(nn.layers.Layer):
    """A custom layer with data-dependent control flow: it reads its input back to the host."""

    def call(self, x, training=False):
        return x if float(x.numpy().max()) > 0 else -x


def test_jit_compile_true_says_why_a_model_cannot_be_compiled():
    config = ("host-read", lambda: [nn.layers.Dense(4, activation="softmax"), _HostRead()],
              "categorical_crossentropy", [], lambda: nn.optimizers.Adam(), "onehot", (6,))
    x, y = _data(config, 8)
    model = _model(config, "cpu", True)
    with pytest.raises(CaptureError, match="jit_compile=True.*to_numpy"):
        for _ in range(3):
            model.train_on_batch(x, y)


def test_run_eagerly_and_bad_modes():
    model = nn.Sequential([nn.layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    model.train_on_batch(np.ones((4, 3)), np.ones((4, 2)))
    assert model.jit_report() == {"jit_compile": False, "captured": {}, "plans_held": 0, "plans_lowered": 0,
                                  "fallback_reason": None}
    with pytest.raises(ValueError, match="jit_compile must be 'auto', True or False, got 'yes'"):
        model.compile(optimizer="sgd", loss="mse", jit_compile="yes")
    with pytest.raises(ValueError, match="contradict"):
        model.compile(optimizer="sgd", loss="mse", run_eagerly=True, jit_compile=True)
    with pytest.raises(TypeError, match="run_eagerly must be True or False"):
        model.compile(optimizer="sgd", loss="mse", run_eagerly="no")


def test_a_new_plan_is_logged_and_counted(caplog):
    config = CONFIGS[0]
    x, y = _data(config, 16)
    model = _model(config, "cpu", "auto")
    with caplog.at_level(logging.INFO, logger="nnengine.capture"):
        model.train_on_batch(x, y)
        model.train_on_batch(x, y)
        model.train_on_batch(x[:5], y[:5])       # a new batch size: a second plan
    captured = [r.message for r in caplog.records if "captured a train plan" in r.message]
    assert len(captured) == 2 and model.jit_report()["captured"]["train"] == 2


def test_plans_per_model_are_bounded():
    from nnengine import compiled_step
    config = CONFIGS[3]
    x, y = _data(config, compiled_step.MAX_PLANS + 4)
    model = _model(config, "cpu", "auto")
    for n in range(1, compiled_step.MAX_PLANS + 4):
        model.train_on_batch(x[:n], y[:n])
    assert model.jit_report()["plans_held"] == compiled_step.MAX_PLANS


def test_compiled_steps_do_not_grow_memory_and_plans_die_with_their_model():
    config = CONFIGS[0]
    x, y = _data(config, 8)
    model = _model(config, "cpu", "auto")
    for _ in range(capture.LOWER_AFTER_REPLAYS + 10):   # past the tier-up: the steps below run the lowered plan
        model.train_on_batch(x, y)
    for _ in range(50):
        model.train_on_batch(x, y)
    assert model.jit_report()["plans_lowered"] == 1
    tracemalloc.start()
    sizes = []
    for _ in range(5):                       # 10,000 compiled steps in all
        for _ in range(2000):
            model.train_on_batch(x, y)
        gc.collect()
        sizes.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    assert max(sizes[1:]) - sizes[0] < 32 * 1024, f"traced memory after each 2000 steps: {sizes}"
    plan = next(iter(model._compiler.plans().values()))
    dead_model, dead_plan = weakref.ref(model), weakref.ref(plan)
    del model, plan
    gc.collect()
    assert dead_model() is None and dead_plan() is None


def test_the_plan_of_the_document_model_is_one_call_per_fused_primitive():
    model = nn.Sequential([nn.layers.Dense(64, activation="relu", input_shape=(10,)),
                           nn.layers.Dense(32, activation="relu"), nn.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).standard_normal((32, 10)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(32) % 10]
    model.train_on_batch(x, y)               # the first step creates Adam's slots; the second is captured
    assert model.jit_report()["captured"] == {}
    model.train_on_batch(x, y)
    text = next(iter(model._compiler.plans().values())).describe()
    assert text.count("dense_forward(") == 3 and text.count("dense_backward(") == 3
    assert text.count("softmax_cross_entropy(") == 1 and text.count("adam_update_many(") == 1
    assert "copy(" not in text                # each gradient was made for its weight alone: no copies


def test_a_recorder_lets_other_threads_through():
    from nnengine.capture import Recorder
    backend = nn.get_backend("cpu")
    other = {}
    with Recorder(backend) as recorder:
        worker = threading.Thread(target=lambda: other.update(out=backend.add(np.ones(3), np.ones(3))))
        worker.start()
        worker.join()
        backend.neg(np.ones(2))
    assert [call[0] for call in recorder.calls] == ["neg"]
    np.testing.assert_array_equal(other["out"], 2 * np.ones(3))
    assert "add" not in vars(backend)        # the listeners are gone


def test_capture_refuses_a_host_read_and_a_stale_array():
    from nnengine.capture import Plan, Recorder
    backend = nn.get_backend("cpu")
    with Recorder(backend) as recorder:
        backend.to_numpy(backend.neg(np.ones(2)))
    with pytest.raises(CaptureError, match="reads device values on the host"):
        Plan.build(recorder, [], [], [])
    stale = np.ones(2)
    with Recorder(backend) as recorder:
        out = backend.neg(stale)
    with pytest.raises(CaptureError, match="neither its batch, a weight, nor made by the step"):
        Plan.build(recorder, [], [], [out], strict=True)
    assert len(Plan.build(recorder, [], [], [out])) == 1      # not strict: read as a constant


def test_jit_replays_a_function_of_tensors():
    w = nn.tensor(np.random.default_rng(0).standard_normal((4, 3)))

    def layer(x):
        return (x @ w).tanh().sum(axis=1)
    fast = nn.jit(layer)
    x = nn.tensor(np.random.default_rng(1).standard_normal((5, 4)))
    first, second = fast(x), fast(x * 2.0)
    np.testing.assert_array_equal(second.numpy(), layer(x * 2.0).numpy())
    np.testing.assert_array_equal(first.numpy(), layer(x).numpy())
    assert fast.plans == 1 and fast.reason is None
    F = nn.functional
    F.sgd_update(w, nn.ones((4, 3), dtype=w.dtype), lr=0.5)           # in place: the replay sees it
    np.testing.assert_array_equal(fast(x).numpy(), layer(x).numpy())
    fast(nn.tensor(np.ones((2, 4))))                                    # a new shape: a second plan
    assert fast.plans == 2


def test_jit_runs_eagerly_when_an_argument_requires_grad():
    fast = nn.jit(lambda x: (x * x).sum())
    x = nn.tensor([1.0, 2.0], requires_grad=True)
    out = fast(x)
    out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    assert "requires grad" in fast.reason and fast.plans == 0


def test_a_jit_function_inside_a_captured_step_is_recorded_by_the_step():
    inner = nn.jit(lambda x: x * 2.0)
    backend = nn.get_backend("cpu")
    from nnengine.capture import Recorder
    with Recorder(backend, allow_uploads=True) as recorder:
        out = inner(nn.tensor([1.0, 2.0]))
        with pytest.raises(CaptureError, match="already recording"):
            Recorder(backend).__enter__()
    np.testing.assert_array_equal(out.numpy(), [2.0, 4.0])
    assert inner.plans == 0 and "inside another capture" in inner.reason
    assert [call[0] for call in recorder.calls] == ["from_numpy", "full", "mul"]     # the tensor, 2.0, x * 2


class _NoisyLayer(nn.layers.Layer):
    """Adds fresh host noise in training and does not say so: the check on the second step must catch it."""

    def call(self, x, training=False):
        if not training:
            return x
        noise = np.random.default_rng().standard_normal(x.shape).astype(np.float32) * 0.01
        return x + nn.tensor(noise, device=x.device)

    def compute_output_shape(self, input_shape):
        return input_shape


def test_host_data_that_changes_every_step_is_caught_on_the_second_step():
    model = nn.Sequential([nn.Input(shape=(6,)), nn.layers.Dense(4, activation="relu"), _NoisyLayer(),
                           nn.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = np.ones((8, 6), np.float32), np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    for _ in range(4):
        model.train_on_batch(x, y)
    report = model.jit_report()
    assert "changes from step to step" in report["fallback_reason"] and report["plans_held"] == 0
    model.test_on_batch(x, y)                  # at inference the layer uploads nothing: compiled
    model.test_on_batch(x, y)
    assert model.jit_report()["plans_held"] == 1


def test_threads_capture_and_replay_their_own_models_exactly():
    def make(seed):
        nn.utils.set_random_seed(seed)
        model = nn.Sequential([nn.Input(shape=(6,)), nn.layers.Dense(16, activation="relu"),
                               nn.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 6)).astype(np.float32), rng.integers(0, 3, 32)
    expected = []
    for seed in range(4):
        model = make(seed)
        for _ in range(20):
            model.train_on_batch(x, y)
        expected.append(model.get_weights())
    models = [make(seed) for seed in range(4)]

    def train(model):
        for _ in range(20):
            model.train_on_batch(x, y)
    threads = [threading.Thread(target=train, args=(model,)) for model in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for model, weights in zip(models, expected):
        assert model.jit_report()["captured"] == {"train": 1}
        for got, want in zip(model.get_weights(), weights):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("frozen", [1, 2])
def test_a_frozen_layer_gets_no_gradient_and_the_step_still_compiles(frozen):
    """Its gradient used to be computed and summed up over the steps; the compiled step refused that stale sum."""
    dense, inputs = nn.keras.layers.Dense, nn.keras.Input((6,))
    model = nn.keras.Model(inputs, dense(3, activation="softmax")(dense(5)(dense(8)(inputs))))
    model.layers[frozen].trainable = False
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((48, 6)).astype(np.float32), rng.integers(0, 3, 48)
    kept = model.layers[frozen].get_weights()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert model.jit_report()["fallback_reason"] is None
    assert all(weight.grad is None and weight.requires_grad for weight in model.layers[frozen].weights)
    for before, after in zip(kept, model.layers[frozen].get_weights()):
        np.testing.assert_array_equal(before, after)
