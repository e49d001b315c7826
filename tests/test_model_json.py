"""to_json / model_from_json, clone_model and get_layer, as Keras 3 has them."""
from pathlib import Path

import json
import numpy as np
import pytest
from keras_helpers import trained_model

import nnengine as nn

keras = nn.keras
DATA = Path(__file__).resolve().parent / "data"


def test_to_json_is_keras_3s_serialized_model_and_round_trips():
    model, x, _ = trained_model()
    text = model.to_json()
    config = json.loads(text)
    assert {"module": "keras", "class_name": "Sequential"}.items() <= config.items()
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"
    rebuilt = keras.models.model_from_json(text)
    assert rebuilt.get_config() == model.get_config() and rebuilt.compiled
    assert type(rebuilt.optimizer) is nn.optimizers.Adam and rebuilt.optimizer.iterations == 0
    assert rebuilt.predict(x, verbose=0).shape == model.predict(x, verbose=0).shape
    assert json.loads(model.to_json(indent=2)) == config


def test_model_from_json_reads_keras_functional_json_uncompiled():
    model = keras.models.model_from_json((DATA / "keras3_functional.json").read_text())
    assert isinstance(model, keras.Model) and not isinstance(model, keras.Sequential)
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Dense", "Dense"]
    assert model.output_shape == (None, 2) and not model.compiled


@pytest.mark.parametrize("text, error", [
    ("{", "not valid JSON"), ("[]", "expected a JSON object"), (3, "expected a JSON string"),
    ('{"class_name": "Subclassed", "config": {}}', "nnengine loads Sequential and functional models"),
])
def test_model_from_json_refuses_what_it_cannot_read(text, error):
    with pytest.raises((ValueError, TypeError), match=error):
        keras.models.model_from_json(text)


def test_clone_model_has_the_config_and_new_weights():
    model, _, _ = trained_model()
    clone = keras.models.clone_model(model)
    assert clone.get_config()["layers"] == model.get_config()["layers"] and not clone.compiled
    for mine, theirs in zip(clone.get_weights()[::2], model.get_weights()[::2]):     # the kernels
        assert mine.shape == theirs.shape and not np.array_equal(mine, theirs)
    with pytest.raises(TypeError, match="expected a Sequential"):
        keras.models.clone_model("model")


def test_get_layer_by_index_or_name():
    model, _, _ = trained_model()
    first, last = model.layers[0], model.layers[-1]
    assert model.get_layer(index=0) is first and model.get_layer(index=-1) is last
    assert model.get_layer(first.name) is first and model.get_layer(first.name, index=1) is last
    with pytest.raises(ValueError, match="give a layer name or a layer index"):
        model.get_layer()
    with pytest.raises(ValueError, match="no layer named 'absent'"):
        model.get_layer("absent")
    with pytest.raises(ValueError, match="at index 7"):
        model.get_layer(index=7)


def test_an_unbuilt_model_writes_json_without_shapes_and_deep_json_is_refused():
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    config = json.loads(unbuilt.to_json())
    assert config["build_config"] == {"input_shape": None}
    assert not keras.models.model_from_json(unbuilt.to_json()).built
    with pytest.raises(ValueError, match="nested too deeply"):
        keras.models.model_from_json("[" * 100_000)


def test_configs_of_the_wrong_type_inside_the_json_are_clear_errors():
    """Found by fuzzing model_from_json: a non-dict initializer or optimizer config raised AttributeError."""
    model, _, _ = trained_model()
    config = json.loads(model.to_json())
    config["config"]["layers"][1]["config"]["bias_initializer"]["config"] = 1.5
    with pytest.raises(TypeError, match="initializer 'Zeros': its 'config' must be a dict, got float"):
        keras.models.model_from_json(json.dumps(config))
    config = json.loads(model.to_json())
    config["compile_config"]["optimizer"]["config"] = 3
    with pytest.warns(UserWarning, match="optimizer 'Adam': its 'config' must be a dict, got int"):
        assert not keras.models.model_from_json(json.dumps(config)).compiled
