"""MultiHeadAttention and custom layers made of layers (nnengine/attention_layers.py, nnengine/composite.py).

Keras 3.15 trained four models (tests/data/keras3_attention.npz, made by make_keras_files.py attention): a
cross-attention with a key, a causal decoder over padded tokens (Keras's masks), a gated attention with an
attention mask, a sliding window and another output size, and the Transformer block of Keras's text
classification example, a custom layer made of layers. nnengine predicts, evaluates and trains them as Keras did,
reads Keras's files of them, and its derivatives match finite differences in float64 on every CPU device."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnengine as nn
from keras_helpers import (assert_files_round_trip, assert_one_epoch_as_recorded, compiled_and_eager_runs,
                           make_keras_files)

keras = nn.keras
layers = keras.layers
DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"
FILES = make_keras_files()
RECORD = np.load(DATA / "keras3_attention.npz")
NAMES = ["cross", "decoder", "gated", "transformer"]


def _inputs(names):
    arrays = [RECORD[name] for name in names]
    return arrays if len(arrays) > 1 else arrays[0]


# ---------------------------------------------------------------------------------------------
# As Keras 3.15 computes and trains them
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_attention_models_predict_evaluate_and_train_as_keras_did(name):
    model, names, _ = FILES.attention_models(keras)[name]
    weight_names = [f"{layer.name}/{weight}" for layer in model.layers for weight in layer.weight_names]
    # a key's bias adds q . b_k to every score of a query alike, which the softmax cancels: its gradient is 0 up to
    # rounding, which Adam's normalised step turns into moves of about 1e-4, Keras's as much as ours
    assert_one_epoch_as_recorded(model, _inputs(names), RECORD, name,
                                 lambda i: 3e-4 if weight_names[i].endswith("key/bias") else 3e-5)


def test_keras_cross_attention_file_loads_and_predicts_as_keras_did():
    model = keras.models.load_model(DATA / "keras3_attention_cross.keras")
    attention = model.get_layer("cross")
    assert (attention.num_heads, attention.key_dim, attention.input_shape["key"]) == (2, 3, (None, 6, 7))
    np.testing.assert_allclose(model.get_weights()[0], RECORD["cross_after_0"])
    x = _inputs(["query", "value", "key"])
    expected, _, _ = FILES.attention_models(keras)["cross"]
    expected.set_weights(model.get_weights())
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected.predict(x, verbose=0))


def test_keras_weights_of_a_custom_layer_made_of_layers_load_into_their_groups():
    """Keras 3's .weights.h5 keeps a custom layer's parts under its attributes' names; each weight lands in its
    place (else the shapes or the predictions would differ)."""
    model, _, _ = FILES.attention_models(keras)["transformer"]
    model.load_weights(DATA / "keras3_transformer.weights.h5")
    for i, weight in enumerate(model.get_weights()):
        np.testing.assert_array_equal(weight, RECORD[f"transformer_after_{i}"])


# ---------------------------------------------------------------------------------------------
# The math: derivatives, devices, masks
# ---------------------------------------------------------------------------------------------
def _attention(device, dtype="float64", **options):
    nn.utils.set_random_seed(3)
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=2, dtype=dtype, **options)
    layer.to(device)
    return layer


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("options, call", [({}, {}), ({"use_gate": True, "output_shape": (2, 2)}, {}),
                                           ({}, {"use_causal_mask": True}), ({"sliding_window": 2}, {})],
                         ids=["plain", "gate-output-shape", "causal", "window"])
def test_the_gradient_of_attention_matches_finite_differences(device, options, call):
    rng = np.random.default_rng(4)
    layer = _attention(device, **options)
    query, value, key = (nn.tensor(rng.standard_normal(shape), dtype="float64", device=device, requires_grad=True)
                         for shape in ((2, 4, 3), (2, 5, 4), (2, 5, 2)))
    allowed = rng.random((2, 4, 5)) > 0.3
    allowed[:, :, 0] = True
    layer(query, value, key)                                            # builds it
    weights = nn.tensor(rng.standard_normal(layer.compute_output_shape({"query": (2, 4, 3)})), dtype="float64",
                        device=device)
    mask = nn.tensor(allowed, device=device)
    result = nn.gradcheck(lambda q, v, k: (layer(q, v, k, attention_mask=mask, **call) * weights).sum(),
                          query, value, key)
    assert result.passed, result
    _check_weight_gradients(layer, lambda: (layer(query, value, key, attention_mask=mask, **call) * weights).sum())


def _check_weight_gradients(layer, loss, eps=1e-6):
    """Central differences of ``loss()`` for a few entries of every weight against backward's gradient."""
    for weight in layer.weights:
        weight.grad = None
    loss().backward()
    for weight in layer.weights:
        values = weight.numpy()
        for index in list(np.ndindex(*values.shape))[:3]:
            changed = values.copy()
            changed[index] += eps
            weight.assign_(changed)
            up = float(loss().numpy())
            changed[index] -= 2 * eps
            weight.assign_(changed)
            down = float(loss().numpy())
            weight.assign_(values)
            np.testing.assert_allclose(weight.grad.numpy()[index], (up - down) / (2 * eps), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("dtype, tolerance", [("float32", 2e-5), ("float64", 1e-12)])
def test_the_cpu_device_computes_attention_as_the_numpy_reference(dtype, tolerance):
    rng = np.random.default_rng(5)
    query, value = rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 6, 4))
    allowed = rng.random((3, 4, 6)) > 0.5
    results = {}
    for device in ("numpy", "cpu"):
        layer = _attention(device, dtype=dtype, use_gate=True)
        q, v = (nn.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in (query, value))
        out = layer(q, v, attention_mask=allowed, use_causal_mask=True)
        (out * out).sum().backward()
        results[device] = [out.numpy(), q.grad.numpy(), v.grad.numpy(), *[w.grad.numpy() for w in layer.weights]]
    for ours, reference in zip(results["cpu"], results["numpy"]):
        np.testing.assert_allclose(ours, reference, rtol=tolerance, atol=tolerance)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2 ** 31 - 1))
