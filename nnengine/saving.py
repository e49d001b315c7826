"""Model files in Keras's formats, through h5py: never pickle, never code.

* ``save_model`` / ``load_model``: Keras's legacy HDF5 file (``model.h5``).
  Root attributes ``model_config`` and ``training_config`` (JSON),
  ``keras_version`` and ``backend``; group ``model_weights`` (attribute
  ``layer_names``; one group per layer with attribute ``weight_names``, each a
  path to a dataset inside that group); group ``optimizer_weights``
  (``weight_names`` such as ``adam/iteration``, ``adam/learning_rate``,
  ``adam/<model>_<layer>_kernel_momentum``).
* ``save_weights`` / ``load_weights``: Keras 3's ``.weights.h5`` file: group
  ``layers/<key>/vars`` with datasets "0", "1", ... per layer, where the key is
  the layer's class name in snake case, numbered by position ("dense",
  "dense_1", ...), and ``optimizer/vars`` with the optimizer's variables.

Files that Keras itself wrote load too: Keras 3's names (``sequential/dense/kernel``)
and tf.keras 2.x's (``dense/kernel:0``), for Sequential models of nnengine's layer
classes. Every save writes a temporary file beside the target and renames it over
the target only once it is complete, so a failed save leaves the old file intact.
Loading reads JSON and numeric datasets only; a layer or class name that nnengine
does not know is an error, never an import.
"""
import json
import os
import tempfile
import warnings

import h5py
import numpy as np

from . import losses as losses_module
from . import optimizers as optimizers_module
from .utils import snake_case
from .version import __version__

#: the Keras version whose file layout these files follow
KERAS_LAYOUT_VERSION = "3.0.0"
BACKEND_NAME = "nnengine"

__all__ = ["save_model", "load_model", "save_weights", "load_weights"]


# ---------------------------------------------------------------------------------------------
# Atomic writes and careful reads
# ---------------------------------------------------------------------------------------------
def _atomic_h5(path, overwrite, write):
    """Write an HDF5 file with ``write(h5file)`` to a temporary name, then rename it over ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path!r}: the directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path!r}: it is a directory")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} exists and overwrite=False")
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".nnengine-", suffix=".h5.tmp")
    except OSError as error:
        raise PermissionError(f"cannot save to {path!r}: cannot write in {directory!r} ({error.strerror})") from None
    os.close(handle)
    try:
        with h5py.File(temporary, "w") as f:
            write(f)
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(temporary, _new_file_mode(path))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _new_file_mode(path):
    """The permissions the saved file gets: those of the file it replaces, else what the umask allows.

    (mkstemp creates its file private, 0600; without this a save would quietly narrow the permissions.)
    """
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _open_h5(path, caller):
    """Open an HDF5 file for reading, turning a missing, foreign or truncated file into a clear error."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{caller}: no such file {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{caller}: {path!r} is a directory; nnengine reads .h5 files")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{caller}: {path!r} is not an HDF5 file (nnengine reads Keras .h5 files)")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{caller}: cannot read {path!r}: the HDF5 file is truncated or corrupted ({error})") \
            from None


