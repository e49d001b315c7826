"""The parts of the Keras-style API against Keras's formulas: activations, initializers, losses, metrics,
optimizers and the progress display."""
import math

import numpy as np
import pytest
pytest.importorskip("hypothesis")        # property tests: skipped where hypothesis is missing
from hypothesis import given
from hypothesis import strategies as st
from keras_helpers import FakeTerminal

import nnengine as nn
from nnengine.progress import Progbar, format_eta, format_step_time, format_value

ERF = np.vectorize(math.erf)

ACTIVATIONS = {   # name: float64 numpy formula with Keras 3's defaults
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softmax": lambda x: np.exp(x - x.max(-1, keepdims=True)) / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "elu": lambda x: np.where(x > 0, x, np.exp(np.minimum(x, 0)) - 1),
    "gelu": lambda x: 0.5 * x * (1 + ERF(x / np.sqrt(2))),
    "softplus": lambda x: np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0),
    "swish": lambda x: x / (1 + np.exp(-x)),
    "relu6": lambda x: np.minimum(np.maximum(x, 0), 6),
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0))),
    "celu": lambda x: np.maximum(x, 0) + np.minimum(np.expm1(x), 0),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "squareplus": lambda x: (x + np.sqrt(x * x + 4)) / 2,
    "soft_shrink": lambda x: np.sign(x) * np.maximum(np.abs(x) - 0.5, 0),
    "hard_shrink": lambda x: x * (np.abs(x) > 0.5),
    "tanh_shrink": lambda x: x - np.tanh(x),
    "hard_tanh": lambda x: np.clip(x, -1, 1),
    "sparse_plus": lambda x: np.select([x <= -1, x >= 1], [0 * x, x], (x + 1) ** 2 / 4),
    "exponential": np.exp,
    "hard_sigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
    "sparse_sigmoid": lambda x: np.clip((x + 1) / 2, 0, 1),
    "log_sigmoid": lambda x: -np.logaddexp(0, -x),
    "hard_silu": lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
    "mish": lambda x: x * np.tanh(np.logaddexp(0, x)),
    "log_softmax": lambda x: x - x.max(-1, keepdims=True) - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(
        -1, keepdims=True)),
    "glu": lambda x: x[..., :2] / (1 + np.exp(-x[..., 2:])),
}
KINKS = np.array([0.0, -0.5, 0.5, -1.0, 1.0, -3.0, 3.0, 6.0])     # where some activation's slope jumps


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(seed=st.integers(0, 2**16))
def test_activation_values_and_gradients(name, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-7, 7, (3, 4))
    near_a_kink = np.abs(x[..., None] - KINKS).min(-1) < 1e-3
    x[near_a_kink] = 0.25                                    # keep finite differences off the kinks
    function = nn.activations.get(name)
    np.testing.assert_allclose(function(nn.tensor(x)).numpy(), ACTIVATIONS[name](x), rtol=1e-12, atol=1e-12)
    assert nn.gradcheck(lambda t: function(t), nn.tensor(x, requires_grad=True)).passed


def test_activations_with_arguments():
    x = np.linspace(-5, 5, 21)
    for name, function, expected in [
            ("celu", lambda t: nn.activations.celu(t, alpha=2.0),
             np.maximum(x, 0) + np.minimum(2 * np.expm1(x / 2), 0)),
            ("squareplus", lambda t: nn.activations.squareplus(t, b=1), (x + np.sqrt(x * x + 1)) / 2),
            ("threshold", lambda t: nn.activations.threshold(t, 1.5, -2.0), np.where(x > 1.5, x, -2.0)),
            ("soft_shrink", lambda t: nn.activations.soft_shrink(t, 2.0), np.sign(x) * np.maximum(np.abs(x) - 2, 0)),
            ("relu", lambda t: nn.activations.relu(t, negative_slope=0.1, max_value=3.0, threshold=-1.0),
             np.where(x > -1, np.clip(x, 0, 3), 0) - 0.1 * np.maximum(-1 - x, 0))]:
        np.testing.assert_allclose(function(nn.tensor(x)).numpy(), expected, rtol=1e-12, atol=1e-12, err_msg=name)
    halves = nn.activations.glu(nn.tensor(x[:14].reshape(2, 7)), axis=0).numpy()
    np.testing.assert_allclose(halves, [x[:7] / (1 + np.exp(-x[7:14]))], rtol=1e-12)
    with pytest.raises(ValueError, match="glu: axis 0 must have an even size"):
        nn.activations.glu(nn.tensor(x.reshape(3, 7)), axis=0)