def test_padded_value_steps_and_future_steps_do_not_change_the_output(steps, sources, seed):
    """Changing the value and the key at positions a query may not see (Keras's value mask, or s > t under the
    causal mask) leaves that query's output as it was."""
    rng = np.random.default_rng(seed)
    layer = _attention("numpy", dtype="float64")
    query = rng.standard_normal((2, steps, 3))
    value = rng.standard_normal((2, sources, 4))
    kept = rng.random((2, sources)) > 0.4
    kept[:, 0] = True
    changed = np.where(kept[..., None], value, rng.standard_normal(value.shape) * 10)
    masked = [layer(query, v, value_mask=kept).numpy() for v in (value, changed)]
    np.testing.assert_allclose(masked[0], masked[1], atol=1e-12)
    if steps <= sources:
        future = value.copy()
        future[:, steps:] = rng.standard_normal(future[:, steps:].shape)
        causal = [layer(query, v, use_causal_mask=True).numpy() for v in (value, future)]
        np.testing.assert_allclose(causal[0], causal[1], atol=1e-12)


def test_attention_weights_sum_to_one_over_the_allowed_pairs_and_a_padded_query_keeps_its_mask():
    layer = _attention("numpy", dtype="float64", dropout=0.5)
    tokens = np.array([[3, 4, 5, 0], [2, 0, 0, 0]])
    embedded = layers.Embedding(6, 3, mask_zero=True, dtype="float64").to("numpy")(tokens)
    out, weights = layer(embedded, embedded, return_attention_scores=True)
    weights = weights.numpy()
    assert weights.shape == (2, 2, 4, 4)
    kept = tokens != 0
    allowed = kept[:, None, :, None] & kept[:, None, None, :]
    np.testing.assert_array_equal(weights[~np.broadcast_to(allowed, weights.shape)], 0)
    np.testing.assert_allclose(weights.sum(-1)[np.broadcast_to(kept[:, None, :], (2, 2, 4))], 1)
    np.testing.assert_array_equal(out._keras_mask.numpy(), kept)


