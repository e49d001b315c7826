"""Model files in Keras's formats, through h5py: never pickle, never code.

* ``save_model`` / ``load_model``: Keras's legacy HDF5 file (``model.h5``).
  Root attributes ``model_config`` and ``training_config`` (JSON),
  ``keras_version`` and ``backend``; group ``model_weights`` (attribute
  ``layer_names``; one group per layer with attribute ``weight_names``, each a
  path to a dataset inside that group); group ``optimizer_weights``
  (``weight_names`` such as ``adam/iteration``, ``adam/learning_rate``,
  ``adam/<model>_<layer>_kernel_momentum``).
* Keras 3's ``.weights.h5`` file is weights_file.py's, its ``.keras`` archive keras_archive.py's.

Files that Keras itself wrote load too: Keras 3's names (``sequential/dense/kernel``)
and tf.keras 2.x's (``dense/kernel:0``), for Sequential and functional models of nnengine's
layer classes. Saves are atomic and loads are checked (h5io.py: temporary file and rename,
checksums, no data from outside the file, one ``ModelFileError`` for every malformed
file). Loading reads JSON and numeric datasets only; a layer or class name that
nnengine does not know is an error, never an import. A model is built from its
config with each weight taken from the file as the layer asks for it, so every
shape is checked against the stored one before anything is allocated.
"""
import json
import math
import types
import warnings

import numpy as np

from . import arguments
from . import losses as losses_module
from . import optimizers as optimizers_module
from .h5io import ModelFileError, ModelFileReader
from .registry import get_registered_object, register_keras_serializable, registered_classes, registered_name
from .safe_save import CONFIG_CHECKSUMS, atomic_save, json_checksums, write_dataset
from .layers import Layer, stored_weights
from .output_heads import by_output_name, metric_name
from .version import __version__

#: the Keras version whose file layout these files follow
KERAS_LAYOUT_VERSION = "3.0.0"
BACKEND_NAME = "nnengine"

__all__ = ["save_model", "load_model", "ModelFileError",
           "register_keras_serializable", "get_registered_object", "registered_name", "layer_classes"]


def layer_classes(builtin, custom_objects=None):
    """Every layer class a config may name: nnengine's, the registered ones (also by bare class name) and
    ``custom_objects``."""
    known = dict(builtin)
    for key, cls in registered_classes().items():
        known.setdefault(key, cls)
    known.update(custom_objects or {})
    return known


# ---------------------------------------------------------------------------------------------
# The legacy .h5 model file
# ---------------------------------------------------------------------------------------------
def training_config(model):
    """compile()'s arguments as Keras 3's training_config (the .h5 attribute; .keras files wrap it): the loss,
    loss weights and metrics in the structure compile got them (one, a list per output, a dict by output name)."""
    spec = model._compile_config
    return {"loss": _per_entry(spec.get("loss"), lambda loss: losses_module.serialize(losses_module.get(loss), loss)),
            "loss_weights": _per_entry(spec.get("loss_weights"), float),
            "metrics": _per_entry(spec.get("metrics"), metric_name),    # null for compile(metrics=None), as Keras
            "weighted_metrics": _per_entry(spec.get("weighted_metrics"), metric_name),
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False,
            "optimizer_config": optimizers_module.serialize(model.optimizer)}