@pytest.mark.parametrize("name", ["relu6", "selu", "hard_sigmoid", "mish", "log_softmax", "hard_silu"])
def test_new_activations_train_in_dense_and_keep_their_name_in_files(name, tmp_path):
    model = nn.keras.Sequential([nn.keras.layers.Dense(6, activation=name, input_shape=(4,)),
                                 nn.keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(1).standard_normal((16, 4)).astype("float32")
    assert np.isfinite(model.fit(x, np.arange(16) % 2, verbose=0).history["loss"][0])
    model.save(tmp_path / "model.h5")
    loaded = nn.keras.models.load_model(tmp_path / "model.h5")
    assert loaded.layers[0].get_config()["activation"] == name
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_aliases_are_written_as_keras_3_names():
    assert nn.keras.layers.Dense(2, activation="swish").get_config()["activation"] == "silu"
    assert nn.keras.layers.Dense(2, activation="hard_swish").get_config()["activation"] == "hard_silu"


def test_softplus_and_elu_do_not_overflow():
    x = nn.tensor(np.array([-1000.0, 1000.0]))
    np.testing.assert_allclose(nn.activations.softplus(x).numpy(), [0.0, 1000.0])
    np.testing.assert_allclose(nn.activations.elu(x).numpy(), [-1.0, 1000.0])


def test_gelu_approximate_form():
    x = np.linspace(-3, 3, 13)
    expected = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(nn.activations.gelu(nn.tensor(x), approximate=True).numpy(), expected, rtol=1e-12)


def test_unknown_activation_lists_the_valid_names():
    with pytest.raises(ValueError, match="Unknown activation 'rellu'; valid names: .*relu.*swish"):
        nn.layers.Dense(3, activation="rellu")


def test_dense_with_a_non_fused_activation_applies_it_after_the_product():
    layer = nn.layers.Dense(4, activation="gelu", input_shape=(3,), dtype="float64")
    x = np.random.default_rng(0).standard_normal((5, 3))
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(layer(x).numpy(), ACTIVATIONS["gelu"](x @ kernel + bias), rtol=1e-12)


# ---------------------------------------------------------------- initializers
def test_glorot_uniform_is_keras_default_with_its_limit():
    nn.utils.set_random_seed(0)
    kernel = nn.layers.Dense(300, input_shape=(200,)).get_weights()[0]
    limit = math.sqrt(6 / 500)
    assert kernel.min() >= -limit and kernel.max() <= limit
    assert kernel.var() == pytest.approx(limit ** 2 / 3, rel=0.02)


@pytest.mark.parametrize("name, std", [
    ("glorot_normal", math.sqrt(2 / 500)), ("he_normal", math.sqrt(2 / 200)), ("lecun_normal", math.sqrt(1 / 200)),
    ("he_uniform", math.sqrt(2 / 200)), ("lecun_uniform", math.sqrt(1 / 200)),
])
def test_variance_scaling_presets_hit_their_variance(name, std):
    values = nn.initializers.get(name)((200, 300))
    assert values.std() == pytest.approx(std, rel=0.03)
    if name.endswith("normal"):          # truncated at two standard deviations of the untruncated draw
        assert np.abs(values).max() <= 2 * std / 0.87962566103423978 + 1e-12


def test_initializers_with_a_seed_repeat_and_constants_are_constant():
    a = nn.initializers.RandomNormal(seed=3)((4, 4))
    np.testing.assert_array_equal(a, nn.initializers.RandomNormal(seed=3)((4, 4)))
    assert a.dtype == np.float32
    np.testing.assert_array_equal(nn.initializers.Constant(2.5)((3,)), [2.5, 2.5, 2.5])
    np.testing.assert_array_equal(nn.initializers.get("ones")((2,)), [1, 1])
    with pytest.raises(ValueError, match="Unknown initializer 'glorot'; valid names"):
        nn.initializers.get("glorot")


def test_set_random_seed_makes_models_repeat():
    def weights():
        nn.utils.set_random_seed(42)
        return nn.layers.Dense(3, input_shape=(4,)).get_weights()[0]
    np.testing.assert_array_equal(weights(), weights())


# ---------------------------------------------------------------- losses
def probabilities(rng, n=6, c=4):
    p = rng.uniform(0.05, 1, (n, c))
    return p / p.sum(1, keepdims=True)


def test_categorical_crossentropy_normalises_and_takes_unnormalised_targets_as_keras():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.05, 1, (6, 4))                       # not normalised: Keras divides by the row sum
    y = rng.uniform(0, 2, (6, 4))                            # soft, unnormalised targets
    expected = -(y * np.log(raw / raw.sum(1, keepdims=True))).sum(1)
    loss = nn.losses.CategoricalCrossentropy()
    assert loss(y, nn.tensor(raw, dtype="float64")).item() == pytest.approx(expected.mean(), rel=1e-12)
    np.testing.assert_allclose(nn.losses.categorical_crossentropy(y, nn.tensor(raw, dtype="float64")).numpy(),
                               expected, rtol=1e-12)


def test_categorical_crossentropy_clips_probabilities_at_1e_minus_7():
    p = nn.tensor([[1.0, 0.0]], dtype="float64")
    assert nn.losses.CategoricalCrossentropy()([[0.0, 1.0]], p).item() == pytest.approx(-math.log(1e-7))


@given(seed=st.integers(0, 2**16))
def test_fused_softmax_cross_entropy_equals_keras_formula_with_gradient_for_soft_targets(seed):
    rng = np.random.default_rng(seed)
    logits = rng.uniform(-3, 3, (5, 4))
    y = rng.uniform(0, 2, (5, 4))                            # soft, unnormalised
    loss = nn.losses.CategoricalCrossentropy()
    fused = lambda z: loss.on_logits(y, z)
    plain = lambda z: loss(y, z.softmax())
    z = nn.tensor(logits, requires_grad=True)
    assert fused(z).item() == pytest.approx(plain(z).item(), rel=1e-10)
    fused(z).backward()
    fused_grad = z.grad.numpy()
    z.zero_grad()
    plain(z).backward()
    np.testing.assert_allclose(fused_grad, z.grad.numpy(), rtol=1e-8, atol=1e-12)
    assert nn.gradcheck(fused, nn.tensor(logits, requires_grad=True)).passed


def test_sparse_categorical_crossentropy_matches_the_one_hot_form():
    rng = np.random.default_rng(1)
    p = probabilities(rng)
    labels = rng.integers(0, 4, 6)
    sparse = nn.losses.SparseCategoricalCrossentropy()(labels, nn.tensor(p)).item()
    dense = nn.losses.CategoricalCrossentropy()(np.eye(4)[labels], nn.tensor(p)).item()
    assert sparse == pytest.approx(dense, rel=1e-6)
    logits = nn.tensor(rng.standard_normal((6, 4)))
    assert nn.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits).item() == pytest.approx(
        nn.losses.SparseCategoricalCrossentropy()(labels, logits.softmax()).item(), rel=1e-5)


