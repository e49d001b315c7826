"""Keras 3's native model file, ``model.keras``: what ``model.save("model.keras")`` writes in Keras 3.

The file is a zip archive (stored, not compressed, as Keras writes it) of three members:

* ``metadata.json``: ``{"keras_version": ..., "date_saved": ...}``;
* ``config.json``: the model as Keras 3 serializes objects, ``{"module": "keras", "class_name":
  "Sequential" (or "Functional"), "config": {..., "layers": [...]}, "registered_name": null, "build_config": {...},
  "compile_config": {...}}``, each layer ``{"module": "keras.layers", "class_name": ..., "config": ...,
  "registered_name": ..., "build_config": {"input_shape": ...}}`` (the layer configs are the ones the
  ``.h5`` file holds), and the compile arguments with the optimizer as such an object too;
* ``model.weights.h5``: the weights and the optimizer's variables in Keras 3's ``.weights.h5`` layout
  (``layers/<key>/vars/<i>``, ``optimizer/vars/<i>``), written and read by saving.py.

Saving writes the archive under a temporary name and renames it over the target (safe_save.py). Loading
reads the two JSON members and the weights file only: nothing in the archive is run or unpickled, no
member is extracted under a name the archive chooses, the weights file is copied into a private
temporary folder (refusing members that expand implausibly) and then read through h5io.py's checks,
like any ``.h5`` file. Keras 3 loads the files nnengine writes, and nnengine loads the files Keras 3
writes for Sequential and functional models of its layer classes.
"""
import errno
import json
import math
import os
import tempfile
import time
import zipfile
import zlib

from . import arguments, saving, weights_file
from .h5io import ModelFileError, ModelFileReader
from .layers import stored_weights
from .output_heads import by_output_name
from .safe_save import atomic_save
from .version import __version__

__all__ = ["save_archive", "load_archive", "native_config", "training_config", "ConfigErrors", "SUFFIX"]

SUFFIX = ".keras"
CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
#: the most values one sample of a subclassed model's build shape may hold (its first call runs on one)
MAX_SAMPLE_VALUES = 1 << 24
#: the largest config.json read (a Sequential's config is a few kB per layer)
MAX_CONFIG_BYTES = 1 << 24
#: a deflated member may expand to at most this many times its compressed size (beyond MIN_CHECKED_BYTES) ...
MAX_EXPANSION = 200
#: ... a limit that only applies above this size (float weights barely compress; Keras stores them unpacked)
MIN_CHECKED_BYTES = 1 << 26
#: the compressions a member may use: none (as Keras writes) or deflate (a zip tool's re-pack); bzip2 and lzma,
#: whose expansion has no practical bound, are refused
READ_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------
def save_archive(model, filepath, overwrite=True, include_optimizer=True):
    """Write ``model`` to a Keras 3 ``.keras`` file (see the module docstring), atomically."""
    path = arguments.path("save", "filepath", filepath)
    include_optimizer = arguments.boolean("save", "include_optimizer", include_optimizer)
    if not model.built:
        raise ValueError(f"save: model {model.name!r} is not built yet; build it or train it first")
    config = json.dumps(native_config(model))
    metadata = json.dumps({"keras_version": saving.KERAS_LAYOUT_VERSION, "nnengine_version": __version__,
                           "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S")})
    with tempfile.TemporaryDirectory(prefix="nnengine-save-") as scratch:
        weights = os.path.join(scratch, WEIGHTS)
        weights_file.save_weights(model, weights, include_optimizer=include_optimizer)

        def write(file):
            with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
                archive.writestr(METADATA, metadata)
                archive.writestr(CONFIG, config)
                archive.write(weights, WEIGHTS)

        atomic_save("save", path, overwrite, write, hdf5=False)


