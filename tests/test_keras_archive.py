"""Keras 3's native ``.keras`` file (nnengine/keras_archive.py): layout, round trips, Keras's own files, hostile ones.

The files in tests/data were written by Keras 3.15 (make_keras_files.py archives) with optimizers whose state
Keras stores in two different orders (RMSprop with momentum and centering: every velocity, then every
momentum, then every average gradient; Adam with AMSGrad: each weight's momentum and velocity, then every
velocity_hat). A loaded model must predict what Keras predicted, and one more epoch must reach the weights
Keras reached: only a correctly restored optimizer state does.
"""
import io
import json
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from keras_helpers import small_model, trained_model

import nnengine as nn
from nnengine import ModelFileError

DATA = Path(__file__).resolve().parent / "data"


def test_the_archive_has_keras_3s_members_and_config(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
        config = json.loads(archive.read("config.json"))
        metadata = json.loads(archive.read("metadata.json"))
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")))
        assert {"module": "keras", "class_name": "Sequential", "registered_name": None}.items() <= config.items()
        layers = config["config"]["layers"]
        assert [entry["class_name"] for entry in layers] == ["InputLayer", "Dense", "Dense"]
        assert all(entry["module"] == "keras.layers" for entry in layers)
        assert layers[1]["build_config"] == {"input_shape": [None, 6]}
        assert layers[2]["build_config"] == {"input_shape": [None, layers[1]["config"]["units"]]}
        compile_config = config["compile_config"]
        assert compile_config["optimizer"]["class_name"] == "Adam" and compile_config["metrics"] == ["accuracy"]
        assert compile_config["loss"] == "sparse_categorical_crossentropy"
        assert metadata["keras_version"].startswith("3.") and "date_saved" in metadata
        np.testing.assert_array_equal(weights["layers/dense/vars/0"][()], model.get_weights()[0])
        assert int(weights["optimizer/vars/0"][()]) == model.optimizer.iterations == 6


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adagrad", "adamax", "nadam", "lion", "adadelta",
                                       nn.optimizers.Ftrl(0.05, l1_regularization_strength=0.001, beta=0.1),
                                       nn.optimizers.RMSprop(momentum=0.5, centered=True),
                                       nn.optimizers.Adam(amsgrad=True), nn.optimizers.SGD(momentum=0.9)])
def test_training_resumes_from_a_saved_archive_exactly(tmp_path, optimizer):
    model, x, y = trained_model(optimizer)
    model.save(tmp_path / "model.keras")
    restored = nn.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert restored.optimizer.iterations == model.optimizer.iterations
    for m in (model, restored):
        m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name, suffix", [("keras3_cnn_rmsprop", ".keras"), ("keras3_mlp_amsgrad", ".keras"),
                                          ("keras3_mlp_adamax", ".keras"), ("keras3_mlp_nadam", ".keras"),
                                          ("keras3_mlp_nadam", ".h5")])
def test_archives_written_by_keras_load_predict_and_resume_as_keras_did(name, suffix):
    """Nadam's files hold Keras's u_product after the slots (in the .h5 file under the bare name 'variable')."""
    reference = np.load(DATA / f"{name}.npz")
    model = nn.load_model(DATA / f"{name}{suffix}")
    np.testing.assert_allclose(model.predict(reference["x"], verbose=0), reference["y"], rtol=1e-5, atol=1e-6)
    model.fit(reference["x_fit"], reference["y_fit"], epochs=1, batch_size=16, shuffle=False, verbose=0)
    after = [reference[f"after_{i}"] for i in range(len(model.get_weights()))]
    for ours, keras in zip(model.get_weights(), after):
        np.testing.assert_allclose(ours, keras, rtol=1e-4, atol=1e-5)


def test_a_keras_archive_without_compile_or_optimizer(tmp_path):
    model, x, _ = trained_model()
    model.save(tmp_path / "model.keras", include_optimizer=False)
    restored = nn.load_model(tmp_path / "model.keras")
    assert restored.compiled and restored.optimizer.iterations == 0
    assert not nn.load_model(tmp_path / "model.keras", compile=False).compiled
    uncompiled = small_model()
    uncompiled.save(tmp_path / "plain.keras")
    assert not nn.load_model(tmp_path / "plain.keras").compiled
    np.testing.assert_array_equal(nn.load_model(tmp_path / "plain.keras").predict(x, verbose=0),
                                  uncompiled.predict(x, verbose=0))