def test_a_query_with_no_allowed_pair_attends_as_keras_does():
    """Keras 3.15's fused path attends to every position equally; its explicit path (dropout, or the weights
    asked for) gives weights 0."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 3, 3))
    allowed = np.ones((1, 3, 3), bool)
    allowed[0, 1] = False
    layer = _attention("numpy")
    _, explicit = layer(x, x, attention_mask=allowed, return_attention_scores=True)
    np.testing.assert_array_equal(explicit.numpy()[0, :, 1], 0)
    fused = layer(x, x, attention_mask=allowed).numpy()
    silent = x.copy()
    silent[0, 1] = 0            # a query of zeros (the biases start at 0) scores every position 0: equal weights
    np.testing.assert_allclose(fused[0, 1], layer(silent, x).numpy()[0, 1], atol=1e-12)
    assert not np.allclose(fused[0, 1], layer(x, x).numpy()[0, 1])


def test_dropout_of_the_attention_weights_runs_in_training_only_with_masks_fed_to_the_compiled_step():
    layer = _attention("numpy", dropout=0.5, seed=1)
    x = np.random.default_rng(7).standard_normal((2, 4, 3))
    inference = [layer(x, x).numpy() for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    assert not np.allclose(layer(x, x, training=True).numpy(), inference[0])
    assert layer.draws_dropout_masks(True) and not layer.draws_dropout_masks(False)
    assert layer.capture_blocker(True) is None


def test_a_compiled_step_with_attention_dropout_is_the_eager_one():
    _, names, _ = FILES.attention_models(keras)["cross"]

    def make_model():
        nn.utils.set_random_seed(1)
        query, value, key = keras.Input((5, 8)), keras.Input((6, 4)), keras.Input((6, 7))
        attended = layers.MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.3)(query, value, key)
        return keras.Model([query, value, key], layers.Dense(3, activation="softmax")(
            layers.GlobalAveragePooling1D()(layers.Dropout(0.2)(attended))))
    report = compiled_and_eager_runs(make_model, _inputs(names), RECORD["cross_y"], batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1


# ---------------------------------------------------------------------------------------------
# Models, files, the compiled step
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cross", "decoder", "gated"])
def test_the_compiled_step_of_an_attention_model_is_the_eager_one(name):
    _, names, _ = FILES.attention_models(keras)[name]

    def make_model():
        nn.utils.set_random_seed(1)
        return FILES.attention_models(keras)[name][0]
    report = compiled_and_eager_runs(make_model, _inputs(names), RECORD[f"{name}_y"], batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1


def test_an_embedding_inside_a_custom_layer_is_found_by_the_first_step_and_then_compiled():
    """The Transformer's token Embedding is inside a custom layer, where the trainer cannot see it: its first step
    reads the indices back to check them, and tells the trainer, which checks that input on the host from then
    on; the later steps are compiled, bitwise as eager ones, and bad indices are still refused by name."""
    def make_model():
        nn.utils.set_random_seed(2)
        return FILES.attention_models(keras)["transformer"][0]
    report = compiled_and_eager_runs(make_model, RECORD["tokens"], RECORD["transformer_y"], epochs=2, batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1
    model = make_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(RECORD["tokens"], RECORD["transformer_y"], epochs=1, batch_size=8, verbose=0)
    assert [type(layer).__name__ for _, layer in model._learnt_readers] == ["Embedding"]
    bad = RECORD["tokens"].copy()
    bad[5, 3] = 40
    for run in (lambda: model.fit(bad, RECORD["transformer_y"], batch_size=8, verbose=0),
                lambda: model.predict(bad, verbose=0)):
        with pytest.raises(ValueError, match=r"Embedding '\w+': indices must be in \[0, 12\), got values in \[0, 40\]"):
            run()


@pytest.mark.parametrize("name", ["cross", "decoder", "gated"])
def test_attention_models_round_trip_through_every_file_format(name, tmp_path):
    model, names, _ = FILES.attention_models(keras)[name]
    x, y = _inputs(names), RECORD[f"{name}_y"]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    shapes = [(None, *RECORD[n].shape[1:]) for n in names]
    assert_files_round_trip(model, x, tmp_path, shapes if len(shapes) > 1 else shapes[0])
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert restored.get_config() == model.get_config()


def test_a_functional_config_records_the_call_arguments_as_keras_does():
    query, value = keras.Input((5, 8)), keras.Input((6, 4))
    allowed = keras.Input((5, 6))
    out = layers.MultiHeadAttention(2, 3, name="mha")(query, value, attention_mask=allowed, use_causal_mask=True)
    model = keras.Model([query, value, allowed], out)
    node = [e for e in model.get_config()["layers"] if e["name"] == "mha"][0]["inbound_nodes"][0]
    names = [tensor.name for tensor in (query, value, allowed)]         # keras.Input gives the InputLayer
    assert [arg["config"]["keras_history"][0] for arg in node["args"]] == names[:2]
    assert node["kwargs"]["attention_mask"]["config"]["keras_history"][0] == names[2]
    assert node["kwargs"]["use_causal_mask"] is True
    rebuilt = keras.Model.from_config(model.get_config())
    rebuilt.set_weights(model.get_weights())
    rng = np.random.default_rng(8)
    x = [rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 6, 4)), np.ones((2, 5, 6))]
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0))


# ---------------------------------------------------------------------------------------------
# Custom layers made of layers
# ---------------------------------------------------------------------------------------------
class Block(layers.Layer):
    """A custom layer made of layers: an attribute, a model, a list and a frozen part."""

    def __init__(self, dim=4, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.att = layers.MultiHeadAttention(num_heads=2, key_dim=dim)
        self.ffn = keras.Sequential([layers.Dense(dim, activation="relu"), layers.Dense(dim)])
        self.norms = [layers.LayerNormalization(), layers.LayerNormalization()]
        self.frozen = layers.Dense(dim, kernel_regularizer="l2")
        self.frozen.trainable = False
        self.scale = self.add_weight((dim,), "ones", name="scale")

    def call(self, x, training=False):
        x = self.norms[0](x + self.att(x, x))
        return self.norms[1](x + self.ffn(x)) * self.scale + self.frozen(x)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


def _block_model():
    nn.utils.set_random_seed(2)
    inputs = keras.Input((5, 4))
    return keras.Model(inputs, layers.Dense(1)(layers.GlobalAveragePooling1D()(Block(name="block")(inputs))))


def test_a_custom_layer_holds_its_parts_weights_in_keras_order():
    model = _block_model()
    block = model.get_layer("block")
    names = block.weight_names
    assert names[0] == "scale" and names[1].endswith("query/kernel")
    assert len(block.weights) == 1 + 8 + 4 + 4 + 2        # own, attention, the Sequential, two norms, frozen
    frozen = {id(w) for w in block.frozen.weights}
    assert frozen.isdisjoint(id(w) for w in block.trainable_weights)
    assert len(block.non_trainable_weights) == 2
    assert block.regularization_losses() == []              # the frozen part's penalty is not trained
    assert model.count_params() == block.count_params() + 5
    block.set_weights([w * 0 for w in block.get_weights()])
    assert all(not w.numpy().any() for w in block.weights)


def test_a_custom_layer_made_of_layers_trains_and_round_trips_through_every_file(tmp_path):
    model = _block_model()
    x = np.random.default_rng(9).standard_normal((16, 5, 4)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None]
    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights())]
    block = model.get_layer("block")
    trainable = {id(w) for w in block.trainable_weights}
    assert changed[:len(block.weights)] == [id(w) in trainable for w in block.weights]
    for suffix in (".keras", ".h5"):
        model.save(tmp_path / f"model{suffix}")
        restored = keras.models.load_model(tmp_path / f"model{suffix}", custom_objects={"Block": Block})
        np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    model.save_weights(tmp_path / "model.weights.h5")
    clone = _block_model()
    clone.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_custom_layer_draws_masks_when_its_parts_do():
    class Noisy(layers.Layer):
        def __init__(self):
            super().__init__()
            self.drop = layers.Dropout(0.5)

        def call(self, x, training=False):
            return self.drop(x, training=training)
    assert Noisy().draws_dropout_masks(True) and not Noisy().draws_dropout_masks(False)
    assert Noisy().capture_blocker(True) is None


# ---------------------------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arguments, error, match", [
    ({"num_heads": 0, "key_dim": 2}, ValueError, "num_heads"),
    ({"num_heads": 2, "key_dim": 2.5}, TypeError, "key_dim"),
    ({"num_heads": 2, "key_dim": 2, "attention_axes": (1, 2)}, ValueError, "attention_axes"),
    ({"num_heads": 2, "key_dim": 2, "dropout": 1.0}, ValueError, "dropout"),
    ({"num_heads": 2, "key_dim": 2, "sliding_window": 0}, ValueError, "sliding_window"),
    ({"num_heads": 2, "key_dim": 2, "dropout": 0.1, "flash_attention": True}, ValueError, "flash_attention")])
def test_bad_constructor_arguments_are_refused_naming_them(arguments, error, match):
    with pytest.raises(error, match=match):
        layers.MultiHeadAttention(**arguments)


def test_bad_calls_are_refused_naming_the_layer_and_the_shapes():
    layer = layers.MultiHeadAttention(2, 3, name="mha")
    x = np.zeros((2, 4, 3), "float32")
    with pytest.raises(TypeError, match="'mha' takes a query and a value"):
        layer(x)
    layer(x, x)
    with pytest.raises(ValueError, match=r"'query' of layer 'mha'.*\(batch, steps, 3\), got \(2, 4, 5\)"):
        layer(np.zeros((2, 4, 5), "float32"), x)
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(2, 4, 4\), got \(2, 4\)"):
        layer(x, x, attention_mask=np.ones((2, 4)))
    with pytest.raises(ValueError, match="must be a sequence"):
        layers.MultiHeadAttention(2, 3)(np.zeros((2, 3), "float32"), np.zeros((2, 3), "float32"))
    with pytest.raises(TypeError, match="takes a query and a value"):
        keras.Sequential([keras.Input((4, 3)), layers.MultiHeadAttention(2, 3)]).predict(x, verbose=0)


def test_a_functional_model_outputs_the_attention_scores_as_a_second_output(tmp_path):
    """Keras's ``mha(q, v, return_attention_scores=True)`` in a functional model: one node with two outputs, the
    scores (batch, heads, T, S) those the layer gives on data; the config and the files keep the call."""
    query, value = keras.Input((4, 3)), keras.Input((5, 2))
    attention = layers.MultiHeadAttention(2, 3, name="mha")
    out, scores = attention(query, value, return_attention_scores=True)
    assert out.shape == (None, 4, 3) and scores.shape == (None, 2, 4, 5) and scores.index == 1
    model = keras.Model([query, value], [layers.Identity(name="out")(out), layers.Identity(name="scores")(scores)])
    rng = np.random.default_rng(2)
    x = [rng.standard_normal((6, 4, 3)).astype("float32"), rng.standard_normal((6, 5, 2)).astype("float32")]
    got_out, got_scores = model.predict(x, verbose=0)
    direct_out, direct_scores = attention(*x, return_attention_scores=True)
    np.testing.assert_allclose(got_scores, direct_scores.numpy(), rtol=1e-6)
    np.testing.assert_allclose(got_scores.sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(got_out, direct_out.numpy(), rtol=1e-6)
    call = next(e for e in model.get_config()["layers"] if e["name"] == "mha")["inbound_nodes"][0]
    assert call["kwargs"]["return_attention_scores"] is True
    model.save(tmp_path / "scores.keras")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "scores.keras").predict(x, verbose=0)[1],
                                  got_scores)


def test_the_snippets_of_docs_attention_md_build_models_that_train():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "docs" / "attention.md").read_text(encoding="utf-8")
    namespace = {}
    for position, code in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
        exec(compile(code, f"docs/attention.md snippet {position}", "exec"), namespace)  # noqa: S102 - our docs
    rng = np.random.default_rng(10)
    for model, size, steps in ((namespace["model"], 5000, 40), (namespace["classifier"], 200, 20)):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        history = model.fit(rng.integers(0, size, (16, steps)), rng.integers(0, 2, 16), epochs=2, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
    assert namespace["classifier"].count_params() == 17762          # as Keras 3.15 counts this model