def _per_entry(value, convert):
    """``convert`` applied to each item of a value of compile (one, a list, a dict by output name, lists nested in
    them), None kept: what compile got, as JSON."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(name): _per_entry(entry, convert) for name, entry in value.items()}
    if isinstance(value, (list, tuple)):
        return [_per_entry(entry, convert) for entry in value]
    return convert(value)


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
            write_dataset(layer_group, path, weight.numpy())
    top = group.create_group("top_level_model_weights")
    top.attrs["weight_names"] = np.array([], dtype="S1")


def _weight_keys(model, owners=()):
    """(weight, owners, key) for each weight of ``model``: the names of the models that hold it, outermost first
    (a model used as a layer holds its layers' weights), and '<layer>_<weight>', the weight's path joined by '_'
    (a cell's 'lstm_cell/kernel': 'lstm_cell_kernel')."""
    owners = (*owners, model.name)
    for part in model.layers:
        if not isinstance(part, Layer):
            yield from _weight_keys(part, owners)
            continue
        for weight, name in zip(part.weights, part.weight_names):
            yield weight, owners, f"{part.name}_{name.replace('/', '_')}"


def _optimizer_variable_names(model):
    """Keras 3's names: '<opt>/iteration', '<opt>/learning_rate', '<opt>/<model>_<layer>_<weight>_<slot>' (a nested
    model's weight: '<opt>/<model>_<nested model>_<layer>_<weight>_<slot>')."""
    optimizer = model.optimizer
    by_param = {id(weight): "_".join((*owners, key)) for weight, owners, key in _weight_keys(model)}
    names = []
    for entry in optimizer.variables():
        if len(entry) == 2:
            names.append((f"{optimizer.name}/{entry[0]}", entry[1]))
        else:
            slot_name, tensor, param = entry
            names.append((f"{optimizer.name}/{by_param[id(param)]}_{slot_name}", tensor))
    return names + optimizer.extra_variables()
def _host_values(variables):
    """(name, numpy array) for each optimizer variable, copied to the host before a file is opened."""
    return [(name, value.numpy() if hasattr(value, "numpy") else np.asarray(value)) for name, value in variables]


def _write_optimizer_weights(f, variables):
    group = f.create_group("optimizer_weights")
    group.attrs["weight_names"] = np.array([name.encode("utf8") for name, _ in variables])
    for name, value in variables:
        write_dataset(group, name, value)


def save_model(model, filepath, overwrite=True, include_optimizer=True):
    """Write ``model`` to a Keras legacy HDF5 file (see the module docstring), atomically."""
    path = _checked_path("save", filepath, (".h5", ".hdf5"), "give a filename ending in .keras (Keras 3's native "
                                                           "file) or .h5 (its legacy HDF5 file)")
    include_optimizer = arguments.boolean("save", "include_optimizer", include_optimizer)
    if not model.built:
        raise ValueError(f"save: model {model.name!r} is not built yet; build it or train it first")
    if getattr(model, "_subclassed", False):
        raise ValueError(f"save: model {model.name!r} is a subclassed model, which Keras's legacy .h5 file cannot "
                         "describe; save it as .keras (its class is found again by custom_objects or "
                         "register_keras_serializable) or use save_weights")
    # everything that can fail for reasons other than the disk happens before the file is opened
    texts = {"model_config": json.dumps({"class_name": model.keras_class_name, "config": model.get_config()})}
    if model.compiled and model.loss is not None:
        texts["training_config"] = json.dumps(training_config(model))
    optimizer = _host_values(_optimizer_variable_names(model)) \
        if include_optimizer and model.compiled and model.optimizer.has_state else None

    def write(f):
        f.attrs["keras_version"] = KERAS_LAYOUT_VERSION
        f.attrs["backend"] = BACKEND_NAME
        f.attrs["nnengine_version"] = __version__
        f.attrs[CONFIG_CHECKSUMS] = json_checksums(**texts)
        for name, text in texts.items():
            f.attrs[name] = text
        _write_model_weights(f.create_group("model_weights"), model)
        if optimizer is not None:
            _write_optimizer_weights(f, optimizer)

    atomic_save("save", path, overwrite, write)


def _checked_path(caller, filepath, suffixes, hint):
    path = arguments.path(caller, "filepath", filepath)
    if not path.endswith(suffixes):
        raise ValueError(f"{caller}: {hint}, got {path!r}")
    return path


class _StoredLayerWeights:
    """The weights of a legacy weights group, handed to layers in order as they are built.

    Keras matches layers with weights to stored layers with weights by position; each layer's
    ``add_weight`` calls this in the layer's weight order, and gets the stored array after its
    shape was compared with the one the layer asks for (before any data is read).
    """

    def __init__(self, reader, group_path):
        self.reader = reader
        names = reader.string_list(group_path, "layer_names")
        self.stored = []
        for name in names:
            layer_path = f"{group_path.rstrip('/')}/{name}"
            weight_names = reader.string_list(layer_path, "weight_names")
            if weight_names:
                self.stored.append((name, [f"{layer_path}/{w}" for w in weight_names]))
        self.position, self.taken, self.layer = -1, 0, None

    def nested(self, name, config):
        """The source of the layers of the model ``name`` used as a layer: Keras stores all its weights, in
        order, in one group of its own, so they are handed out as if to one layer."""
        model = types.SimpleNamespace(name=name)
        return lambda layer, weight_name, shape: self(model, weight_name, shape)

    def __call__(self, layer, weight_name, shape):
        if layer is not self.layer:
            self._finish_layer()
            self.position, self.taken, self.layer = self.position + 1, 0, layer
        if self.position >= len(self.stored):
            raise self.reader.error("model_weights", f"layer {layer.name!r} has weights, but the file stores "
                                                     f"weights for {len(self.stored)} layers only")
        name, paths = self.stored[self.position]
        if self.taken >= len(paths):
            raise self.reader.error(f"model_weights/{name}", f"layer {layer.name!r} needs more weights than the "
                                                             f"{len(paths)} stored")
        self.taken += 1
        return self.reader.array(paths[self.taken - 1], expected_shape=shape)

    def _finish_layer(self):
        if self.layer is not None and self.taken != len(self.stored[self.position][1]):
            name, paths = self.stored[self.position]
            raise self.reader.error(f"model_weights/{name}", f"stores {len(paths)} weights, layer "
                                                             f"{self.layer.name!r} has {self.taken}")

    def finish(self):
        """Check that every stored layer and weight went to the model."""
        self._finish_layer()
        if self.position + 1 != len(self.stored):
            raise self.reader.error("model_weights", f"the file stores weights for {len(self.stored)} layers, the "
                                                     f"model has {self.position + 1} layers with weights")


def _read_layer_weights(reader, group_path, model):
    """Assign each layer's weights of an existing model from a legacy weights group (load_weights)."""
    stored = _StoredLayerWeights(reader, group_path)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([stored(layer, name, weight.shape) for name, weight in
                               zip(layer.weight_names, layer.weights)])
    stored.finish()


def compile_from_config(model, config, reader, custom_objects=None):
    """Compile from a training_config (Keras 3's or tf.keras 2.x's); warn and stay uncompiled if it cannot.

    A loss or metric named in ``custom_objects`` (a function or class the user passed) is used by name.
    """
    if not isinstance(config, dict) or not isinstance(config.get("optimizer_config"), dict):
        raise reader.error("attribute training_config", "expected a dict with an optimizer_config dict")
    custom = custom_objects or {}
    try:
        optimizer = dict(config["optimizer_config"])
        optimizer["class_name"] = str(optimizer["class_name"]).split(">")[-1]      # tf.keras 2.x: 'Custom>Adam'
        def named(entry):                       # a name the user's custom_objects give, or the entry itself
            return custom.get(entry, entry) if isinstance(entry, str) else entry
        loss = _stored(config["loss"], named)
        metrics, weighted = (_stored(config.get(key), named, metric=True) for key in ("metrics", "weighted_metrics"))
        model.compile(optimizer=optimizers_module.get(optimizer), loss=loss, metrics=metrics,
                      loss_weights=config.get("loss_weights"), weighted_metrics=weighted)
    except (KeyError, TypeError, ValueError) as error:
        warnings.warn(f"{reader.caller}: the file's training configuration could not be used ({error}); the "
                      "model is returned uncompiled: call compile() before fit()", stacklevel=4)


def _stored(value, resolve, metric=False, depth=0):
    """A stored loss or metrics entry (one, a list, a dict by output name; metrics nest lists) with each item
    resolved; a metric given as tf.keras 2.x's config dict is read as its name. TypeError for deeper nesting."""
    if depth > 4:
        raise TypeError("the losses or metrics are nested too deeply")
    if isinstance(value, list):
        return [_stored(item, resolve, metric, depth + 1) for item in value]
    if by_output_name(value):
        return {name: _stored(item, resolve, metric, depth + 1) for name, item in value.items()}
    if _is_function_entry(value):
        return resolve(value["config"])
    return resolve(_metric_name(value) if metric else value)


def _is_function_entry(value):
    """Whether ``value`` is how Keras 3 writes a loss or metric given as a function (``loss=keras.losses.mse``):
    {'module': 'builtins', 'class_name': 'function', 'config': its name}; read as that name (nothing is run)."""
    return isinstance(value, dict) and value.get("class_name") == "function" and isinstance(value.get("config"), str)


def _metric_name(metric):
    """A metric as written by Keras 3 (a name) or tf.keras 2.x (a MeanMetricWrapper config dict)."""
    if isinstance(metric, dict):
        config = metric.get("config")
        return (config.get("name") if isinstance(config, dict) else None) or metric.get("class_name")
    return metric


def _restore_optimizer(model, reader):
    """Reload optimizer state saved by nnengine or Keras 3 (names '<opt>/<model>_<layer>_<weight>_<slot>', or
    '<opt>/<layer>_<weight>_<slot>' for a model Keras built with its Functional API; a nested model's weights
    named with or without the models around it).

    State under other names (another optimizer, another model name) is skipped with a warning; state
    under the expected names must have the expected shapes, or the file is refused.
    """
    names = reader.string_list("optimizer_weights", "weight_names")
    optimizer = model.optimizer
    prefix = f"{optimizer.name}/"
    stored = {n[len(prefix):]: f"optimizer_weights/{n}" for n in names if n.startswith(prefix)}
    trained = {id(weight) for weight in model.trainable_weights}         # a BatchNormalization's statistics have
    slots, missing = {}, [] if "iteration" in stored else ["iteration"]   # (a BatchNormalization's statistics
    for weight, owners, key in _weight_keys(model):                          # have no slots)
        for slot_name in optimizer.active_slot_names() if id(weight) in trained else ():
            # Keras names a weight after the models whose scope built it: from the outermost, or fewer of them
            names = ["_".join((*owners[start:], key, slot_name)) for start in range(len(owners) + 1)]
            found = next((name for name in names if name in stored), None)
            if found is None:
                missing.append(names[0])
            slots[found] = (weight, slot_name)
    if missing:
        warnings.warn(f"{reader.caller}: the optimizer state in {reader.path!r} does not match optimizer "
                      f"{optimizer.name!r} of this model (missing {missing[0]!r}); it starts afresh", stacklevel=4)
        return
    iteration = reader.array(stored["iteration"])
    if iteration.size != 1 or not math.isfinite(float(iteration.reshape(-1)[0])) or \
            float(iteration.reshape(-1)[0]) < 0 or float(iteration.reshape(-1)[0]) != int(iteration.reshape(-1)[0]):
        raise reader.error(stored["iteration"], f"the step count must be one non-negative integer, got {iteration}")
    values = {key: reader.array(stored[key], expected_shape=weight.shape) for key, (weight, _) in slots.items()}
    for key, (weight, slot_name) in slots.items():
        optimizer.slots(weight)[slot_name].assign_(values[key])
    optimizer.iterations = int(iteration.reshape(-1)[0])


def _model_config(reader):
    """The file's model config: a dict naming a Sequential or a functional model, with a list of layer dicts."""
    config = reader.json_attribute("model_config")
    where = "attribute model_config"
    if config is None:
        raise reader.error(where, "missing: this is not a model saved with model.save() (for a weights file use "
                                  "model.load_weights)")
    if not isinstance(config, dict):
        raise reader.error(where, f"expected a JSON object, found {type(config).__name__}")
    if not isinstance(config.get("config"), dict):
        raise reader.error(where, "its 'config' must be a JSON object")
    return model_config_of(config, reader, where)


def model_config_of(config, reader, where):
    """The config of a file's model, a Sequential or a functional model (``Model.from_config`` tells them apart)."""
    if config.get("class_name") not in ("Sequential", "Functional", "Model"):
        raise reader.error(where, f"holds a {config.get('class_name')!r:.80} model; nnengine loads Sequential and "
                                  "functional models, and subclassed models whose class is passed in "
                                  "custom_objects={'Name': Class} or registered (register_keras_serializable)")
    return config["config"]


def load_model(filepath, model_class, compile=True, custom_objects=None):
    """Read a model written by ``save_model`` or by Keras (a Sequential or a functional model).

    ``model_class`` (``Model``) rebuilds the model from its config: models.py calls this with
    it, so this module never imports the models it reads and writes. Raises ``ModelFileError`` for
    any malformed, corrupted or unsafe file.
    """
    compile = arguments.boolean("load_model", "compile", compile)
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"load_model: custom_objects must be a dict {{name: class}}, got "
                        f"{type(custom_objects).__name__}")
    with ModelFileReader.open(filepath, "load_model") as reader:
        config = _model_config(reader)
        group = "model_weights" if reader.has("model_weights") else "/"
        stored = _StoredLayerWeights(reader, group)
        reader.where = "attribute model_config"
        with stored_weights(stored):
            try:
                model = model_class.from_config(config, custom_objects=custom_objects)
            except ModelFileError:
                raise
            except (KeyError, TypeError, ValueError) as error:       # the config's problem, wherever it showed
                raise reader.error("attribute model_config", f"{type(error).__name__}: {error}") from None
        if not model.built:
            raise reader.error("attribute model_config", "the config gives no input shape, so the stored weights "
                                                         "cannot be matched to the layers")
        stored.finish()
        training = reader.json_attribute("training_config") if compile else None
        if training is not None:
            compile_from_config(model, training, reader, custom_objects)
            if model.compiled and reader.has("optimizer_weights"):
                _restore_optimizer(model, reader)
    return model