def test_saving_checks_the_model_and_the_path(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        nn.Sequential([nn.layers.Dense(2)]).save(tmp_path / "model.keras")
    model, _, _ = trained_model()
    with pytest.raises(ValueError, match=r"\.keras \(Keras 3's native file\) or \.h5"):
        model.save(tmp_path / "model.pt")
    model.save(tmp_path / "model.keras")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "model.keras", overwrite=False)
    with pytest.raises(FileNotFoundError):
        model.save(tmp_path / "missing" / "model.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]     # no temporary file left


def _archive(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _members(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.parametrize("damage, message", [
    (lambda m: {k: v for k, v in m.items() if k != "config.json"}, "config.json: missing"),
    (lambda m: {k: v for k, v in m.items() if k != "model.weights.h5"}, "model.weights.h5: missing"),
    (lambda m: {**m, "config.json": b"{not json"}, "not valid JSON"),
    (lambda m: {**m, "config.json": b"[1, 2]"}, "expected a JSON object"),
    (lambda m: {**m, "config.json": b"[" * 100_000}, "nested too deeply"),
    (lambda m: {**m, "config.json": json.dumps({"class_name": "Subclassed", "config": {}}).encode()},
     "nnengine loads Sequential and functional models"),
    (lambda m: {**m, "config.json": json.dumps({"class_name": "Functional", "config": {}}).encode()},
     "'layers' must be a list"),
    (lambda m: {**m, "model.weights.h5": b"not hdf5 at all"}, "not an HDF5 file"),
    (lambda m: {**m, "config.json": json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "os.system", "config": {}}]}}).encode()}, "cannot load layer class"),
])
def test_damaged_or_foreign_archives_are_refused_clearly(tmp_path, damage, message):
    path = _archive(tmp_path / "bad.keras", damage(_members(tmp_path)))
    with pytest.raises(ModelFileError, match=message):
        nn.load_model(path)


def test_a_compile_config_without_its_optimizer_compiles_with_rmsprop_as_keras_loads_it(tmp_path):
    """Keras 3.15 drops the optimizer from a model's compile config once it saved that model to .h5; its own
    loader then compiles with compile()'s default, RMSprop, and the stored optimizer state is left out."""
    members = _members(tmp_path)
    config = json.loads(members["config.json"])
    del config["compile_config"]["optimizer"]
    path = _archive(tmp_path / "no_optimizer.keras", {**members, "config.json": json.dumps(config).encode()})
    with pytest.warns(UserWarning, match="optimizer state .* does not match optimizer 'rmsprop'"):
        model = nn.load_model(path)
    assert model.compiled and isinstance(model.optimizer, nn.optimizers.RMSprop)
    assert model.optimizer.iterations == 0 and isinstance(model.loss, nn.losses.SparseCategoricalCrossentropy)


@pytest.mark.parametrize("metric", ["sparse_categorical_accuracy", "sparse_categorical_crossentropy"])
def test_a_loss_and_metrics_given_as_functions_load_by_their_names(tmp_path, metric):
    """Keras 3 writes ``compile(loss=keras.losses.sparse_categorical_crossentropy, metrics=[...function...])`` as
    {'class_name': 'function', 'config': name}: read as the name (nothing is run); it raised AttributeError."""
    members = _members(tmp_path)
    config = json.loads(members["config.json"])

    def function(name):
        return {"module": "builtins", "class_name": "function", "config": name, "registered_name": "function"}
    config["compile_config"].update(loss=function("sparse_categorical_crossentropy"), metrics=[function(metric)])
    path = _archive(tmp_path / "functions.keras", {**members, "config.json": json.dumps(config).encode()})
    model = nn.load_model(path)
    assert model.compiled and isinstance(model.loss, nn.losses.SparseCategoricalCrossentropy)
    x = np.random.default_rng(0).standard_normal((4, model.input_shape[-1])).astype("float32")
    assert metric in model.evaluate(x, np.arange(4) % 2, verbose=0, return_dict=True)


def test_a_file_that_is_not_a_zip_and_a_missing_file(tmp_path):
    (tmp_path / "plain.keras").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ModelFileError, match="not a zip archive"):
        nn.load_model(tmp_path / "plain.keras")
    with pytest.raises(FileNotFoundError):
        nn.load_model(tmp_path / "absent.keras")


def test_a_member_that_would_expand_implausibly_is_refused_unread(tmp_path, monkeypatch):
    from nnengine import keras_archive
    members = _members(tmp_path)
    members["model.weights.h5"] += bytes(16 << 20)            # zeros: deflate shrinks them a thousandfold
    path = _archive(tmp_path / "bomb.keras", members)
    monkeypatch.setattr(keras_archive, "MIN_CHECKED_BYTES", 1 << 20)
    with pytest.raises(ModelFileError, match="would expand"):
        nn.load_model(path)