def test_binary_crossentropy_probabilities_and_logits():
    rng = np.random.default_rng(2)
    z = rng.uniform(-4, 4, (8, 3))
    y = rng.integers(0, 2, (8, 3)).astype(np.float64)
    p = 1 / (1 + np.exp(-z))
    expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(1).mean()
    bce = nn.losses.BinaryCrossentropy()
    assert bce(y, nn.tensor(p, dtype="float64")).item() == pytest.approx(expected, rel=1e-9)
    assert nn.losses.BinaryCrossentropy(from_logits=True)(y, nn.tensor(z, dtype="float64")).item() == \
        pytest.approx(expected, rel=1e-9)
    assert bce.on_logits(y, nn.tensor(z, dtype="float64")).item() == pytest.approx(expected, rel=1e-9)
    assert nn.gradcheck(lambda t: nn.losses.BinaryCrossentropy(from_logits=True)(y, t),
                        nn.tensor(z, requires_grad=True)).passed


def test_regression_losses_and_reductions():
    rng = np.random.default_rng(3)
    y, p = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    assert nn.losses.MeanSquaredError()(y, nn.tensor(p, dtype="float64")).item() == pytest.approx(((y - p) ** 2).mean())
    assert nn.losses.get("mae")(y, nn.tensor(p, dtype="float64")).item() == pytest.approx(np.abs(y - p).mean())
    per_sample = nn.losses.MeanSquaredError(reduction="none")(y, nn.tensor(p, dtype="float64")).numpy()
    np.testing.assert_allclose(per_sample, ((y - p) ** 2).mean(1))
    total = nn.losses.MeanSquaredError(reduction="sum")(y, nn.tensor(p, dtype="float64")).item()
    assert total == pytest.approx(((y - p) ** 2).mean(1).sum())
    column = nn.losses.MeanSquaredError()(y[:, 0], nn.tensor(p[:, :1], dtype="float64")).item()   # (n,) vs (n, 1)
    assert column == pytest.approx(((y[:, 0] - p[:, 0]) ** 2).mean())


