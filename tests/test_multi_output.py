"""Functional models with several outputs (output_heads.py, trainer.py): a loss, a loss weight and metrics per
output as Keras 3 reads compile()'s arguments, Keras's logs and evaluate's order, targets and sample weights per
output, predict's list, the files; against Keras 3.15's own numbers and files."""
import numpy as np
import pytest

import nnengine as nn
from keras_helpers import compiled_and_eager_runs, make_keras_files, run_guide_snippet

keras = nn.keras
layers = keras.layers
DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"
FILES = make_keras_files()


def _two_heads(seed=0):
    """Classes (softmax) and a value (linear) from one hidden layer."""
    nn.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(4,), name="x")
    hidden = layers.Dense(8, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, [layers.Dense(3, activation="softmax", name="cls")(hidden),
                                layers.Dense(1, name="reg")(hidden)])


def _two_heads_data(samples=40):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((samples, 4)).astype(np.float32)
    return x, [np.eye(3, dtype=np.float32)[rng.integers(0, 3, samples)], rng.standard_normal((samples, 1))]


def test_a_model_with_outputs_names_them_after_their_layers_and_predicts_a_list():
    model = _two_heads()
    x, _ = _two_heads_data()
    assert model.output_names == ["cls", "reg"] and model.output_shape == [(None, 3), (None, 1)]
    assert isinstance(model.output, list) and len(model.outputs) == 2
    predictions = model.predict(x, batch_size=16, verbose=0)
    assert [p.shape for p in predictions] == [(40, 3), (40, 1)]
    np.testing.assert_allclose(predictions[0].sum(axis=1), 1, rtol=1e-6)
    on_batch = model.predict_on_batch(x)
    for ours, whole in zip(on_batch, predictions):
        np.testing.assert_array_equal(ours, whole)
    batches = model.predict((x[i:i + 16] for i in range(0, 40, 16)), verbose=0)    # from a generator
    for ours, whole in zip(batches, predictions):
        np.testing.assert_array_equal(ours, whole)


