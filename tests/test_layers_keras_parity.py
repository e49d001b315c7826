"""The image and text layers against Keras 3 itself: files Keras wrote load and predict as Keras
predicted, one SGD step gives Keras's gradients, and four Adam steps follow Keras's losses, weights
(moving statistics included) and predictions. The references come from real Keras
(tests/data/make_layer_references.py, run with the torch backend)."""
from pathlib import Path

import numpy as np
import pytest

import nnengine as nn

DATA = Path(__file__).parent / "data"
CASES = ["cnn", "conv_strided_dilated", "batchnorm", "layernorm", "embedding", "conv1d", "conv1d_causal"]


def reference(name):
    with np.load(DATA / f"layers_{name}.npz", allow_pickle=False) as stored:
        return dict(stored)


def weights(ref, prefix):
    return [ref[f"{prefix}_{i}"] for i in range(sum(k.startswith(prefix + "_") for k in ref))]


def loaded(name, device, optimizer):
    model = nn.load_model(DATA / f"layers_{name}.h5")
    loss = model.loss
    model.compile(optimizer=optimizer, loss=loss)
    return model.to(device)


@pytest.mark.parametrize("name", CASES)
def test_a_keras_written_model_loads_and_predicts_as_keras(name, device):
    ref = reference(name)
    model = loaded(name, device, "sgd")
    np.testing.assert_allclose(model.predict(ref["x"], verbose=0), ref["predict"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_one_sgd_step_applies_keras_gradients(name, device):
    ref = reference(name)
    model = loaded(name, device, nn.optimizers.SGD(1.0))
    model.train_on_batch(ref["x"], ref["y"])
    for got, want in zip(model.get_weights(), weights(ref, "sgd_weights"), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_adam_training_follows_keras(name, device):
    ref = reference(name)
    model = loaded(name, device, nn.optimizers.Adam(0.01))
    losses = [model.train_on_batch(ref["x"], ref["y"]) for _ in range(4)]
    np.testing.assert_allclose(losses, ref["adam_losses"], rtol=2e-5, atol=1e-6)
    for got, want in zip(model.get_weights(), weights(ref, "adam_weights"), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.predict(ref["x"], verbose=0), ref["adam_predict"], rtol=1e-5, atol=1e-6)


def test_the_keras_cnn_round_trips_through_nnengine_files(tmp_path):
    ref = reference("cnn")
    model = nn.load_model(DATA / "layers_cnn.h5")
    model.save(tmp_path / "again.h5")
    again = nn.load_model(tmp_path / "again.h5")
    assert [type(layer).__name__ for layer in again.layers] == \
        ["Conv2D", "MaxPooling2D", "Conv2D", "AveragePooling2D", "Flatten", "Dense"]
    np.testing.assert_allclose(again.predict(ref["x"], verbose=0), ref["predict"], rtol=1e-5, atol=1e-6)
    assert again.get_config() == model.get_config()
