"""Attention and AdditiveAttention (sequence_attention.py): Keras 3.15's outputs, scores and configs, Keras's saved
models (masks from Embedding, a recorded use_causal_mask) trained on as Keras trains them, the formulas on every
backend, finite differences, the compiled step, dropout, and bad input refused by name."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from keras_helpers import assert_files_round_trip, compiled_and_eager_runs

import nnengine as nn
from nnengine import keras

DATA = Path(__file__).parent / "data"
RECORD = np.load(DATA / "keras3_seq_attention.npz")
layers = keras.layers
CASES = sorted({key[:-7] for key in RECORD.files if key.endswith("_config")})


def recorded_layer(case):
    """The case's layer from Keras's config with Keras's weights, its inputs and its call's options."""
    config = json.loads(str(RECORD[f"{case}_config"]))
    cls = layers.AdditiveAttention if case.startswith("additive") else layers.Attention
    layer = cls.from_config(config)
    inputs = [RECORD[f"{case}_in{i}"] for i in range(3) if f"{case}_in{i}" in RECORD.files]
    layer.build([x.shape for x in inputs])
    layer.set_weights([RECORD[f"{case}_w{i}"] for i in range(len(layer.weights))])
    options = {"use_causal_mask": "causal" in case}
    if f"{case}_query_mask" in RECORD.files:
        options["mask"] = [RECORD[f"{case}_query_mask"], RECORD[f"{case}_value_mask"]]
    return layer, config, inputs, options


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("case", CASES)
def test_each_case_gives_keras_output_scores_and_config(case, device):
    assert len(CASES) == 9
    layer, config, inputs, options = recorded_layer(case)
    layer.to(device)
    if "mask" in options:
        options["mask"] = [nn.Tensor(mask, device=device) for mask in options["mask"]]
    out, scores = layer([nn.Tensor(x, device=device) for x in inputs], return_attention_scores=True, **options)
    np.testing.assert_allclose(out.numpy(), RECORD[f"{case}_out"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores.numpy(), RECORD[f"{case}_scores"], rtol=1e-5, atol=1e-6)
    mine = {key: value for key, value in layer.get_config().items() if key not in ("name", "dtype")}
    assert mine == {key: value for key, value in config.items() if key not in ("name", "dtype")}


def reference(query, value, key, kind, scale, weight, value_mask=None, query_mask=None, causal=False,
              dtype="float64"):
    """The module's formulas in float64 numpy: (output, weights); a forbidden pair's score less 1e9 computed in
    ``dtype``, as the layer computes it (in float32 that rounds the score away: a query with no allowed pair
    attends to all equally)."""
    q, v, k = (np.asarray(a, np.float64) for a in (query, value, key))
    if kind == "dot":
        scores = scale * q @ k.transpose(0, 2, 1)
    elif kind == "concat":
        scores = weight * np.tanh(scale * (q[:, :, None] + k[:, None])).sum(-1)
    else:
        scores = (scale * np.tanh(q[:, :, None] + k[:, None])).sum(-1)
    allowed = np.ones(scores.shape, bool)
    if value_mask is not None:
        allowed &= value_mask[:, None, :]
    if causal:
        allowed &= np.tril(np.ones(scores.shape[1:], bool))[None]
    penalized = (scores.astype(dtype) - np.asarray(1e9, dtype)).astype(np.float64)
    scores = np.where(allowed, scores, penalized)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = weights @ v
    if query_mask is not None:
        out = np.where(query_mask[..., None], out, 0)
    return out, weights


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(["dot", "concat", "additive"]), steps=st.integers(1, 5), sources=st.integers(1, 5),
       with_key=st.booleans(), masked=st.booleans(), causal=st.booleans(), seed=st.integers(0, 2 ** 16),
       dtype=st.sampled_from(["float32", "float64"]))
def test_both_layers_are_their_formulas_on_both_backends(kind, steps, sources, with_key, masked, causal, seed,
                                                         dtype):
    rng = np.random.default_rng(seed)
    sources = steps if causal else sources
    query = rng.standard_normal((2, steps, 3)).astype(dtype)
    key = rng.standard_normal((2, sources, 3)).astype(dtype)
    value = rng.standard_normal((2, sources, 4)).astype(dtype) if with_key else key
    value_mask = rng.random((2, sources)) < 0.7 if masked else None
    query_mask = rng.random((2, steps)) < 0.7 if masked else None
    for device in ("numpy", "cpu"):
        layer = layers.AdditiveAttention(dtype=dtype) if kind == "additive" else \
            layers.Attention(use_scale=True, score_mode=kind, dtype=dtype)
        inputs = [query, value, key] if with_key else [query, value]
        layer.build([x.shape for x in inputs])
        weights = [rng.uniform(0.5, 1.5, w.shape).astype(dtype) for w in layer.weights]
        layer.set_weights(weights)
        layer.to(device)
        scale = weights[0]
        expected_out, expected_weights = reference(query, value, key, kind, scale, weights[-1], value_mask,
                                                   query_mask, causal, dtype)
        mask = [None if m is None else nn.Tensor(m, device=device) for m in (query_mask, value_mask)]
        out, got_weights = layer([nn.Tensor(x, device=device) for x in inputs], mask=mask if masked else None,
                                 return_attention_scores=True, use_causal_mask=causal)
        tolerance = dict(rtol=2e-4, atol=2e-5) if dtype == "float32" else dict(rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(out.numpy(), expected_out, **tolerance)
        np.testing.assert_allclose(got_weights.numpy(), expected_weights, **tolerance)
        assert out.dtype == np.dtype(dtype)


@pytest.mark.parametrize("make", [lambda: layers.Attention(use_scale=True, dtype="float64"),
                                  lambda: layers.Attention(use_scale=True, score_mode="concat", dtype="float64"),
                                  lambda: layers.AdditiveAttention(dtype="float64")])
def test_gradients_by_finite_differences(make):
    """d/dquery, d/dvalue, d/dkey and d/dweights (through a value mask and the causal mask), in float64."""
    rng = np.random.default_rng(5)
    layer = make()
    shapes = [(2, 3, 4), (2, 3, 2), (2, 3, 4)]
    layer.build(shapes)
    names = [name for name in ("scale", "concat_score_weight") if getattr(layer, name) is not None]
    mask = [None, nn.Tensor(np.array([[1, 1, 0], [1, 0, 1]], bool))]

    def output(query, value, key, *weights):
        kept = [getattr(layer, name) for name in names]
        for name, weight in zip(names, weights):
            setattr(layer, name, weight)
        try:
            return layer([query, value, key], mask=mask, use_causal_mask=True)
        finally:
            for name, weight in zip(names, kept):
                setattr(layer, name, weight)
    weights = [rng.uniform(0.5, 1.5, getattr(layer, name).shape) for name in names]
    assert nn.gradcheck(output, *(rng.standard_normal(shape) for shape in shapes), *weights)


@pytest.mark.parametrize("name", ["text", "causal"])
def test_keras_models_load_predict_evaluate_and_train_as_keras(name, tmp_path):
    model = keras.models.load_model(DATA / f"keras3_seq_attention_{name}.keras")
    x = [RECORD[key] for key in sorted(k for k in RECORD.files if k.startswith(f"{name}_x"))]
    x = x if len(x) > 1 else x[0]
    y = RECORD[f"{name}_y"]
    np.testing.assert_allclose(model.predict(x, verbose=0), RECORD[f"{name}_predictions"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), RECORD[f"{name}_evaluate"], rtol=1e-5)
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for index, weight in enumerate(model.get_weights()):
        np.testing.assert_allclose(weight, RECORD[f"{name}_trained_{index}"], rtol=2e-5, atol=2e-6)
    if name == "causal":
        node = model.get_config()["layers"][2]["inbound_nodes"][0]
        assert node["kwargs"] == {"use_causal_mask": True}
    model.save(tmp_path / "again.keras")
    again = keras.models.load_model(tmp_path / "again.keras")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    if name == "causal":
        assert_files_round_trip(model, x, tmp_path, (16, 6, 4))


def attention_model(dropout=0.0):
    """A causal self-attention classifier through both layers (with attention dropout when asked)."""
    nn.utils.set_random_seed(9)
    inputs = keras.Input((5, 4))
    hidden = layers.Dense(6, activation="tanh")(inputs)
    dot = layers.Attention(use_scale=True, dropout=dropout, seed=3)([hidden, hidden], use_causal_mask=True)
    additive = layers.AdditiveAttention(dropout=dropout)([hidden, dot])
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling1D()(additive)))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_a_model_trains_compiled_bitwise_as_eagerly(dropout):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((20, 5, 4)).astype("float32"), rng.integers(0, 3, 20)
    report = compiled_and_eager_runs(lambda: attention_model(dropout), x, y, batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1


def test_dropout_drops_attention_weights_in_training_only():
    layer = layers.Attention(dropout=0.5, seed=1)
    x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype("float32")
    _, inference = layer([x, x], return_attention_scores=True)
    np.testing.assert_allclose(inference.numpy().sum(-1), 1, rtol=1e-6)
    _, training = layer([x, x], return_attention_scores=True, training=True)
    kept = training.numpy() != 0
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_allclose(training.numpy()[kept], 2 * inference.numpy()[kept], rtol=1e-6)


def test_the_query_mask_rides_on_the_output_and_zeroes_padded_steps():
    tokens = np.array([[3, 4, 0, 0], [5, 0, 0, 0]])
    embedded = layers.Embedding(8, 3, mask_zero=True)(tokens)
    out = layers.Attention()([embedded, embedded])
    np.testing.assert_array_equal(out._keras_mask.numpy(), tokens != 0)
    assert not out.numpy()[tokens == 0].any()


@pytest.mark.parametrize("call, error, message", [
    (lambda layer: layer(np.ones((2, 3, 4))), TypeError, r"must be called on a list \[query, value\]"),
    (lambda layer: layer([np.ones((2, 3, 4))]), ValueError, r"\[query, value\] or \[query, value, key\]"),
    (lambda layer: layer([np.ones((2, 3, 4)), np.ones((2, 5, 3))]), ValueError, r"same feature size"),
    (lambda layer: layer([np.ones((2, 3, 4)), np.ones((2, 5, 2)), np.ones((2, 4, 4))]), ValueError,
     r"same number of steps"),
    (lambda layer: layer([np.ones((2, 4)), np.ones((2, 4))]), ValueError, r"must be a sequence"),
    (lambda layer: layer([np.ones((2, 3, 4)), np.ones((2, 5, 4))], mask=[None, np.ones((2, 4))]), ValueError,
     r"value mask must have shape \(2, 5\)"),
    (lambda layer: layer([np.ones((2, 3, 4)), np.ones((2, 5, 4))], mask=np.ones((2, 5))), ValueError,
     r"mask must be a list"),
    (lambda layer: layer([np.ones((2, 3, 4)), np.ones((2, 5, 4))], use_causal_mask="yes"), TypeError,
     r"use_causal_mask"),
])
def test_bad_calls_are_refused_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call(layers.Attention(name="att"))


def test_a_built_layer_refuses_inputs_of_another_feature_size():
    layer = layers.AdditiveAttention(name="add_att")
    layer([np.ones((2, 3, 4), np.float32), np.ones((2, 5, 4), np.float32)])
    with pytest.raises(ValueError, match=r"Input 'query' of layer 'add_att' is incompatible"):
        layer([np.ones((2, 3, 6), np.float32), np.ones((2, 5, 6), np.float32)])


@pytest.mark.parametrize("make, message", [
    (lambda: layers.Attention(score_mode="general"), r"score_mode must be one of 'dot', 'concat'"),
    (lambda: layers.Attention(dropout=1.0), r"dropout"),
    (lambda: layers.Attention(use_scale="no"), r"use_scale"),
    (lambda: layers.AdditiveAttention(seed=-1), r"seed"),
])
def test_bad_arguments_are_refused_by_name(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_a_keras_file_with_a_bad_call_option_is_refused(tmp_path):
    model = keras.models.load_model(DATA / "keras3_seq_attention_causal.keras")
    config = model.get_config()
    config["layers"][2]["inbound_nodes"][0]["kwargs"]["use_causal_mask"] = "sometimes"
    with pytest.raises(ValueError, match=r"use_causal_mask must be true or false"):
        keras.Model.from_config(config)