def test_unknown_loss_lists_the_valid_names():
    with pytest.raises(ValueError, match="Unknown loss 'crossentropy'; valid names: bce, binary_crossentropy"):
        nn.losses.get("crossentropy")


# ---------------------------------------------------------------- metrics
def test_metrics_accumulate_a_sample_weighted_mean_over_batches():
    metric = nn.metrics.CategoricalAccuracy()
    metric.update_state(np.eye(3)[[0, 1]], np.eye(3)[[0, 2]])          # 1 of 2
    metric.update_state(np.eye(3)[[2, 2, 1, 0]], np.eye(3)[[2, 2, 1, 0]])   # 4 of 4
    assert metric.result() == pytest.approx(5 / 6)
    metric.reset_state()
    assert metric.result() == 0.0


def test_metric_formulas():
    y_pred = np.array([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6]])
    assert nn.metrics.SparseCategoricalAccuracy()([1, 1, 1], y_pred) == pytest.approx(2 / 3)
    assert nn.metrics.BinaryAccuracy()([[0], [1], [1]], np.array([[0.2], [0.7], [0.4]])) == pytest.approx(2 / 3)
    assert nn.metrics.MeanSquaredError()([[1.0, 2.0]], np.array([[0.0, 0.0]])) == pytest.approx(2.5)
    assert nn.metrics.MeanAbsoluteError()([[1.0, -2.0]], np.array([[0.0, 0.0]])) == pytest.approx(1.5)
    assert nn.metrics.Accuracy()([1, 2, 3], np.array([1, 0, 3])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="Unknown metric 'acuracy'; valid names: acc, accuracy"):
        nn.metrics.get("acuracy")


