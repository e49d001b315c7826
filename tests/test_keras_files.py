"""Files: nnengine's .h5 and .weights.h5 round trips, files written by real Keras, atomic saves, safe loads."""
import json
import os
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from keras_helpers import small_model, strip_header, trained_model

import nnengine as nn

DATA = Path(__file__).resolve().parent / "data"


def test_save_writes_keras_legacy_layout(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "model.h5")
    with h5py.File(tmp_path / "model.h5") as f:
        assert {"model_config", "training_config", "keras_version", "backend"} <= set(f.attrs)
        config = json.loads(f.attrs["model_config"])
        assert config["class_name"] == "Sequential"
        assert [layer["class_name"] for layer in config["config"]["layers"]] == ["InputLayer", "Dense", "Dense"]
        assert config["config"]["layers"][1]["config"]["kernel_initializer"]["class_name"] == "GlorotUniform"
        training = json.loads(f.attrs["training_config"])
        assert training["loss"] == "sparse_categorical_crossentropy" and training["metrics"] == ["accuracy"]
        assert training["optimizer_config"]["class_name"] == "Adam"
        weights = f["model_weights"]
        names = [n.decode() for n in weights.attrs["layer_names"]]
        assert names == [layer.name for layer in model.layers]
        first = weights[names[0]]
        kernel_name = first.attrs["weight_names"][0].decode()
        assert kernel_name == f"{model.name}/{names[0]}/kernel"
        np.testing.assert_array_equal(first[kernel_name][()], model.get_weights()[0])
        optimizer_names = [n.decode() for n in f["optimizer_weights"].attrs["weight_names"]]
        assert optimizer_names[:3] == ["adam/iteration", "adam/learning_rate",
                                       f"adam/{model.name}_{names[0]}_kernel_momentum"]
        assert int(f["optimizer_weights/adam/iteration"][()]) == 6


def test_load_model_restores_architecture_weights_and_compile(tmp_path):
    model, x, y = trained_model()
    model.save(tmp_path / "model.h5")
    restored = nn.load_model(tmp_path / "model.h5")
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert restored.get_config()["layers"] == model.get_config()["layers"]
    assert type(restored.optimizer) is nn.optimizers.Adam and restored.compiled
    assert restored.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))
    assert not nn.load_model(tmp_path / "model.h5", compile=False).compiled


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adagrad",
                                       nn.optimizers.SGD(momentum=0.9), nn.optimizers.Adam(amsgrad=True)])
def test_training_resumes_from_a_saved_model_exactly(tmp_path, optimizer):
    model, x, y = trained_model(optimizer)
    model.save(tmp_path / "model.h5")
    restored = nn.load_model(tmp_path / "model.h5")
    assert restored.optimizer.iterations == model.optimizer.iterations
    for m in (model, restored):
        m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for got, expected in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_save_weights_and_load_weights_round_trip_in_keras_3_layout(tmp_path):
    model, x, _ = trained_model()
    model.save_weights(tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5") as f:
        assert sorted(f["layers"]) == ["dense", "dense_1"]       # Keras 3 keys: class name by position
        np.testing.assert_array_equal(f["layers/dense/vars/0"][()], model.get_weights()[0])
    other = small_model(seed=9)
    other.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="must end in .weights.h5"):
        model.save_weights(tmp_path / "m.h5")


def test_load_weights_restores_a_built_optimizer_as_keras_3_does(tmp_path):
    model, x, y = trained_model()
    model.optimizer.learning_rate = 0.5 ** 11           # lowered, as ReduceLROnPlateau would (float32-exact)
    model.save_weights(tmp_path / "m.weights.h5")
    other = small_model(seed=9)
    other.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.warns(UserWarning, match="not built"):
        other.load_weights(tmp_path / "m.weights.h5")   # Keras skips an unbuilt optimizer's state
    assert other.optimizer.iterations == 0 and other.optimizer.learning_rate == 0.001
    other.optimizer.build(other.trainable_weights)
    other.load_weights(tmp_path / "m.weights.h5")
    assert other.optimizer.iterations == model.optimizer.iterations == 6
    assert other.optimizer.learning_rate == 0.5 ** 11
    for weight, mine in zip(model.trainable_weights, other.trainable_weights):
        for name, slot in model.optimizer.slots(weight).items():
            np.testing.assert_array_equal(other.optimizer.slots(mine)[name].numpy(), slot.numpy())
    for m in (model, other):
        m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for got, expected in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, expected)     # the same state resumes to the same weights