def native_config(model):
    """The model's config.json as Keras 3 writes it: its h5 config, each object given its module, each layer its
    build config (the input shape it was built for). A subclassed model: its class and own config."""
    if getattr(model, "_subclassed", False):
        return _subclassed_config(model)
    config = model.get_config()
    functional = model.keras_class_name == "Functional"
    native = {"module": "keras.src.models.functional" if functional else "keras",
              "class_name": model.keras_class_name, "config": config,
              "registered_name": "Functional" if functional else None, "build_config": {"input_shape": None}}
    if not model.built:                      # Keras writes an unbuilt model without shapes
        return native
    shapes = _layer_input_shapes(model)
    layers = []
    for entry, layer in zip(config["layers"], _config_layers(model)):
        native_entry = {"module": "keras.layers", "class_name": entry["class_name"], "config": entry["config"],
                        "registered_name": entry.get("registered_name")}
        if _is_model(layer):                 # a model used as a layer: its own config.json entry, as Keras nests it
            nested = native_config(layer)
            native_entry = {key: nested[key] for key in ("module", "class_name", "config", "registered_name")}
            native_entry["build_config"] = {"input_shape": shapes[layer] if entry["class_name"] == "Sequential"
                                            else None}      # Keras's: a functional model is built by its config
        elif layer is not None:
            if native_entry["registered_name"] is not None:
                native_entry["module"] = type(layer).__module__
            shape = shapes[layer]               # named inputs (attention): Keras's shapes_dict
            native_entry["build_config"] = {"shapes_dict": {f"{name}_shape": value for name, value in shape.items()}} \
                if isinstance(shape, dict) else {"input_shape": shape}
        layers.append({**native_entry, **{key: entry[key] for key in ("name", "inbound_nodes") if key in entry}})
    native["config"] = {**config, "layers": layers}
    if not functional:
        native["config"]["build_input_shape"] = native["build_config"]["input_shape"] = list(model.input_shape)
    if model.compiled and model.loss is not None:
        native["compile_config"] = _native_compile_config(saving.training_config(model))
    return native


def _is_model(layer):
    return getattr(layer, "keras_class_name", None) in ("Sequential", "Functional")


def _subclassed_config(model):
    """A subclassed model's config.json: its class (found again by registered name or custom_objects), its
    get_config(), and the input shape that builds it."""
    native = {"module": type(model).__module__, "class_name": type(model).__name__, "config": model.get_config(),
              "registered_name": saving.registered_name(type(model)),
              "build_config": {"input_shape": list(model.input_shape) if model.built else None}}
    if model.compiled and model.loss is not None:
        native["compile_config"] = _native_compile_config(saving.training_config(model))
    return native


def _config_layers(model):
    """The layer of each entry of the model's config, None for an InputLayer entry."""
    if model.keras_class_name == "Functional":
        return [None if type(layer).__name__ == "InputLayer" else layer for layer in model.layers]
    return ([None] if model._input_layer is not None else []) + list(model.layers)