# ---------------------------------------------------------------- optimizers
def test_optimizer_strings_give_keras_defaults():
    adam = nn.optimizers.get("adam")
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon, adam.amsgrad) == (0.001, 0.9, 0.999, 1e-7, False)
    assert nn.optimizers.get("sgd").learning_rate == 0.01
    assert nn.optimizers.get("adamw").weight_decay == 0.004
    rmsprop = nn.optimizers.get("rmsprop")
    assert (rmsprop.rho, rmsprop.momentum, rmsprop.epsilon, rmsprop.centered) == (0.9, 0.0, 1e-7, False)
    assert nn.optimizers.get("adagrad").initial_accumulator_value == 0.1
    adamax = nn.optimizers.get("adamax")
    assert (adamax.learning_rate, adamax.beta_1, adamax.beta_2, adamax.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    nadam, lion, adadelta = (nn.optimizers.get(name) for name in ("nadam", "lion", "adadelta"))
    assert (nadam.learning_rate, nadam.beta_1, nadam.beta_2, nadam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert (lion.learning_rate, lion.beta_1, lion.beta_2) == (0.001, 0.9, 0.99)
    assert (adadelta.learning_rate, adadelta.rho, adadelta.epsilon) == (0.001, 0.95, 1e-7)
    ftrl = nn.optimizers.get("ftrl")
    assert (ftrl.learning_rate, ftrl.learning_rate_power, ftrl.initial_accumulator_value, ftrl.beta) == \
        (0.001, -0.5, 0.1, 0.0)
    assert ftrl.get_config()["l2_shrinkage_regularization_strength"] == 0.0
    with pytest.raises(ValueError, match="Unknown optimizer 'adamm'; valid names: adadelta, adagrad, adam, adamax, adamw"):
        nn.optimizers.get("adamm")


@pytest.mark.parametrize("arguments, message", [
    (dict(learning_rate_power=0.5), r"ftrl: learning_rate_power must be a finite number <= 0"),
    (dict(initial_accumulator_value=-0.1), r"ftrl: initial_accumulator_value"),
    (dict(l1_regularization_strength=-1.0), r"ftrl: l1_regularization_strength"),
    (dict(beta=float("nan")), r"ftrl: beta"),
])
def test_ftrl_refuses_what_keras_refuses(arguments, message):
    with pytest.raises(ValueError, match=message):
        nn.optimizers.Ftrl(**arguments)


def test_ftrl_refuses_a_learning_rate_of_zero_at_its_step():
    model = nn.Sequential([nn.layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer=nn.optimizers.Ftrl(learning_rate=0.0), loss="mse")
    with pytest.raises(ValueError, match=r"Ftrl: the learning rate must be > 0 \(the update divides by it\)"):
        model.train_on_batch(np.ones((2, 3)), np.ones((2, 2)))


def test_ftrl_l1_makes_weights_exactly_zero():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = x[:, :1] * 2.0                                  # only the first feature matters
    kernels = []
    for l1 in (0.0, 1.0):
        nn.utils.set_random_seed(1)
        model = nn.Sequential([nn.layers.Dense(1, input_shape=(6,), use_bias=False)])
        model.compile(optimizer=nn.optimizers.Ftrl(0.5, l1_regularization_strength=l1), loss="mse")
        model.fit(x, y, epochs=20, batch_size=16, shuffle=False, verbose=0)
        kernels.append(model.get_weights()[0][:, 0])
    assert np.count_nonzero(kernels[0]) == 6                       # without L1 no weight is exactly 0
    assert kernels[1][0] > 1.9 and np.count_nonzero(kernels[1][1:] == 0) >= 2    # irrelevant features cut to 0


def test_lion_refuses_beta_1_zero_as_keras_does():
    with pytest.raises(ValueError, match=r"lion: beta_1 must be a finite number in \(0, 1\]"):
        nn.optimizers.Lion(beta_1=0.0)
    assert nn.optimizers.Lion(beta_1=1.0).beta_1 == 1.0


def test_nadam_u_product_is_the_running_product_of_its_momentum_schedule_at_any_step_count():
    nadam = nn.optimizers.Nadam(beta_1=0.8)
    expected = 1.0
    for step in range(1, 40):
        expected *= 0.8 * (1 - 0.5 * 0.96 ** step)
        nadam.iterations = step
        assert nadam.u_product() == pytest.approx(expected, rel=1e-12)
    nadam.iterations = 7                          # a restored step count (load_model) goes back or forward
    assert nadam.u_product() == pytest.approx(np.prod([0.8 * (1 - 0.5 * 0.96 ** t) for t in range(1, 8)]))
    assert nadam.extra_variables() == [("variable", np.float32(nadam.u_product()))]


def test_adam_object_follows_keras_formula_over_steps():
    rng = np.random.default_rng(0)
    w0, grads = rng.standard_normal(5), rng.standard_normal((3, 5))
    param = nn.tensor(w0, requires_grad=True)
    optimizer = nn.optimizers.Adam(learning_rate=0.1)
    w, m, v = w0.copy(), np.zeros(5), np.zeros(5)
    for t, g in enumerate(grads, start=1):
        optimizer.apply_gradients([(nn.tensor(g), param)])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w -= 0.1 * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(param.numpy(), w, rtol=1e-12)
    assert optimizer.iterations == 3


def test_adamw_decays_weights_before_the_step_and_sgd_momentum_keeps_velocity():
    param = nn.tensor([1.0, -2.0], requires_grad=True)
    nn.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5).apply([nn.tensor([0.0, 0.0])], [param])
    np.testing.assert_allclose(param.numpy(), [1.0 * (1 - 0.05), -2.0 * (1 - 0.05)], rtol=1e-6)
    param = nn.tensor([1.0], requires_grad=True)
    sgd = nn.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    for _ in range(2):
        sgd.apply_gradients([(nn.tensor([1.0]), param)])
    np.testing.assert_allclose(param.numpy(), [1 - 0.1 - (0.9 * 0.1 + 0.1)], rtol=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop", "adagrad",
                                       nn.optimizers.RMSprop(momentum=0.5, centered=True),
                                       nn.optimizers.SGD(momentum=0.9, nesterov=True),
                                       nn.optimizers.Adam(amsgrad=True)])
def test_every_optimizer_lowers_a_quadratic(optimizer):
    optimizer = nn.optimizers.get(optimizer)
    optimizer.learning_rate = 0.05
    param = nn.tensor([3.0, -2.0], requires_grad=True)
    for _ in range(30):
        (param * param).sum().backward()
        optimizer.step([param])
    assert (param.numpy() ** 2).sum() < 13 * 0.8
    assert param.grad is None


def test_optimizer_arguments_are_checked():
    with pytest.raises(ValueError, match="learning_rate must be a finite number >= 0, got -1.0"):
        nn.optimizers.Adam(learning_rate=-1)
    with pytest.raises(ValueError, match="beta_1 must be a finite number in \\[0, 1\\), got 1.5"):
        nn.optimizers.Adam(beta_1=1.5)


# ---------------------------------------------------------------- progress display
def test_number_and_time_formats_are_keras():
    assert format_value(0.123456) == "0.1235" and format_value(0.0001234) == "1.2340e-04"
    assert format_step_time(0.0142) == "14ms/step" and format_step_time(2.4) == "2s/step"
    assert format_step_time(0.000412) == "412us/step"
    assert format_eta(7.9) == "7s" and format_eta(65) == "1:05" and format_eta(3725) == "1:02:05"


def test_piped_progress_writes_whole_lines_only():
    stream = FakeTerminal()
    stream.isatty = lambda: False
    bar = Progbar(3, verbose=1, stream=stream)
    for step in (1, 2):
        bar.update(step, {"loss": 1.0}, finalize=False)
    assert stream.getvalue() == ""
    bar.update(3, {"accuracy": 0.5, "loss": 0.25})
    line = stream.getvalue()
    assert "\r" not in line and "\x1b" not in line and line.count("\n") == 1
    assert line.startswith("3/3 " + "━" * 20 + " 0s ") and line.endswith(" - accuracy: 0.5000 - loss: 0.2500\n")


def test_terminal_progress_redraws_in_place_with_eta():
    stream = FakeTerminal()
    bar = Progbar(10, verbose=1, stream=stream, interval=0)
    bar.update(5, {"loss": 2.0}, finalize=False)
    first = stream.getvalue()
    assert first.startswith("\r\x1b[1m 5/10\x1b[0m \x1b[32m" + "━" * 10) and "- loss: 2.0000" in first
    assert "\n" not in first
    bar.update(10, {"loss": 1.0})
    assert stream.getvalue().endswith("- loss: 1.0000\n") and stream.getvalue().count("\r") == 2


def test_verbose_2_writes_one_line_per_epoch(capsys):
    x = np.random.default_rng(0).standard_normal((20, 3))
    model = nn.Sequential([nn.layers.Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    model.fit(x, x[:, :1], epochs=2, batch_size=8, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    import re
    assert re.fullmatch(r"3/3 - \d+s - \d+[mu]?s/step - loss: \d\.\d{4}(e-\d\d)? - mae: \d\.\d{4}(e-\d\d)?", lines[1])


def test_verbose_0_prints_nothing(capsys):
    model = nn.Sequential([nn.layers.Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 1)), verbose=0)
    model.evaluate(np.ones((4, 3)), np.ones((4, 1)), verbose=0)
    model.predict(np.ones((4, 3)), verbose=0)
    assert capsys.readouterr().out == ""


@given(batch=st.integers(1, 9), features=st.integers(1, 7), units=st.integers(1, 6),   # (glu halves the units)
       activation=st.sampled_from(sorted(set(ACTIVATIONS) - {"glu"})), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**16))
def test_dense_matches_numpy_over_shapes_activations_and_dtypes(batch, features, units, activation, dtype, seed):
    layer = nn.layers.Dense(units, activation=activation, input_shape=(features,), dtype=dtype,
                            bias_initializer=nn.initializers.RandomNormal(seed=seed))
    x = np.random.default_rng(seed).standard_normal((batch, features))
    kernel, bias = layer.get_weights()
    out = layer(x)
    assert out.dtype == np.dtype(dtype) and out.shape == (batch, units)
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    expected = ACTIVATIONS[activation]((x.astype(dtype) @ kernel + bias).astype(np.float64))
    np.testing.assert_allclose(out.numpy(), expected, **tolerance)


@pytest.mark.parametrize("identifier", [
    "categorical_crossentropy", "mse",
    {"class_name": "CategoricalCrossentropy", "config": {"from_logits": True, "label_smoothing": 0.1, "axis": -1}},
    nn.losses.BinaryCrossentropy(label_smoothing=0.2)])
def test_losses_round_trip_through_their_config(identifier):
    loss = nn.losses.get(identifier)
    config = nn.losses.serialize(loss)
    again = nn.losses.get(config)
    assert type(again) is type(loss)
    if isinstance(config, dict):
        assert again.get_config() == loss.get_config()


@given(batches=st.lists(st.integers(1, 40), min_size=1, max_size=5), classes=st.integers(1, 6),
       seed=st.integers(0, 2**31))
def test_accuracies_count_their_hits_exactly_as_the_mean_of_their_values(batches, classes, seed):
    """CategoricalAccuracy and SparseCategoricalAccuracy count boolean hits (Mean's fast path): the same
    result, to the last bit, as the running mean of the public functions' 0/1 values; those stay float64."""
    from nnengine import metrics
    rng = np.random.default_rng(seed)
    counted = metrics.CategoricalAccuracy(), metrics.SparseCategoricalAccuracy()
    summed = metrics.Mean(), metrics.Mean()
    for size in batches:
        labels = rng.integers(0, classes, size)
        one_hot = np.eye(classes, dtype=np.float32)[labels]
        predictions = rng.random((size, classes)).astype(np.float32)
        counted[0].update_state(one_hot, predictions)
        counted[1].update_state(labels, predictions)
        values = metrics.categorical_accuracy(one_hot, predictions), \
            metrics.sparse_categorical_accuracy(labels, predictions)
        for mean, value in zip(summed, values):
            assert value.dtype == np.float64
            mean.update_state(value)
    for metric, mean in zip(counted, summed):
        assert metric.result() == mean.result() and metric.count == mean.count


def test_get_metrics_result_and_reset_metrics_as_keras():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 3)).astype(np.float32), rng.integers(0, 2, 16)
    model = nn.Sequential([nn.layers.Dense(2, activation="softmax", input_shape=(3,))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.raises(ValueError, match="get_metrics_result: the metrics are built at the first batch"):
        model.get_metrics_result()
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert model.get_metrics_result() == logs
    model.reset_metrics()
    assert model.get_metrics_result() == {"accuracy": 0.0, "loss": 0.0}
    with pytest.raises(RuntimeError, match="You must call compile"):
        nn.Sequential([nn.layers.Dense(1, input_shape=(2,))]).reset_metrics()