def _text(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _string_list(group, name):
    """A list-of-strings attribute, also when Keras split a large one into name0, name1, ..."""
    if name in group.attrs:
        return [_text(v) for v in np.atleast_1d(group.attrs[name])] if len(group.attrs[name]) else []
    values, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        values.extend(_text(v) for v in group.attrs[f"{name}{chunk}"])
        chunk += 1
    return values


def _json_attribute(f, name, caller, path):
    if name not in f.attrs:
        return None
    try:
        return json.loads(_text(f.attrs[name]))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{caller}: {path!r} has an unreadable {name} attribute: {error}") from None


def _numeric(dataset, caller, name):
    """A dataset's values, refusing anything but plain numbers (no objects, no references)."""
    if dataset.dtype.kind not in "biuf":
        raise ValueError(f"{caller}: weight {name!r} holds {dataset.dtype}, not numbers")
    return np.asarray(dataset[()])


# ---------------------------------------------------------------------------------------------
# The legacy .h5 model file
# ---------------------------------------------------------------------------------------------
def _training_config(model):
    spec = model._compile_config
    return {"loss": losses_module.serialize(model.loss, spec.get("loss")),
            "loss_weights": None,
            "metrics": [m if isinstance(m, str) else getattr(m, "name", str(m)) for m in spec.get("metrics") or []],
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False,
            "optimizer_config": optimizers_module.serialize(model.optimizer)}


def _weight_path(model, layer, weight_name):
    return f"{model.name}/{layer.name}/{weight_name}"


def _write_model_weights(group, model):
    group.attrs["backend"] = BACKEND_NAME
    group.attrs["keras_version"] = KERAS_LAYOUT_VERSION
    group.attrs["layer_names"] = np.array([layer.name.encode("utf8") for layer in model.layers])
    for layer in model.layers:
        layer_group = group.create_group(layer.name)
        paths = [_weight_path(model, layer, name) for name in layer.weight_names]
        layer_group.attrs["weight_names"] = np.array([p.encode("utf8") for p in paths])
        for path, weight in zip(paths, layer.weights):
            layer_group.create_dataset(path, data=weight.numpy())
    top = group.create_group("top_level_model_weights")
    top.attrs["weight_names"] = np.array([], dtype="S1")


def _optimizer_variable_names(model):
    """Keras 3's names: '<opt>/iteration', '<opt>/learning_rate', '<opt>/<model>_<layer>_<weight>_<slot>'."""
    optimizer = model.optimizer
    by_param = {id(w): (layer, name) for layer in model.layers for w, name in zip(layer.weights, layer.weight_names)}
    names = []
    for entry in optimizer.variables():
        if len(entry) == 2:
            names.append((f"{optimizer.name}/{entry[0]}", entry[1]))
        else:
            slot_name, tensor, param = entry
            layer, weight_name = by_param[id(param)]
            names.append((f"{optimizer.name}/{model.name}_{layer.name}_{weight_name}_{slot_name}", tensor))
    return names


def _write_optimizer_weights(f, model):
    variables = _optimizer_variable_names(model)
    group = f.create_group("optimizer_weights")
    group.attrs["weight_names"] = np.array([name.encode("utf8") for name, _ in variables])
    for name, value in variables:
        group.create_dataset(name, data=value.numpy() if hasattr(value, "numpy") else value)


def save_model(model, filepath, overwrite=True, include_optimizer=True):
    """Write ``model`` to a Keras legacy HDF5 file (see the module docstring), atomically."""
    path = os.fspath(filepath)
    if not path.endswith((".h5", ".hdf5")):
        raise ValueError(f"save: nnengine writes Keras's HDF5 format; give a filename ending in .h5, got {path!r}")
    if not model.built:
        raise ValueError(f"save: model {model.name!r} is not built yet; build it or train it first")

    def write(f):
        f.attrs["keras_version"] = KERAS_LAYOUT_VERSION
        f.attrs["backend"] = BACKEND_NAME
        f.attrs["nnengine_version"] = __version__
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": model.get_config()})
        if model.compiled and model.loss is not None:
            f.attrs["training_config"] = json.dumps(_training_config(model))
        _write_model_weights(f.create_group("model_weights"), model)
        if include_optimizer and model.compiled and model.optimizer.has_state:
            _write_optimizer_weights(f, model)

    _atomic_h5(path, overwrite, write)


def _read_layer_weights(group, model, caller, path):
    """Assign each layer's weights from a legacy weights group (layer groups named by layer name)."""
    stored = _string_list(group, "layer_names")
    stored_with_weights = [name for name in stored if _string_list(group[name], "weight_names")]
    layers = [layer for layer in model.layers if layer.weights]
    if len(stored_with_weights) != len(layers):
        raise ValueError(f"{caller}: {path!r} holds weights for {len(stored_with_weights)} layers, the model has "
                         f"{len(layers)} layers with weights")
    for layer, name in zip(layers, stored_with_weights):
        layer_group = group[name]
        names = _string_list(layer_group, "weight_names")
        values = [_numeric(layer_group[n], caller, n) for n in names]
        layer.set_weights(values)


def _compile_from_config(model, config, caller):
    """Compile from a training_config (Keras 3's or tf.keras 2.x's); warn and stay uncompiled if it cannot."""
    try:
        optimizer = dict(config["optimizer_config"])
        optimizer["class_name"] = optimizer["class_name"].split(">")[-1]      # tf.keras 2.x: 'Custom>Adam'
        loss = config["loss"]
        metrics = [_metric_name(m) for m in _flatten(config.get("metrics") or [])]
        model.compile(optimizer=optimizers_module.get(optimizer), loss=loss, metrics=metrics)
    except (KeyError, TypeError, ValueError) as error:
        warnings.warn(f"{caller}: the file's training configuration could not be used ({error}); the model is "
                      "returned uncompiled: call compile() before fit()", stacklevel=3)


def _flatten(items):
    for item in items:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def _metric_name(metric):
    """A metric as written by Keras 3 (a name) or tf.keras 2.x (a MeanMetricWrapper config dict)."""
    if isinstance(metric, dict):
        return (metric.get("config") or {}).get("name") or metric.get("class_name")
    return metric


def _restore_optimizer(model, f, caller):
    """Reload optimizer state saved by nnengine or Keras 3 (names '<opt>/<model>_<layer>_<weight>_<slot>')."""
    group = f["optimizer_weights"]
    names = _string_list(group, "weight_names")
    optimizer = model.optimizer
    prefix = f"{optimizer.name}/"
    if not names or not all(n.startswith(prefix) for n in names):
        return False
    stored = {n[len(prefix):]: group[n] for n in names}
    if "iteration" not in stored:
        return False
    slots = {}
    for layer in model.layers:
        for weight, weight_name in zip(layer.weights, layer.weight_names):
            for slot_name in optimizer.active_slot_names():
                key = f"{model.name}_{layer.name}_{weight_name}_{slot_name}"
                if key not in stored or stored[key].shape != weight.shape:
                    return False
                slots[(id(weight), slot_name)] = (weight, _numeric(stored[key], caller, key))
    for (_, slot_name), (weight, value) in slots.items():
        optimizer.slots(weight)[slot_name].assign_(value)
    optimizer.iterations = int(_numeric(stored["iteration"], caller, "iteration"))
    return True


def load_model(filepath, model_class, compile=True):
    """Read a model written by ``save_model`` or by Keras (a Sequential of Dense, Activation, Dropout, Flatten).

    ``model_class`` (``Sequential``) rebuilds the model from its config: models.py calls this with
    it, so this module never imports the models it reads and writes.
    """
    caller = "load_model"
    with _open_h5(filepath, caller) as f:
        config = _json_attribute(f, "model_config", caller, filepath)
        if config is None:
            raise ValueError(f"{caller}: {filepath!r} holds no model_config: it is not a model saved with "
                             "model.save() (for a weights file use model.load_weights)")
        if config.get("class_name") != "Sequential":
            raise ValueError(f"{caller}: {filepath!r} holds a {config.get('class_name')!r} model; nnengine "
                             "loads Sequential models")
        model = model_class.from_config(config.get("config") or {})
        _read_layer_weights(f["model_weights"] if "model_weights" in f else f, model, caller, filepath)
        training_config = _json_attribute(f, "training_config", caller, filepath) if compile else None
        if training_config is not None:
            _compile_from_config(model, training_config, caller)
            if model.compiled and "optimizer_weights" in f:
                _restore_optimizer(model, f, caller)
    return model


# ---------------------------------------------------------------------------------------------
# Keras 3's .weights.h5
# ---------------------------------------------------------------------------------------------
def _layer_keys(model):
    """Keras 3's keys for the layers of a Sequential: class names in snake case, numbered per class."""
    counts, keys = {}, []
    for layer in model.layers:
        base = snake_case(type(layer).__name__)
        count = counts.get(base, 0)
        counts[base] = count + 1
        keys.append(base if count == 0 else f"{base}_{count}")
    return keys


def save_weights(model, filepath, overwrite=True):
    """Write the weights (and the optimizer's variables) to a Keras 3 ``.weights.h5`` file, atomically."""
    path = os.fspath(filepath)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"save_weights: the filename must end in .weights.h5 (Keras 3's rule), got {path!r}")

    def write(f):
        layers_group = f.create_group("layers")
        for key, layer in zip(_layer_keys(model), model.layers):
            variables = layers_group.create_group(key).create_group("vars")
            variables.attrs["name"] = layer.name
            for index, weight in enumerate(layer.weights):
                variables.create_dataset(str(index), data=weight.numpy())
        f.create_group("vars").attrs["name"] = model.name
        if model.optimizer is not None and model.optimizer.has_state:
            variables = f.create_group("optimizer").create_group("vars")
            variables.attrs["name"] = model.optimizer.name
            for index, (_, value) in enumerate(_optimizer_variable_names(model)):
                variables.create_dataset(str(index), data=value.numpy() if hasattr(value, "numpy") else value)

    _atomic_h5(path, overwrite, write)


def load_weights(model, filepath):
    """Read weights from a ``.weights.h5`` file (Keras 3 layout) or a legacy ``.h5`` file into a built model."""
    caller = "load_weights"
    if not model.built:
        raise ValueError(f"{caller}: build model {model.name!r} before loading weights into it")
    with _open_h5(filepath, caller) as f:
        if "layers" in f:
            for key, layer in zip(_layer_keys(model), model.layers):
                if not layer.weights:
                    continue
                if f"layers/{key}/vars" not in f:
                    raise ValueError(f"{caller}: {filepath!r} has no weights for layer {layer.name!r} (key {key!r})")
                variables = f[f"layers/{key}/vars"]
                layer.set_weights([_numeric(variables[str(i)], caller, f"{key}/{i}")
                                   for i in range(len(variables))])
        elif "model_weights" in f or "layer_names" in f.attrs:
            _read_layer_weights(f["model_weights"] if "model_weights" in f else f, model, caller, filepath)
        else:
            raise ValueError(f"{caller}: {filepath!r} holds no Keras weights")
