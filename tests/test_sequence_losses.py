"""Cross-entropies on predictions per position (n, ..., classes), as Keras computes them for sequences.

A model whose last Dense layer runs over a time axis (per-token classification after an Embedding,
say) predicts (n, t, classes): Keras then takes one loss per position and, by default, their mean over
all n * t positions; sparse labels are (n, t) or (n, t, 1). The expected values here are written out
in numpy from those formulas (checked once against Keras 3.15 on the torch backend, to 2.4e-7); the
fused logits path (softmax output, from_logits) must give them too, and a fit must equal the compiled
and the eager step bit for bit, with the accuracy counted per position.
"""
import numpy as np
import pytest

import nnengine as nn

N, T, C = 6, 5, 4


def _data(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((N, T, C))
    labels = rng.integers(0, C, (N, T))
    return logits, labels, np.eye(C)[labels]


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _expected_per_position(logits, labels):
    return -np.take_along_axis(_log_softmax(logits), labels[..., None], -1)[..., 0]


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
@pytest.mark.parametrize("from_logits", [True, False])
def test_cross_entropies_per_position_follow_keras(reduction, from_logits):
    logits, labels, one_hot = _data()
    predictions = logits if from_logits else np.exp(_log_softmax(logits))
    per_position = _expected_per_position(logits, labels)
    expected = {"sum_over_batch_size": per_position.mean(), "sum": per_position.sum(), "none": per_position}
    for loss, targets in ((nn.losses.CategoricalCrossentropy(from_logits=from_logits, reduction=reduction), one_hot),
                          (nn.losses.SparseCategoricalCrossentropy(from_logits=from_logits, reduction=reduction),
                           labels),
                          (nn.losses.SparseCategoricalCrossentropy(from_logits=from_logits, reduction=reduction),
                           labels[..., None])):
        got = loss(targets, nn.tensor(predictions)).numpy()
        assert got.shape == np.shape(expected[reduction])
        np.testing.assert_allclose(got, expected[reduction], rtol=1e-9, atol=1e-12)


def test_sample_weights_weight_every_position_of_their_sample():
    logits, labels, _ = _data(1)
    weights = np.linspace(0.5, 2.0, N)
    expected = (_expected_per_position(logits, labels) * weights[:, None]).sum() / (N * T)
    loss = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert loss(labels, nn.tensor(logits), sample_weight=weights).item() == pytest.approx(expected, rel=1e-12)


def test_gradient_of_the_mean_over_positions():
    logits, labels, one_hot = _data(2)
    z = nn.tensor(logits, requires_grad=True)
    nn.losses.CategoricalCrossentropy(from_logits=True)(one_hot, z).backward()
    softmax = np.exp(_log_softmax(logits))
    np.testing.assert_allclose(z.grad.numpy(), (softmax - one_hot) / (N * T), rtol=1e-9, atol=1e-15)


def test_labels_of_the_wrong_shape_or_range_are_refused():
    logits, labels, _ = _data()
    loss = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
    with pytest.raises(ValueError, match=r"expected integer labels of shape \(6, 5\)"):
        loss(labels[:, :3], nn.tensor(logits))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\)"):
        loss(labels + 1, nn.tensor(logits))


def _sequence_model(loss, jit_compile="auto"):
    nn.utils.set_random_seed(4)
    model = nn.Sequential([nn.Input((T, 3)), nn.layers.Dense(8, activation="relu"),
                           nn.layers.Dense(C, activation="softmax")])
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"], jit_compile=jit_compile)
    return model


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_a_sequence_model_trains_the_same_compiled_and_eager(loss):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, T, 3)).astype(np.float32)
    labels = rng.integers(0, C, (50, T))
    y = labels if loss.startswith("sparse") else np.eye(C, dtype=np.float32)[labels]
    runs = []
    for jit_compile in ("auto", False):
        model = _sequence_model(loss, jit_compile)
        nn.utils.set_random_seed(6)
        history = model.fit(x, y, epochs=4, batch_size=16, validation_split=0.2, verbose=0).history
        runs.append((history, [w.copy() for w in model.get_weights()], model))
    (compiled, compiled_weights, model), (eager, eager_weights, _) = runs
    assert compiled == eager and all(np.array_equal(a, b) for a, b in zip(compiled_weights, eager_weights))
    assert compiled["loss"][-1] < compiled["loss"][0]
    assert model.jit_report()["captured"]["train"] >= 1
    hits = model.predict(x, verbose=0).argmax(-1) == labels
    assert model.evaluate(x, y, verbose=0)[1] == pytest.approx(hits.mean())       # every position counts


def test_class_weight_is_refused_for_targets_per_position():
    rng = np.random.default_rng(7)
    x, labels = rng.standard_normal((8, T, 3)).astype(np.float32), rng.integers(0, C, (8, T))
    model = _sequence_model("sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="class_weight needs one class per sample"):
        model.fit(x, labels, class_weight={0: 2.0}, verbose=0)
    with pytest.raises(ValueError, match="class_weight needs one class per sample"):
        model.train_on_batch(x, labels, class_weight={0: 2.0})