def _layer_input_shapes(model):
    """{layer: the input shape it was built for}, as lists (Keras's JSON)."""
    if model.keras_class_name == "Functional":
        return model.layer_input_shapes()
    shapes, shape = {}, tuple(model.input_shape)
    for layer in model.layers:
        shapes[layer] = list(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shapes


def _native_compile_config(training):
    """compile()'s arguments as Keras 3's config.json holds them: the optimizer as a serialized object."""
    compile_config = {key: value for key, value in training.items() if key != "optimizer_config"}
    optimizer = training["optimizer_config"]
    compile_config["optimizer"] = {"module": "keras.optimizers", "class_name": optimizer["class_name"],
                                   "config": optimizer["config"], "registered_name": None}
    compile_config["loss"] = _native_loss(compile_config.get("loss"))
    return compile_config


def _native_loss(loss):
    """A loss as config.json holds it: a class's config as a serialized object; a list or dict by output name of
    them, entry by entry."""
    if isinstance(loss, list):
        return [_native_loss(entry) for entry in loss]
    if by_output_name(loss):
        return {name: _native_loss(entry) for name, entry in loss.items()}
    if isinstance(loss, dict):
        return {"module": "keras.losses", "registered_name": None, **loss}
    return loss


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------
def load_archive(filepath, model_class, compile=True, custom_objects=None):
    """Read a ``.keras`` file written by nnengine or Keras 3 (a Sequential, a functional or a subclassed model);
    ``ModelFileError`` if malformed."""
    path = arguments.path("load_model", "filepath", filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, f"load_model: no such file {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"load_model: {path!r} is a directory, not a .keras file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError("load_model", path, "the start of the file", "not a zip archive (a .keras file is one)")
    with tempfile.TemporaryDirectory(prefix="nnengine-load-") as scratch:
        weights = os.path.join(scratch, WEIGHTS)
        try:
            with zipfile.ZipFile(path) as archive:
                config = _config_member(archive, path)
                _copy_member(archive, WEIGHTS, weights, path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, RuntimeError) as error:
            raise ModelFileError("load_model", path, "the archive", f"{type(error).__name__}: {error}") from None
        try:
            return _model_from_files(config, weights, f"{path}:{WEIGHTS}", model_class, compile, custom_objects)
        except ModelFileError as error:
            if error.path != weights:
                raise
            raise ModelFileError("load_model", f"{path}:{WEIGHTS}", error.where, error.problem) from None


def _model_from_files(config, weights, shown_path, model_class, compile, custom_objects):
    """The model of config.json with the weights (and the compile arguments and optimizer state) of the
    extracted weights file ``weights``, read through h5io's checks; errors name ``shown_path``."""
    with ModelFileReader.open(weights, "load_model") as reader:
        reader.path = shown_path
        model = _model_from_config(config, model_class, custom_objects, reader)
        training = training_config(config.get("compile_config"), reader) if compile else None
        if training is not None:
            saving.compile_from_config(model, training, reader, custom_objects)
            if model.compiled and reader.has("optimizer/vars"):
                weights_file.restore_optimizer_variables(model, reader)
    return model


def _config_member(archive, path):
    """config.json's model: a dict naming a Sequential or a functional model."""
    text = _read_member(archive, CONFIG, path, MAX_CONFIG_BYTES)
    try:
        config = json.loads(text.decode("utf8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelFileError("load_model", path, CONFIG, f"not valid JSON: {error}") from None
    except RecursionError:
        raise ModelFileError("load_model", path, CONFIG, "the JSON is nested too deeply") from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ModelFileError("load_model", path, CONFIG, "expected a JSON object with a 'config' object")
    return config


class ConfigErrors:
    """A reader's ``error``, ``caller`` and ``path`` for a config outside an HDF5 file (an archive's member, a
    JSON string): the ModelFileError of a problem there."""

    def __init__(self, caller, path):
        self.caller, self.path = caller, path

    def error(self, where, problem):
        """The ModelFileError for ``problem`` at ``where``."""
        return ModelFileError(self.caller, self.path, where, problem)


def _member_info(archive, name, path):
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ModelFileError("load_model", path, name, "missing: a .keras file holds config.json, metadata.json "
                                                       "and model.weights.h5") from None
    if info.compress_type not in READ_COMPRESSIONS:
        raise ModelFileError("load_model", path, name, f"compressed with zip method {info.compress_type}; nnengine "
                                                       "reads stored or deflated members")
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > MIN_CHECKED_BYTES and \
            info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
        raise ModelFileError("load_model", path, name, f"would expand {info.compress_size} bytes to "
                                                       f"{info.file_size}: refused")
    return info


def _read_member(archive, name, path, limit):
    info = _member_info(archive, name, path)
    if info.file_size > limit:
        raise ModelFileError("load_model", path, name, f"{info.file_size} bytes, more than the {limit} read")
    with archive.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise ModelFileError("load_model", path, name, f"longer than the {limit} bytes read")
    return data


def _copy_member(archive, name, target, path):
    """Copy member ``name`` to the file ``target``, never more bytes than its header declares."""
    info = _member_info(archive, name, path)
    copied = 0
    with archive.open(info) as member, open(target, "wb") as out:
        while True:
            chunk = member.read(1 << 22)
            if not chunk:
                break
            copied += len(chunk)
            if copied > info.file_size:
                break
            out.write(chunk)
    if copied != info.file_size:
        raise ModelFileError("load_model", path, name, f"holds {'more' if copied > info.file_size else copied} "
                                                       f"bytes, its header says {info.file_size}")


def subclass_of(native, model_class, custom_objects):
    """The user's subclass of ``model_class`` that a serialized model names (by its registered name, or its class
    name in ``custom_objects``), or None for a Sequential or functional model. Nothing is imported to find it."""
    if native.get("class_name") in ("Sequential", "Functional", "Model"):
        return None
    for name in (native.get("registered_name"), native.get("class_name")):
        found = saving.get_registered_object(name, custom_objects) if isinstance(name, str) else None
        if isinstance(found, type) and issubclass(found, model_class):
            return found
    return None


def _model_from_config(native, model_class, custom_objects, reader):
    """The model of config.json, each weight taken from the weights file as its layer is built (compared
    with the stored shape first: the file bounds what is allocated)."""
    where = CONFIG
    subclass = subclass_of(native, model_class, custom_objects)
    if subclass is not None:
        return _subclassed_model(native, subclass, reader)
    native = {**native, "config": saving.model_config_of(native, reader, where)}
    stored = weights_file.StoredWeights(reader, weights_file.config_layer_keys(native["config"], reader))
    try:
        with stored_weights(stored):
            model = model_class.from_config(native["config"], custom_objects=custom_objects)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise reader.error(where, f"{type(error).__name__}: {error}") from None
    if not model.built:
        raise reader.error(where, "the config gives no input shape, so the stored weights cannot be matched to "
                                  "the layers")
    stored.finish()
    return model


def _subclassed_model(native, subclass, reader):
    """A subclassed model: made from its config (``subclass.from_config``), built by one call on the build
    config's input shape, then given the stored weights (Keras 3's layout for it, weights_file.weight_groups)."""
    shape = (native.get("build_config") or {}).get("input_shape")
    try:
        model = subclass.from_config(native["config"])
        if not isinstance(shape, list) or len(shape) < 2:
            raise ValueError(f"the build config gives no input shape (got {shape!r:.80}), so the stored weights "
                             "cannot be matched to the layers")
        sizes = [size for size in shape[1:] if size is not None]
        if not all(isinstance(size, int) and 0 < size for size in sizes) or math.prod(sizes) > MAX_SAMPLE_VALUES:
            raise ValueError(f"the build config's input shape {shape!r:.80} is not a plausible sample shape (at most "
                             f"{MAX_SAMPLE_VALUES} values)")
        model.build(tuple(shape))
    except (KeyError, TypeError, ValueError) as error:
        raise reader.error(CONFIG, f"{subclass.__name__}: {type(error).__name__}: {error}") from None
    weights_file.read_keras3_weights(reader, model)
    return model


def training_config(compile_config, reader):
    """config.json's compile_config in the form saving.compile_from_config reads (an .h5 training_config)."""
    if not compile_config:                   # None, or Keras's {} for a model saved uncompiled
        return None
    if not isinstance(compile_config, dict) or not isinstance(compile_config.get("optimizer", {}), (dict, str)):
        raise reader.error(f"{CONFIG}: compile_config", "expected a dict with an optimizer dict")
    # Keras 3.15 drops the optimizer from a model's compile config once that model was saved to .h5; its loader
    # then compiles with compile()'s default optimizer, RMSprop, and so does this one
    optimizer = compile_config.get("optimizer") or "RMSprop"
    if isinstance(optimizer, str):
        optimizer = {"class_name": optimizer, "config": {}}
    name = optimizer.get("registered_name") or optimizer.get("class_name")
    return {**compile_config, "optimizer_config": {"class_name": name, "config": optimizer.get("config")}}