def test_keras_3_trains_three_outputs_to_the_same_history_evaluation_and_weights():
    """make_keras_files.py multi_output: Keras 3.15 trained this model from these first weights; nnengine, given
    the same weights, data and compile arguments (a loss, a loss weight and metrics per output, as dicts), logs
    the same History keys and values, the same evaluate list in Keras's order, and the same predictions."""
    reference = np.load(DATA / "keras3_multi_output.npz")
    x, ys = FILES.multi_output_data()
    model = FILES.multi_output(keras)
    model.set_weights([reference[f"first_{i}"] for i in range(len(model.get_weights()))])
    model.compile(optimizer="adam", **FILES.MULTI_OUTPUT_COMPILE)
    assert model.trains_on_logits() == [False, False, True]     # 'classes' also feeds 'value': not on its logits
    history = model.fit(x, ys, epochs=2, batch_size=8, shuffle=False, validation_split=0.25, verbose=0).history
    assert sorted(history) == list(reference["history_keys"])
    for key, expected in zip(reference["history_keys"], reference["history"]):
        np.testing.assert_allclose(history[key], expected, rtol=2e-5, atol=1e-6, err_msg=key)
    evaluated = model.evaluate(x, ys, batch_size=16, verbose=0)
    assert model.metrics_names == ["loss", "classes_loss", "value_loss", "gate_loss", "classes_accuracy",
                                   "gate_accuracy", "gate_mse", "value_mae"]
    np.testing.assert_allclose(evaluated, reference["evaluated"], rtol=2e-5, atol=1e-6)
    for position, predicted in enumerate(model.predict(x[:8], verbose=0)):
        np.testing.assert_allclose(predicted, reference[f"predicted_{position}"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_keras_saved_model_with_three_outputs_loads_compiled_and_resumes_as_keras_did(suffix):
    reference = np.load(DATA / "keras3_multi_output.npz")
    x, ys = FILES.multi_output_data()
    model = nn.load_model(DATA / f"keras3_multi_output{suffix}")
    assert model.output_names == ["classes", "value", "gate"] and model.optimizer.iterations == 8
    assert [head.weight for head in model._heads] == [1.0, 0.5, 2.0]
    for position, predicted in enumerate(model.predict(x[:8], verbose=0)):
        np.testing.assert_allclose(predicted, reference[f"predicted_{position}"], rtol=1e-5, atol=1e-6)
    model.fit(x, ys, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for position, ours in enumerate(model.get_weights()):
        np.testing.assert_allclose(ours, reference[f"after_{position}"], rtol=1e-4, atol=1e-5)


def test_the_loss_is_the_weighted_sum_of_the_outputs_losses_as_keras_defines_it():
    x, ys = _two_heads_data()
    model = _two_heads()
    model.compile(optimizer="sgd", loss=["categorical_crossentropy", "mse"],
                  loss_weights={"cls": np.float32(2.0), "reg": 0.25})       # numpy numbers too
    logs = model.evaluate(x, ys, batch_size=40, verbose=0, return_dict=True)
    probabilities, values = model.predict(x, verbose=0)
    cross_entropy = -np.mean(np.sum(ys[0] * np.log(probabilities), axis=1))
    squared = np.mean((values - ys[1]) ** 2)
    np.testing.assert_allclose([logs["cls_loss"], logs["reg_loss"]], [cross_entropy, squared], rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], 2.0 * cross_entropy + 0.25 * squared, rtol=1e-5)
    assert sorted(logs) == ["cls_loss", "loss", "reg_loss"]


def test_one_loss_is_applied_to_every_output_and_one_lossless_output_is_not_trained():
    x, ys = _two_heads_data()
    model = _two_heads()
    model.compile(optimizer="adam", loss="mse")
    assert sorted(model.fit(x, ys, epochs=1, verbose=0).history) == ["cls_loss", "loss", "reg_loss"]
    model = _two_heads()
    model.compile(optimizer="adam", loss=[None, "mse"], metrics=[["mae"], None])
    before = model.get_layer("cls").get_weights()
    history = model.fit(x, {"cls": ys[0], "reg": ys[1]}, epochs=2, verbose=0).history
    assert sorted(history) == ["cls_mae", "loss"]         # one loss: no per-output loss, as in Keras
    for ours, first in zip(model.get_layer("cls").get_weights(), before):
        np.testing.assert_array_equal(ours, first)      # its gradient is zero: Adam leaves it as it was
    model.fit(x, {"reg": ys[1], "cls": ys[0]}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"y is a dict by output name; the model's outputs are \['cls', 'reg'\], "
                                         r"missing \['cls'\]"):
        model.fit(x, {"reg": ys[1]}, epochs=1, verbose=0)      # its metrics need its targets


def test_sample_weights_per_output_weight_only_that_outputs_loss():
    x, ys = _two_heads_data()
    model = _two_heads()
    model.compile(optimizer="sgd", loss=["categorical_crossentropy", "mse"])
    plain = model.evaluate(x, ys, batch_size=40, verbose=0, return_dict=True)
    weights = np.linspace(0, 2, 40)
    weighted = model.evaluate(x, ys, batch_size=40, verbose=0, return_dict=True, sample_weight={"reg": weights})
    values = model.predict(x, verbose=0)[1]
    assert weighted["cls_loss"] == pytest.approx(plain["cls_loss"], rel=1e-6)
    expected = np.sum(weights * (values[:, 0] - ys[1][:, 0]) ** 2) / 40
    assert weighted["reg_loss"] == pytest.approx(expected, rel=1e-5)
    both = model.evaluate(x, ys, batch_size=40, verbose=0, return_dict=True, sample_weight=weights)   # every output
    assert both["reg_loss"] == pytest.approx(expected, rel=1e-5) and both["cls_loss"] != pytest.approx(
        plain["cls_loss"], rel=1e-3)
    as_list = model.evaluate(x, ys, batch_size=40, verbose=0, return_dict=True, sample_weight=[None, weights])
    assert as_list == weighted
    with pytest.raises(ValueError, match=r"evaluate: sample_weight must have one weight per sample, shape \(40,\)"):
        model.evaluate(x, ys, verbose=0, sample_weight=weights[:39])
    with pytest.raises(ValueError, match=r"sample_weight\['reg'\]: sample_weight must have one weight per sample"):
        model.evaluate(x, ys, verbose=0, sample_weight={"reg": weights[:39]})
    with pytest.raises(ValueError, match="class_weight is only supported for a model with one output"):
        model.fit(x, ys, class_weight={0: 1.0}, verbose=0)


def test_compile_arguments_that_do_not_fit_the_outputs_are_refused_with_the_reason():
    model = _two_heads()
    cases = [
        (dict(loss={"cls": "mse"}), ValueError, r"loss is a dict by output name; .*missing \['reg'\]"),
        (dict(loss={"cls": "mse", "reg": "mse", "other": "mse"}), ValueError, r"unknown keys \['other'\]"),
        (dict(loss=["mse"]), ValueError, r"the model has 2 outputs \['cls', 'reg'\]; loss must be a list of 2 entries"),
        (dict(loss="mse", loss_weights=0.5), ValueError, "loss_weights must be a list or a dict by output name"),
        (dict(loss="mse", loss_weights=[1.0, "x"]), TypeError, "loss_weights of output 'reg' must be a finite number"),
        (dict(loss="mse", loss_weights=[np.nan, 1]), TypeError, "loss_weights of output 'cls' must be a finite number"),
        (dict(loss="mse", metrics=["accuracy"]), ValueError, "metrics is a list with one entry per output"),
        (dict(loss="mse", metrics={"nope": ["mae"]}), ValueError, r"unknown keys \['nope'\]"),
        (dict(loss="mse", metrics=[["no_such_metric"], None]), ValueError, "no_such_metric"),
    ]
    for arguments, error, message in cases:
        with pytest.raises(error, match=message):
            model.compile(optimizer="adam", **arguments)
    model.compile(optimizer="adam", loss=[None, None])
    with pytest.raises(ValueError, match="compiled without a loss"):
        model.fit(*_two_heads_data(), verbose=0)


def test_targets_that_do_not_fit_the_outputs_are_refused_with_the_output_named():
    x, ys = _two_heads_data()
    model = _two_heads()
    model.compile(optimizer="adam", loss=["categorical_crossentropy", "mse"])
    with pytest.raises(ValueError, match=r"the model has 2 outputs \['cls', 'reg'\]; y must be a list of 2 arrays"):
        model.fit(x, ys[:1], verbose=0)
    with pytest.raises(ValueError, match=r"y\['reg'\]: x and y must have the same number of samples, got 40 and 39"):
        model.fit(x, [ys[0], ys[1][:39]], verbose=0)
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        model.fit(x, [ys[0][:, :2], ys[1]], verbose=0)
    with pytest.raises(TypeError, match="y must be a list of 2 arrays or a dict by output name"):
        model.fit(x, ys[0], verbose=0)


def test_the_compiled_steps_of_a_model_with_outputs_are_bitwise_its_eager_steps():
    x, ys = _two_heads_data()
    report = compiled_and_eager_runs(_two_heads, x, ys, epochs=2, batch_size=12,
                                     loss=["categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
                                     metrics=[["accuracy"], ["mae"]])
    assert report["captured"]["train"] == 2 and report["fallback_reason"] is None, report


def test_generators_callbacks_and_train_on_batch_see_every_outputs_logs():
    x, ys = _two_heads_data()
    model = _two_heads()
    model.compile(optimizer="adam", loss=["categorical_crossentropy", "mse"], metrics=[["accuracy"], ["mae"]])
    batches = [(x[i:i + 10], (ys[0][i:i + 10], ys[1][i:i + 10])) for i in range(0, 40, 10)]
    stop = keras.callbacks.EarlyStopping(monitor="val_reg_loss", patience=0, mode="min")
    history = model.fit(iter(batches * 3), steps_per_epoch=4, epochs=3, validation_data=(x, ys), callbacks=[stop],
                        verbose=0).history
    assert "val_reg_mae" in history and "cls_accuracy" in history
    logs = model.train_on_batch(x, ys, return_dict=True)
    assert sorted(logs) == ["cls_accuracy", "cls_loss", "loss", "reg_loss", "reg_mae"]
    listed = model.test_on_batch(x, ys)
    assert len(listed) == 5 and listed[0] == pytest.approx(listed[1] + listed[2], rel=1e-6)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_model_with_outputs_saves_its_compile_arguments_and_loads_them_back(tmp_path, suffix):
    x, ys = _two_heads_data()
    model = _two_heads()
    model.compile(optimizer="adam", loss={"reg": "mse", "cls": nn.losses.CategoricalCrossentropy()},
                  loss_weights={"cls": 2.0, "reg": 1.0}, metrics={"cls": ["accuracy"], "reg": ["mae", "mse"]},
                  weighted_metrics={"reg": ["mae"]})
    model.fit(x, ys, epochs=1, verbose=0)
    model.save(tmp_path / f"model{suffix}")
    loaded = nn.load_model(tmp_path / f"model{suffix}")
    assert [head.weight for head in loaded._heads] == [2.0, 1.0] and loaded.metrics_names == model.metrics_names
    assert "reg_weighted_mae" in loaded.metrics_names
    assert loaded.evaluate(x, ys, verbose=0) == model.evaluate(x, ys, verbose=0)
    loaded.fit(x, ys, epochs=1, shuffle=False, verbose=0)
    model.fit(x, ys, epochs=1, shuffle=False, verbose=0)
    for ours, theirs in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


def test_the_guide_snippet_of_several_outputs_runs_and_learns_both():
    namespace = run_guide_snippet(2)
    history, model, x, y = (namespace[name] for name in ("history", "model", "x", "y"))
    assert sorted(history.history) == ["kind_accuracy", "kind_loss", "loss", "size_loss", "size_mae",
                                       "val_kind_accuracy", "val_kind_loss", "val_loss", "val_size_loss",
                                       "val_size_mae"]
    loss, kind_loss, size_loss, accuracy, mae = model.evaluate(x, y, verbose=0)
    assert accuracy > 0.75 and mae < 0.8        # both learned: chance is 1/3; a constant size is off by 1.6
    assert loss == pytest.approx(kind_loss + 0.5 * size_loss, rel=1e-5)
    assert [a.shape for a in (namespace["kinds"], namespace["sizes"])] == [(4, 3), (4, 1)]


def test_weighted_metrics_weigh_each_sample_and_are_named_and_ordered_as_keras_3_does():
    """Keras 3.15's logs and evaluate list for these compile arguments (recorded by hand from a run): a weighted
    metric whose name is taken becomes 'weighted_<name>'; evaluate lists each metric's own name first (twice when
    two metrics share it: Keras 3 does), then the other keys sorted."""
    rng = np.random.default_rng(0)
    x, y, w = rng.standard_normal((40, 4)).astype(np.float32), rng.integers(0, 3, 40), rng.uniform(0, 2, 40)
    nn.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  weighted_metrics=["accuracy", "sparse_top_k_categorical_accuracy"])
    logs = model.evaluate(x, y, sample_weight=w, batch_size=16, verbose=0, return_dict=True)
    assert list(logs) == ["accuracy", "loss", "sparse_top_k_categorical_accuracy", "weighted_accuracy"]
    hits = model.predict(x, verbose=0).argmax(axis=1) == y
    assert logs["accuracy"] == pytest.approx(hits.mean()) and logs["weighted_accuracy"] == pytest.approx(
        np.sum(hits * w) / np.sum(w))
    assert logs["sparse_top_k_categorical_accuracy"] == 1.0            # k = 5 of 3 classes
    assert model.evaluate(x, y, sample_weight=w, batch_size=16, verbose=0) == [
        logs["loss"], logs["accuracy"], logs["accuracy"], logs["sparse_top_k_categorical_accuracy"],
        logs["weighted_accuracy"]]
    unweighted = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)   # no weights: plain metrics
    assert unweighted["weighted_accuracy"] == unweighted["accuracy"]
    history = model.fit(x, y, sample_weight=w, epochs=1, validation_split=0.25, verbose=0).history
    assert "val_weighted_accuracy" in history

    model = _two_heads()
    x, ys = _two_heads_data()
    w = np.linspace(0.5, 1.5, 40)
    model.compile("adam", loss=["categorical_crossentropy", "mse"], metrics=[["accuracy"], None],
                  weighted_metrics=[["accuracy"], ["mae"]])
    logs = model.evaluate(x, ys, sample_weight=w, verbose=0, return_dict=True)
    assert list(logs) == ["cls_accuracy", "cls_loss", "cls_weighted_accuracy", "loss", "reg_loss", "reg_mae"]
    assert model.metrics_names == ["loss", "cls_loss", "reg_loss", "cls_accuracy", "cls_weighted_accuracy",
                                   "reg_mae"]
    values = model.predict(x, verbose=0)[1]
    assert logs["reg_mae"] == pytest.approx(np.sum(w * np.abs(values[:, 0] - ys[1][:, 0])) / np.sum(w), rel=1e-5)
