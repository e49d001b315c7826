"""Keras's masks of padded steps (nnengine/masks.py): Embedding(mask_zero=True) and Masking make them, layers pass
them on or drop them as Keras 3 does, SimpleRNN, LSTM and GRU keep their state through a padded step (the
recurrent primitives' ``step_mask``, every backend and derivative checked), GlobalAveragePooling1D averages the
kept steps, and a masked output weights its loss and metrics. Models Keras 3.15 trained on padded sequences
(tests/data/keras3_masked.npz, made by make_keras_files.py masked) predict, evaluate and train as Keras did."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnengine as nn
from nnengine import functional as F
from keras_helpers import assert_one_epoch_as_recorded, compiled_and_eager_runs, make_keras_files

keras = nn.keras
layers = keras.layers
DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"
FILES = make_keras_files()

CELLS = [("simple_rnn", 1, {}), ("lstm", 4, {}), ("gru", 3, {}), ("gru", 3, {"reset_after": False})]
CELL_IDS = ["simple_rnn", "lstm", "gru", "gru-reset-before"]


def _operands(rng, name, gates, options, steps, samples, units, device, dtype="float64"):
    def t(shape, scale=1.0):
        return nn.tensor(rng.standard_normal(shape) * scale, dtype=dtype, device=device, requires_grad=True)
    operands = [t((steps, samples, gates * units)), t((units, gates * units), 0.6)]
    if name == "gru" and options.get("reset_after", True):
        operands.append(t((2, gates * units)))
    return operands


def _skipping(name, options, operands, step_mask, reverse):
    """The last state of each sample computed the long way: the cell run on that sample's kept steps only."""
    p = operands[0].numpy()
    lasts = []
    for sample in range(p.shape[1]):
        order = range(p.shape[0] - 1, -1, -1) if reverse else range(p.shape[0])
        kept = [t for t in order if step_mask[t, sample]]
        if not kept:
            lasts.append(np.zeros(operands[1].shape[0]))
            continue
        alone = [nn.tensor(p[kept][:, sample:sample + 1], dtype="float64"), *[nn.tensor(o.numpy()) for o in
                                                                              operands[1:]]]
        lasts.append(getattr(F, name)(*alone, **options, return_sequences=False).numpy()[0])
    return np.stack(lasts)


# ---------------------------------------------------------------------------------------------
# The recurrent primitives with a step mask
# ---------------------------------------------------------------------------------------------
@settings(max_examples=12, deadline=None)
@given(steps=st.integers(1, 5), samples=st.integers(1, 4), units=st.integers(1, 3), reverse=st.booleans(),
       seed=st.integers(0, 2 ** 16), cell=st.sampled_from(range(len(CELLS))))
def test_a_padded_step_leaves_the_state_as_if_it_were_not_there(steps, samples, units, reverse, seed, cell):
    name, gates, options = CELLS[cell]
    rng = np.random.default_rng(seed)
    operands = _operands(rng, name, gates, options, steps, samples, units, "numpy")
    step_mask = rng.random((steps, samples)) < 0.6
    states = getattr(F, name)(*operands, **options, reverse=reverse, step_mask=step_mask).numpy()
    np.testing.assert_allclose(states[-1], _skipping(name, options, operands, step_mask, reverse), atol=1e-12)
    for k in range(steps):                      # a padded step's state is the one before it (zeros before step 0)
        t = steps - 1 - k if reverse else k
        before = states[k - 1] if k else np.zeros_like(states[0])
        np.testing.assert_array_equal(states[k][~step_mask[t]], before[~step_mask[t]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name, gates, options", CELLS, ids=CELL_IDS)
def test_the_numba_kernels_with_a_step_mask_match_the_reference(name, gates, options, reverse, dtype):
    rng = np.random.default_rng(4)
    step_mask = rng.random((5, 3)) < 0.5
    results = {}
    for device in ("numpy", "cpu"):
        operands = _operands(np.random.default_rng(5), name, gates, options, 5, 3, 4, device, dtype)
        for sequences in (True, False):
            out = getattr(F, name)(*operands, **options, reverse=reverse, return_sequences=sequences,
                                   step_mask=step_mask)
            (out * out).sum().backward()
        results[device] = [out.numpy()] + [o.grad.numpy() for o in operands]
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    for ours, reference in zip(results["cpu"], results["numpy"]):
        np.testing.assert_allclose(ours, reference, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name, gates, options", CELLS, ids=CELL_IDS)
def test_backward_through_padded_steps_matches_finite_differences(name, gates, options, reverse, device):
    rng = np.random.default_rng(2)
    operands = _operands(rng, name, gates, options, 5, 3, 2, device)
    step_mask = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 0], [1, 1, 0], [0, 1, 1]], bool)
    for sequences in (True, False):
        shape = (5, 3, 2) if sequences else (3, 2)
        weights = nn.tensor(rng.standard_normal(shape), dtype="float64", device=device)
        result = nn.gradcheck(lambda *a: (getattr(F, name)(*a, **options, reverse=reverse, return_sequences=sequences,
                                                           step_mask=step_mask) * weights).sum(), *operands)
        assert result.passed, result