def test_a_stored_learning_rate_that_is_not_a_rate_is_refused(tmp_path):
    model, _, _ = trained_model()
    model.save_weights(tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5", "r+") as f:
        f["optimizer/vars/1"][()] = -1.0                 # edited with its checksum, as a hostile file would be
        f["optimizer/vars/1"].attrs["nnengine_crc32"] = nn.safe_save.checksum(f["optimizer/vars/1"][()])
    strip_header(tmp_path / "m.weights.h5")
    before = model.optimizer.learning_rate
    with pytest.raises(nn.saving.ModelFileError, match="learning rate"):
        model.load_weights(tmp_path / "m.weights.h5")
    assert model.optimizer.learning_rate == before


def test_load_weights_reads_a_full_model_file(tmp_path):
    model, x, _ = trained_model()
    model.save(tmp_path / "model.h5")
    other = small_model(seed=3)
    other.load_weights(tmp_path / "model.h5")
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("name", ["keras3_sequential", "tf_keras2_sequential"])
def test_files_written_by_keras_load_and_predict_as_keras_did(name):
    reference = np.load(DATA / f"{name}.npz", allow_pickle=False)
    model = nn.load_model(DATA / f"{name}.h5")
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense", "Dense"]
    np.testing.assert_allclose(model.predict(reference["x"], verbose=0), reference["y"], rtol=1e-5, atol=1e-6)
    assert model.compiled and type(model.optimizer) is nn.optimizers.Adam
    loss, accuracy = model.evaluate(reference["x"], reference["labels"], verbose=0)
    assert accuracy == pytest.approx(np.mean(reference["y"].argmax(1) == reference["labels"]))


def test_keras_3_optimizer_state_is_restored():
    model = nn.load_model(DATA / "keras3_sequential.h5")
    with h5py.File(DATA / "keras3_sequential.h5") as f:
        expected_iterations = int(f["optimizer_weights/adam/iteration"][()])
        first = model.layers[0]
        momentum = f[f"optimizer_weights/adam/sequential_{first.name}_kernel_momentum"][()]
    assert model.optimizer.iterations == expected_iterations == 8
    np.testing.assert_array_equal(model.optimizer.slots(first.kernel)["momentum"].numpy(), momentum)


def test_a_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    model, x, _ = trained_model()
    path = tmp_path / "model.h5"
    model.save(path)
    before = path.read_bytes()
    import nnengine.saving as saving

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(saving, "_write_model_weights", broken)
    model.fit(x, np.zeros(len(x), int), epochs=1, verbose=0)
    with pytest.raises(OSError, match=r"save: could not write '.*model.h5' \(RuntimeError: disk full\); the "
                                      "previous file, if any, is untouched") as raised:
        model.save(path)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.h5"]          # no temporary file left behind


def test_a_saved_file_gets_ordinary_permissions(tmp_path):
    model, _, _ = trained_model()
    path = tmp_path / "model.h5"
    umask = os.umask(0o022)
    try:
        model.save(path)
        assert path.stat().st_mode & 0o777 == 0o644
        path.chmod(0o640)
        model.save(path)                          # replacing a file keeps its permissions
        assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(umask)


def test_save_to_a_path_that_cannot_be_written(tmp_path):
    model, _, _ = trained_model()
    with pytest.raises(FileNotFoundError, match="the directory .* does not exist"):
        model.save(tmp_path / "missing" / "model.h5")
    with pytest.raises(ValueError, match=r"ending in \.keras .* or \.h5"):
        model.save(tmp_path / "model.pt")
    (tmp_path / "dir.h5").mkdir()
    with pytest.raises(IsADirectoryError):
        model.save(tmp_path / "dir.h5")


def test_save_into_a_read_only_directory(tmp_path):
    model, _, _ = trained_model()
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        if os.access(read_only, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(PermissionError, match="cannot write in"):
            model.save(read_only / "model.h5")
    finally:
        read_only.chmod(0o700)


def test_load_model_rejects_missing_foreign_and_truncated_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        nn.load_model(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("not hdf5 at all")
    with pytest.raises(nn.ModelFileError, match="text.h5' is not a valid model file: at the start of the file: "
                                                "not an HDF5 file"):
        nn.load_model(tmp_path / "text.h5")
    model, _, _ = trained_model()
    model.save(tmp_path / "model.h5")
    data = (tmp_path / "model.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(nn.ModelFileError, match="at the whole file: .* it was truncated"):
        nn.load_model(tmp_path / "cut.h5")
    (tmp_path / "cut.h5").write_bytes(bytes(512) + data[512: len(data) // 2])    # without nnengine's header
    with pytest.raises(nn.ModelFileError, match="at the file's structure: the HDF5 library cannot read its "
                                                "structure .*truncated file"):
        nn.load_model(tmp_path / "cut.h5")
    with h5py.File(tmp_path / "weights_only.h5", "w") as f:
        f.create_group("model_weights")
    with pytest.raises(nn.ModelFileError, match="at attribute model_config: missing"):
        nn.load_model(tmp_path / "weights_only.h5")


def test_loading_never_runs_code_from_the_file(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "model.h5")
    with h5py.File(tmp_path / "model.h5", "a") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][1] = {"class_name": "Lambda", "config": {
            "name": "evil", "function": "__import__('os').system('touch pwned')"}}
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(nn.ModelFileError, match="at the whole file: the file's checksum does not match"):
        nn.load_model(tmp_path / "model.h5")
    strip_header(tmp_path / "model.h5")
    with pytest.raises(nn.ModelFileError, match="at attribute model_config: the checksum does not match"):
        nn.load_model(tmp_path / "model.h5")
    with h5py.File(tmp_path / "model.h5", "a") as f:      # an author who knows the checksums removes them
        del f.attrs["nnengine_checksums"]
    with pytest.raises(nn.ModelFileError, match=r"layers\[1\]: cannot load layer class 'Lambda': nnengine knows "
                                                "Activation, .*Add, .*AveragePooling1D, .*Conv2D, .*Dense"):
        nn.load_model(tmp_path / "model.h5")
    assert not (Path.cwd() / "pwned").exists()


def test_object_datasets_are_refused(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "model.h5")
    with h5py.File(tmp_path / "model.h5", "a") as f:
        group = f["model_weights"][model.layers[0].name]
        name = group.attrs["weight_names"][0].decode()
        del group[name]
        group.create_dataset(name, data=np.array([b"x"], dtype=h5py.string_dtype()))
    strip_header(tmp_path / "model.h5")
    with pytest.raises(nn.ModelFileError, match="holds object, not numbers"):
        nn.load_model(tmp_path / "model.h5")


def test_a_file_for_a_different_model_is_refused(tmp_path):
    model, _, _ = trained_model()
    model.save_weights(tmp_path / "m.weights.h5")
    other = nn.Sequential([nn.layers.Dense(8, input_shape=(5,)), nn.layers.Dense(3)])
    before = other.get_weights()
    with pytest.raises(nn.ModelFileError, match=r"at layers/dense/vars/0: stored shape \(6, 8\) does not match "
                                                r"the model's \(5, 8\)"):
        other.load_weights(tmp_path / "m.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(before, other.get_weights()))


def test_layer_names_and_weight_keys_follow_keras_snake_case(tmp_path):
    """Keras names a Conv2D layer 'conv2d' (no underscore after a digit) and keys its weights so."""
    model = nn.Sequential([nn.Input((8, 8, 1)), nn.layers.Conv2D(2, 3), nn.layers.MaxPooling2D(2),
                           nn.layers.Conv2D(2, 1), nn.layers.GlobalAveragePooling2D(), nn.layers.Dense(2)])
    prefixes = [layer.name.rsplit("_", 1)[0] if layer.name[-1].isdigit() and "_" in layer.name else layer.name
                for layer in model.layers]
    assert prefixes == ["conv2d", "max_pooling2d", "conv2d", "global_average_pooling2d", "dense"]
    model.save_weights(tmp_path / "w.weights.h5")
    with h5py.File(tmp_path / "w.weights.h5") as f:
        assert sorted(f["layers"]) == ["conv2d", "conv2d_1", "dense", "global_average_pooling2d", "max_pooling2d"]


def test_optimizer_state_of_a_model_with_batch_normalization_survives_h5(tmp_path):
    """The moving statistics have no optimizer slots: the loader looked for theirs and dropped the whole state."""
    nn.utils.set_random_seed(0)
    model = nn.Sequential([nn.Input(shape=(4,)), nn.layers.Dense(5), nn.layers.BatchNormalization(),
                           nn.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)
    model.fit(x, np.arange(32) % 2, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "bn.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = nn.load_model(tmp_path / "bn.h5")
    assert restored.optimizer.iterations == model.optimizer.iterations == 8
    for position in (0, 2):
        saved = model.optimizer.slots(model.layers[position].kernel)
        loaded = restored.optimizer.slots(restored.layers[position].kernel)
        for name in ("momentum", "velocity"):
            np.testing.assert_array_equal(loaded[name].numpy(), saved[name].numpy())