def test_flipped_bytes_anywhere_give_a_model_file_error_or_a_model(tmp_path):
    """A small fuzz: stored and deflated archives with bytes changed at random; nothing but ModelFileError
    escapes (a corrupt deflate stream once raised zlib.error), and a file that loads loads a whole model."""
    members = _members(tmp_path)
    rng = np.random.default_rng(0)
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        with zipfile.ZipFile(tmp_path / "base.keras", "w", compression=compression) as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        original = (tmp_path / "base.keras").read_bytes()
        for _ in range(60):
            damaged = bytearray(original)
            for position in rng.integers(0, len(damaged), int(rng.integers(1, 8))):
                damaged[position] = int(rng.integers(0, 256))
            (tmp_path / "damaged.keras").write_bytes(bytes(damaged))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = nn.load_model(tmp_path / "damaged.keras")
            except ModelFileError:
                continue
            assert model.built and len(model.get_weights()) == 4


def test_members_compressed_beyond_deflate_are_refused(tmp_path):
    members = _members(tmp_path)
    with zipfile.ZipFile(tmp_path / "lzma.keras", "w", compression=zipfile.ZIP_LZMA) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match="zip method 14"):
        nn.load_model(tmp_path / "lzma.keras")


def test_loading_an_archive_never_extracts_members_by_their_own_names(tmp_path):
    members = _members(tmp_path)
    members["../escaped.txt"] = b"x"
    members["/tmp/absolute.txt"] = b"x"
    model = nn.load_model(_archive(tmp_path / "sneaky.keras", members))
    assert model.built
    assert not (tmp_path.parent / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_a_config_that_asks_for_a_huge_layer_is_refused_before_allocating(tmp_path):
    import tracemalloc
    members = _members(tmp_path)
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["config"]["units"] = 10 ** 12
    members["config.json"] = json.dumps(config).encode()
    path = _archive(tmp_path / "huge.keras", members)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="does not match the model's"):
            nn.load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2 ** 20


MASKED = Path(__file__).parent / "data" / "keras3_masked_functional.keras"


@pytest.mark.parametrize("name, input_name, classes", [
    ("text", "x", ["Embedding", "Bidirectional", "GRU", "GlobalAveragePooling1D", "Dense"]),
    ("masking", "features", ["Masking", "LSTM", "Dense"]),
    ("merge", "x", ["Embedding", "Dense", "Concatenate", "GlobalAveragePooling1D", "Dense"])])
def test_keras_functional_models_with_recorded_masks_load_and_predict_as_keras(tmp_path, name, input_name, classes):
    """Keras 3 records the masks of Embedding(mask_zero=True) and Masking in a functional model as ops (NotEqual,
    Any; LogicalOr and Concatenate where a merge layer combines them) and passes them to each layer that takes a
    mask; nnengine passes those masks on itself (tests/data/keras3_masked_functional*, make_keras_files.py
    masked_functional)."""
    record = np.load(Path(__file__).parent / "data" / "keras3_masked_functional.npz")
    model = nn.load_model(MASKED if name == "text" else MASKED.with_name(f"keras3_masked_functional_{name}.keras"))
    assert [type(layer).__name__ for layer in model.layers[1:]] == classes
    x = record[input_name]
    np.testing.assert_allclose(model.predict(x, verbose=0), record[f"{name}_predictions"], atol=1e-6)
    np.testing.assert_allclose(model.evaluate(x, record["y"], verbose=0), record[f"{name}_evaluate"], rtol=1e-6)
    model.save(tmp_path / "again.keras")
    np.testing.assert_array_equal(nn.load_model(tmp_path / "again.keras").predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def _edited(tmp_path, edit):
    with zipfile.ZipFile(MASKED) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    edit({entry["name"]: entry for entry in config["config"]["layers"]})
    return _archive(tmp_path / "edited.keras", {**members, "config.json": json.dumps(config).encode()})


@pytest.mark.parametrize("edit, message", [
    (lambda layers: layers["not_equal"].__setitem__("class_name", "Sqrt"), "Keras op 'Sqrt' is not read by nnengine"),
    (lambda layers: layers["not_equal"]["inbound_nodes"][0]["args"].__setitem__(1, 5),
     "makes a mask of a tensor that no Embedding\\(mask_zero=True\\) or Masking layer reads"),
    (lambda layers: layers["not_equal"]["inbound_nodes"][0]["args"].__setitem__(1, "0"),
     "Keras op 'NotEqual' is read only as a mask, NotEqual\\(x, a number\\)"),
    (lambda layers: layers["embedding"]["config"].__setitem__("mask_zero", False),
     "makes a mask of a tensor that no Embedding\\(mask_zero=True\\) or Masking layer reads"),
    (lambda layers: layers["gru"]["inbound_nodes"][0]["kwargs"].__setitem__(
        "mask", layers["gru"]["inbound_nodes"][0]["args"][0]), "is called with a mask that is not an Embedding"),
])
def test_masks_nnengine_cannot_derive_are_refused_by_name(tmp_path, edit, message):
    with pytest.raises(ModelFileError, match=message):
        nn.load_model(_edited(tmp_path, edit))