def test_a_step_mask_of_the_wrong_shape_is_refused_naming_the_shapes():
    operands = _operands(np.random.default_rng(0), "lstm", 4, {}, 5, 3, 2, "numpy")
    with pytest.raises(ValueError, match=r"step_mask must have shape \(5, 3\).*got \(3, 5\)"):
        F.lstm(*operands, step_mask=np.ones((3, 5), bool))


# ---------------------------------------------------------------------------------------------
# How layers make, pass on and drop masks
# ---------------------------------------------------------------------------------------------
def test_embedding_with_mask_zero_and_masking_make_keras_masks():
    tokens = np.array([[0, 3, 4], [5, 0, 0]])
    embedded = layers.Embedding(6, 2, mask_zero=True)(tokens)
    np.testing.assert_array_equal(embedded._keras_mask.numpy(), tokens != 0)
    assert layers.Embedding(6, 2)(tokens)._keras_mask is None
    features = np.array([[[0., 0.], [1., 0.], [2., 2.]]], np.float32)
    masked = layers.Masking(2.0)(features)
    np.testing.assert_array_equal(masked._keras_mask.numpy(), [[True, True, False]])
    np.testing.assert_array_equal(masked.numpy(), [[[0, 0], [1, 0], [0, 0]]])
    assert layers.Masking.from_config(layers.Masking(2.0).get_config()).mask_value == 2.0
    assert layers.Embedding.from_config(layers.Embedding(6, 2, mask_zero=True).get_config()).mask_zero


def test_layers_pass_masks_on_or_drop_them_as_keras_does():
    tokens = np.array([[0, 3, 4, 1], [5, 0, 0, 2]])
    expected = tokens != 0
    x = layers.Embedding(6, 3, mask_zero=True)(tokens)
    for layer in (layers.Dense(4), layers.Dropout(0.5), layers.LayerNormalization(), layers.ReLU(),
                  layers.Activation("tanh"), layers.TimeDistributed(layers.Dense(2)),
                  layers.LSTM(2, return_sequences=True), layers.Bidirectional(layers.GRU(2, return_sequences=True))):
        np.testing.assert_array_equal(layer(x)._keras_mask.numpy(), expected, err_msg=type(layer).__name__)
    for layer in (layers.LSTM(2), layers.GlobalAveragePooling1D(), layers.Bidirectional(layers.GRU(2))):
        assert layer(x)._keras_mask is None, type(layer).__name__
    with pytest.warns(UserWarning, match="does not support masking"):
        assert layers.Flatten()(x)._keras_mask is None


def test_merge_layers_combine_masks_as_keras_does():
    a = layers.Embedding(6, 2, mask_zero=True)(np.array([[0, 1, 2]]))
    b = layers.Embedding(6, 2, mask_zero=True)(np.array([[3, 0, 2]]))
    plain = nn.tensor(np.ones((1, 3, 2), np.float32))
    np.testing.assert_array_equal(layers.Add()([a, b])._keras_mask.numpy(), [[True, True, True]])
    assert layers.Add()([a, plain])._keras_mask is None                        # every input needs a mask
    np.testing.assert_array_equal(layers.Concatenate()([a, plain])._keras_mask.numpy(), [[True, True, True]])
    np.testing.assert_array_equal(layers.Concatenate(axis=1)([a, b])._keras_mask.numpy(),
                                  [[False, True, True, True, False, True]])
    assert layers.Dot(axes=2)([a, b])._keras_mask is None


def test_global_average_pooling_averages_the_kept_steps_only():
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    kept = np.array([[True, False, True], [False, False, False]])
    tensor = nn.tensor(x)
    tensor._keras_mask = nn.tensor(kept)
    pooled = layers.GlobalAveragePooling1D()(tensor).numpy()
    np.testing.assert_allclose(pooled[0], (x[0, 0] + x[0, 2]) / 2)
    np.testing.assert_array_equal(pooled[1], [0, 0])        # no kept step: zeros, where Keras divides 0 by 0


def test_a_recurrent_layer_outputs_zeros_for_padded_steps_with_zero_output_for_mask():
    tokens = np.array([[1, 0, 2, 0], [0, 0, 3, 4]])
    x = layers.Embedding(6, 3, mask_zero=True)(tokens)
    kept_state = layers.GRU(2, return_sequences=True)
    zeroed = layers.GRU(2, return_sequences=True, zero_output_for_mask=True)
    zeroed.build((None, 4, 3))
    kept_state.build((None, 4, 3))
    zeroed.set_weights(kept_state.get_weights())
    states, zeros = kept_state(x).numpy(), zeroed(x).numpy()
    np.testing.assert_array_equal(zeros[tokens != 0], states[tokens != 0])
    np.testing.assert_array_equal(zeros[tokens == 0], 0)
    np.testing.assert_array_equal(states[0, 1], states[0, 0])        # a padded step repeats the kept state
    assert layers.Bidirectional(layers.LSTM(2, return_sequences=True)).forward_layer.zero_output_for_mask


def test_batch_normalization_refuses_to_train_on_a_masked_input():
    model = keras.Sequential([keras.Input((4,)), layers.Embedding(5, 3, mask_zero=True),
                              layers.BatchNormalization(), layers.LSTM(2), layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    tokens = np.array([[0, 1, 2, 3], [4, 3, 0, 0]])
    model.predict(tokens, verbose=0)                                 # inference: the moving statistics
    with pytest.raises(ValueError, match="BatchNormalization .* masked input"):
        model.fit(tokens, np.array([0, 1]), verbose=0)


# ---------------------------------------------------------------------------------------------
# Training on padded sequences, as Keras 3.15 did
# ---------------------------------------------------------------------------------------------
RECORD = np.load(DATA / "keras3_masked.npz")


@pytest.mark.parametrize("name", ["classifier", "tagger", "backwards", "pooling"])
def test_masked_models_predict_evaluate_and_train_as_keras_did(name):
    model, uses_tokens, _ = FILES.masked_models(keras)[name]
    assert_one_epoch_as_recorded(model, RECORD["tokens"] if uses_tokens else RECORD["features"], RECORD, name)


def test_keras_masked_classifier_file_loads_with_its_mask_and_predicts_as_keras_did():
    model = keras.models.load_model(DATA / "keras3_masked_classifier.keras")
    assert model.layers[0].mask_zero
    model.set_weights([RECORD[f"classifier_after_{i}"] for i in range(len(model.get_weights()))])
    unmasked = keras.Sequential([keras.Input((7,)), layers.Embedding(12, 4), layers.LSTM(5),
                                 layers.Dense(3, activation="softmax")])
    unmasked.set_weights(model.get_weights())
    tokens = RECORD["tokens"]
    padded = (tokens == 0).any(axis=1)
    assert not np.allclose(model.predict(tokens, verbose=0)[padded], unmasked.predict(tokens, verbose=0)[padded])


@pytest.mark.parametrize("name", ["classifier", "tagger", "backwards", "pooling"])
def test_the_compiled_step_of_a_masked_model_is_the_eager_one(name):
    _, uses_tokens, _ = FILES.masked_models(keras)[name]
    x = RECORD["tokens"] if uses_tokens else RECORD["features"]

    def make_model():
        nn.utils.set_random_seed(1)
        return FILES.masked_models(keras)[name][0]
    report = compiled_and_eager_runs(make_model, x, RECORD[f"{name}_y"], batch_size=8)
    assert report["fallback_reason"] is None and report["captured"]["train"] >= 1


class _SubclassedTagger(keras.Model):
    def __init__(self):
        super().__init__()
        self.embed = layers.Embedding(6, 3, mask_zero=True)
        self.steps = layers.LSTM(3, return_sequences=True)
        self.classes = layers.Dense(2, activation="softmax")

    def call(self, x):
        return self.classes(self.steps(self.embed(x)))


TAGGERS = {
    "sequential": lambda: keras.Sequential([keras.Input((4,)), layers.Embedding(6, 3, mask_zero=True),
                                            layers.LSTM(3, return_sequences=True),
                                            layers.Dense(2, activation="softmax")]),
    "subclassed": _SubclassedTagger,
    "nested": lambda: keras.Sequential([keras.Input((4,)),
                                        keras.Sequential([layers.Embedding(6, 3, mask_zero=True),
                                                          layers.GRU(3, return_sequences=True)]),
                                        layers.Dense(2, activation="softmax")])}


@pytest.mark.parametrize("kind", list(TAGGERS))
def test_a_masked_output_weights_its_loss_and_metrics_by_the_mask(kind):
    """A tagger's loss and accuracy are the mean over the kept steps: padded steps change neither (the mask
    reaches the output through a Sequential, a subclassed model's call, or a nested model alike)."""
    nn.utils.set_random_seed(0)
    model = TAGGERS[kind]()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    tokens = np.array([[1, 2, 0, 0], [3, 0, 0, 0]])
    labels = np.array([[0, 1, 0, 0], [1, 0, 0, 0]])
    loss, accuracy = model.evaluate(tokens, labels, verbose=0)
    probabilities = model.predict(tokens, verbose=0)
    kept = tokens != 0
    picked = np.take_along_axis(probabilities, labels[..., None], -1)[..., 0]
    np.testing.assert_allclose(loss, -np.log(picked[kept]).mean(), rtol=1e-6)
    np.testing.assert_allclose(accuracy, (probabilities.argmax(-1) == labels)[kept].mean())
    changed = labels.copy()
    changed[~kept] = 1 - changed[~kept]                                   # other targets on padded steps only
    np.testing.assert_allclose(model.evaluate(tokens, changed, verbose=0), [loss, accuracy], rtol=1e-6)


def test_no_warning_for_masks_on_plain_models():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = keras.Sequential([keras.Input((3,)), layers.Dense(2), layers.Flatten()])
        model.predict(np.ones((2, 3), np.float32), verbose=0)


def _masking_model(per_step):
    """Masking, then a GRU and a Dense softmax per step (a masked output: its loss is masked) or at the end."""
    return keras.Sequential([keras.Input((7, 3)), layers.Masking(0.0), layers.GRU(4, return_sequences=per_step),
                             layers.Dense(3, activation="softmax")])


@pytest.mark.parametrize("per_step", [False, True])
def test_a_masked_plan_lowered_to_one_numba_function_trains_as_eagerly(per_step, monkeypatch, tmp_path):
    from nnengine import capture
    monkeypatch.setattr(capture, "LOWER_AFTER_REPLAYS", 1)
    monkeypatch.setenv("NNENGINE_PLAN_CACHE", str(tmp_path / "plans"))
    x = RECORD["features"][:8]
    y = np.random.default_rng(0).integers(0, 3, (8, 7) if per_step else 8)
    weights, reports = [], []
    for jit in (True, False):
        nn.utils.set_random_seed(3)
        model = _masking_model(per_step)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=jit)
        logs = [model.train_on_batch(x, y) for _ in range(4)]
        weights.append((logs, model.get_weights()))
        reports.append([plan.lowering_reason for plan in model._compiler.plans().values()])
    assert reports[0] == [None], reports[0]                # the one plan runs lowered
    (lowered_logs, lowered), (eager_logs, eager) = weights
    assert lowered_logs == eager_logs
    for ours, theirs in zip(lowered, eager):
        np.testing.assert_array_equal(ours, theirs)


def test_a_mask_passed_to_a_layer_call_is_used_as_keras_uses_it():
    x = nn.tensor(np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32))
    mask = np.array([[True, True, False, False], [True, False, False, False]])
    layer = layers.LSTM(2)
    explicit = layer(x, mask=nn.tensor(mask)).numpy()
    np.testing.assert_allclose(explicit[0], layer(x[:1, :2]).numpy()[0], atol=1e-6)
    with pytest.raises(TypeError, match="does not record mask="):
        layers.LSTM(2)(keras.Input((4, 3)), mask=nn.tensor(mask))


def test_masking_and_mask_arguments_refuse_bad_values_naming_the_layer():
    with pytest.raises(TypeError, match="Masking .*mask_value must be a number"):
        layers.Masking("abc")
    with pytest.raises(ValueError, match="mask_value must be a finite number"):
        layers.Masking(float("nan"))                     # x != nan everywhere: it would never mask
    with pytest.raises(TypeError, match="Embedding .*mask_zero must be True or False"):
        layers.Embedding(5, 2, mask_zero="yes")
    with pytest.raises(ValueError, match=r"layer 'pool': the mask must have shape \(2, 3\)"):
        layers.GlobalAveragePooling1D(name="pool")(np.ones((2, 3, 1), np.float32), mask=np.ones((2, 4), bool))
