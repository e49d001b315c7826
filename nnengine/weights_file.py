"""Keras 3's ``.weights.h5`` file (``save_weights`` / ``load_weights``, and the weights inside a ``.keras`` archive).

Group ``layers/<key>/vars`` holds datasets "0", "1", ... per layer, where the key is the layer's class name
in snake case as Keras makes it (``Conv2D`` -> ``conv2d``), numbered per class by position ("dense",
"dense_1", ...). A subclassed model's layers are where its attributes hold them (subclassed.weight_groups:
``hidden/vars``, ``blocks/dense/vars``). A layer whose variables Keras keeps in objects of its own says where
each one goes (``keras_variable_path``: a recurrent layer's are in its cell, ``layers/lstm/cell/vars/0``; a Bidirectional
wrapper's in its two layers' cells). Group ``optimizer/vars`` holds the optimizer's variables by position:
the step count, the learning rate, then the slots in Keras 3's order (``Optimizer.slot_groups``). Saves are
atomic and reads go through h5io.py's checks, as for the ``.h5`` file (saving.py).
"""
import math
import warnings

import numpy as np

from . import composite
from .h5io import ModelFileReader
from .layer_base import Layer
from .safe_save import CONFIG_CHECKSUMS, atomic_save, json_checksums, write_dataset
from .saving import _checked_path, _host_values, _read_layer_weights
from .subclassed import weight_groups as subclassed_weight_groups
from .utils import snake_case

__all__ = ["save_weights", "load_weights", "read_keras3_weights", "restore_optimizer_variables", "StoredWeights",
           "layer_keys", "variable_path", "weight_groups", "config_layer_keys"]


def layer_keys(class_names):
    """Keras 3's keys for the layers of a Sequential, from their class names: snake case, numbered per class."""
    counts, keys = {}, []
    for name in class_names:
        base = snake_case(name)
        count = counts.get(base, 0)
        counts[base] = count + 1
        keys.append(base if count == 0 else f"{base}_{count}")
    return keys


def _layer_groups(model):
    """(group, part) of a Sequential or functional model's layers: ``layers/<key>``; a model used as a layer has
    a group of its own, ``layers/<key>``, and its layers' groups inside it (``layers/<key>/layers/<its key>``)."""
    groups = []
    for key, part in zip(layer_keys(type(part).__name__ for part in model.layers), model.layers):
        groups.append((f"layers/{key}", part))
        if not isinstance(part, Layer):
            groups += [(f"layers/{key}/{group}", layer) for group, layer in _layer_groups(part)]
    return groups


def weight_groups(model):
    """[(group path, part)]: where Keras 3 keeps each layer's variables (``<group>/vars/<i>``); a model inside
    the model (a part that is not a Layer) has a group of its own, with no variables in it."""
    if getattr(model, "_subclassed", False):
        return subclassed_weight_groups(model, _layer_groups)
    return _layer_groups(model)


def _own_weights(part):
    """The weights a group holds: a layer's; none for a model's own group (its layers hold them)."""
    return part.weights if isinstance(part, Layer) else []


def config_layer_keys(config, reader):
    """{layer name: its group in the weights file, ``layers/<key>``}, from a Sequential or functional config's
    layer entries (an InputLayer's has no weights, and its key, input_layer, is no other class's)."""
    entries = config.get("layers")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("config"), dict)
                                               for e in entries):
        raise reader.error("config.json", "'layers' must be a list of {'class_name': ..., 'config': {...}} objects")
    layers = [e for e in entries if e.get("class_name") != "InputLayer"]
    names = [str(e.get("class_name")) for e in layers]
    return {e["config"].get("name"): f"layers/{key}" for e, key in zip(layers, layer_keys(names))}


def variable_path(group, layer, index):
    """Where Keras 3 keeps weight ``index`` of a layer: ``<group>/vars/<index>``, or where the layer's
    ``keras_variable_path(index)`` says (inside the objects Keras makes for it)."""
    weights = layer.weights if layer.__dict__.get("_tracked") else ()
    if index < len(weights):                    # a custom layer made of layers: its parts' groups inside its own
        return f"{group}/" + composite.keras_paths(layer, weight_groups)[id(weights[index])]
    inside = getattr(layer, "keras_variable_path", None)
    return f"{group}/" + (inside(index) if inside is not None else f"vars/{index}")



def _group_of(path):
    return path.rsplit("/", 1)[0]


class StoredWeights:
    """The weights of a ``.weights.h5`` layout, handed to the layers of a model being built from its config
    (``layers.stored_weights``): each compared with its stored shape before it is read, so the file bounds
    what is allocated. ``keys``: {layer name in the config: its group in the file, ``layers/<key>``}.
    """

    def __init__(self, reader, keys):
        self.reader, self.keys = reader, keys
        self.handed = {}                        # key -> weights handed out
        self.taken = {}                         # group -> weights read from it
        self.nested_models = []                 # the StoredWeights of the models used as layers

    def nested(self, name, config):
        """The StoredWeights of the model ``name`` used as a layer (its config ``config``): its layers' groups
        are inside its own group."""
        group = self.keys.get(name)
        if group is None:
            raise self.reader.error("layers", f"missing: no weights for model {name!r}")
        inner = StoredWeights(self.reader, {layer: f"{group}/{key}"
                                            for layer, key in config_layer_keys(config, self.reader).items()})
        self.nested_models.append(inner)
        return inner

    def __call__(self, layer, weight_name, shape):
        key = self.keys.get(layer.name)
        if key is None:
            raise self.reader.error("layers", f"missing: no weights for layer {layer.name!r}")
        index = self.handed.get(key, 0)
        self.handed[key] = index + 1
        path = variable_path(key, layer, index)
        group = _group_of(path)
        if not self.reader.has(group):
            raise self.reader.error(group, f"missing: no weights for layer {layer.name!r}")
        if not self.reader.has(path):
            raise self.reader.error(group, f"layer {layer.name!r} needs more weights than the "
                                           f"{self.taken.get(group, 0)} stored")
        self.taken[group] = self.taken.get(group, 0) + 1
        return self.reader.array(path, expected_shape=shape)

    def finish(self):
        """Check that every stored weight went to the model."""
        for inner in self.nested_models:
            inner.finish()
        groups = dict(self.taken)
        for key in self.keys.values():
            if key not in self.handed:
                groups.setdefault(f"{key}/vars", 0)
        for group, taken in groups.items():
            stored = len(self.reader.group(group)) if self.reader.has(group) else 0
            if stored != taken:
                raise self.reader.error(group, f"stores {stored} weights, the layer took {taken}")


def save_weights(model, filepath, overwrite=True, include_optimizer=True, attributes=None):
    """Write the weights (and the optimizer's variables) to a Keras 3 ``.weights.h5`` file, atomically;
    ``attributes``: extra root attributes (name -> number) for nnengine's own use (BackupAndRestore's epoch),
    which Keras ignores."""
    path = _checked_path("save_weights", filepath, (".weights.h5",), "the filename must end in .weights.h5 "
                                                                      "(Keras 3's rule)")
    if not model.built:
        raise ValueError(f"save_weights: model {model.name!r} is not built yet; build it or train it first")
    layers = [(group, part, [(variable_path(group, part, i), w.numpy()) for i, w in enumerate(_own_weights(part))])
              for group, part in weight_groups(model)]
    optimizer = _host_values(_indexed_optimizer_variables(model)) \
        if include_optimizer and model.optimizer is not None and model.optimizer.has_state else None

    def write(f):
        f.attrs[CONFIG_CHECKSUMS] = json_checksums()          # says: every dataset carries its checksum
        for name, value in (attributes or {}).items():
            f.attrs[name] = value
        for group, part, values in layers:
            f.require_group(group).create_group("vars").attrs["name"] = part.name
            for path, value in values:
                group, dataset = path.rsplit("/", 1)
                write_dataset(f.require_group(group), dataset, value)
        f.create_group("vars").attrs["name"] = model.name
        if optimizer is not None:
            variables = f.create_group("optimizer").create_group("vars")
            variables.attrs["name"] = model.optimizer.name
            for index, (_, value) in enumerate(optimizer):
                write_dataset(variables, str(index), value)

    atomic_save("save_weights", path, overwrite, write)


def load_weights(model, filepath):
    """Read weights from a ``.weights.h5`` file (Keras 3 layout) or a legacy ``.h5`` file into a built model.

    Every stored shape is checked against the model's before the data is read; a file that does not fit
    raises ``ModelFileError`` and leaves the model's weights as they were.
    """
    caller = "load_weights"
    if not model.built:
        raise ValueError(f"{caller}: build model {model.name!r} before loading weights into it")
    previous = model.get_weights()
    try:
        with ModelFileReader.open(filepath, caller) as reader:
            if reader.has("layers") or reader.has("vars"):
                read_keras3_weights(reader, model)
                _restore_built_optimizer(model, reader)
            elif reader.has("model_weights"):
                _read_layer_weights(reader, "model_weights", model)
            elif "layer_names" in reader.file.attrs:
                _read_layer_weights(reader, "/", model)
            else:
                raise reader.error("/", "holds no Keras weights (no 'layers' or 'model_weights' group)")
    except BaseException:
        model.set_weights(previous)          # all or nothing
        raise


def _restore_built_optimizer(model, reader):
    """Keras 3's ``load_weights``: a ``.weights.h5`` file's optimizer state goes into the model's optimizer when
    that optimizer is built (has its slots: after a step, or ``optimizer.build(model.trainable_weights)``);
    an unbuilt optimizer is skipped with a warning, as Keras skips it."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not reader.has("optimizer/vars"):
        return
    if not optimizer.has_slots_for(model.trainable_weights):
        warnings.warn(f"load_weights: optimizer {optimizer.name!r} is not built, so the optimizer state in "
                      f"{reader.path!r} is not loaded (as in Keras); call "
                      "model.optimizer.build(model.trainable_weights) first to load it", stacklevel=4)
        return
    restore_optimizer_variables(model, reader)


def read_keras3_weights(reader, model):
    """Keras 3's layout: <group>/vars/0, 1, ... for each layer (``weight_groups``, ``variable_path``); each group
    must hold exactly the weights the layer puts there."""
    for key, layer in weight_groups(model):
        if not isinstance(layer, Layer):
            continue
        paths = [variable_path(key, layer, index) for index in range(len(layer.weights))]
        for group in dict.fromkeys(_group_of(path) for path in paths):
            if not reader.has(group):
                raise reader.error(group, f"missing: no weights for layer {layer.name!r}")
            stored, wanted = len(reader.group(group)), sum(_group_of(path) == group for path in paths)
            if stored != wanted:
                raise reader.error(group, f"stores {stored} weights, layer {layer.name!r} has {wanted} there")
        if paths:
            layer.set_weights([reader.array(path, expected_shape=weight.shape)
                               for path, weight in zip(paths, layer.weights)])


def _indexed_slots(model):
    """(weight, slot name) of each state variable a ``.weights.h5`` file stores after the step count and the
    learning rate, in Keras 3's order (``Optimizer.slot_groups``)."""
    weights = model.trainable_weights
    return [(weight, name) for group in model.optimizer.slot_groups() for weight in weights for name in group]


def _indexed_optimizer_variables(model):
    """(name, value) of the optimizer's variables in a ``.weights.h5`` file's order: the step count, the
    learning rate, then the slots in Keras 3's order."""
    optimizer = model.optimizer
    head = [(name, value) for name, value, *_ in optimizer.variables()[:2]]
    return (head + [(name, optimizer.slots(weight)[name]) for weight, name in _indexed_slots(model)]
            + optimizer.extra_variables())


def restore_optimizer_variables(model, reader):
    """Reload the optimizer state of a ``.weights.h5`` layout (``optimizer/vars/<i>``, inside a ``.keras`` file).

    The variables are stored by position: the step count, the learning rate (restored unless the rate comes
    from a schedule), then the slots in Keras 3's
    order (``Optimizer.slot_groups``), then any ``extra_variables`` (derived from the step count, not read).
    Anything else (another optimizer, another count or shape) is skipped with a warning: the optimizer starts
    afresh.
    """
    optimizer, where = model.optimizer, "optimizer/vars"
    slots = _indexed_slots(model)
    stored = len(reader.group(where))
    shapes_fit = stored == 2 + len(slots) + len(optimizer.extra_variables()) and all(
        reader.shape(f"{where}/{2 + index}") == tuple(weight.shape) for index, (weight, _) in enumerate(slots))
    if not shapes_fit:
        warnings.warn(f"{reader.caller}: the optimizer state in {reader.path!r} does not match optimizer "
                      f"{optimizer.name!r} of this model ({stored} variables); it starts afresh", stacklevel=3)
        return
    iteration = reader.array(f"{where}/0")
    step = float(iteration.reshape(-1)[0]) if iteration.size == 1 else math.nan
    if not math.isfinite(step) or step < 0 or step != int(step):
        raise reader.error(f"{where}/0", f"the step count must be one non-negative integer, got {iteration}")
    values = [reader.array(f"{where}/{2 + index}", expected_shape=weight.shape) for index, (weight, _) in
              enumerate(slots)]
    rate = _stored_learning_rate(reader, f"{where}/1") if optimizer.schedule is None else None
    for (weight, name), value in zip(slots, values):
        optimizer.slots(weight)[name].assign_(value)
    optimizer.iterations = int(step)
    # a rate a callback lowered (ReduceLROnPlateau) resumes lowered; the file holds float32, so an unchanged
    # rate keeps its exact float (0.001, not 0.0010000000474974513)
    if rate is not None and np.float32(rate) != np.float32(optimizer.learning_rate):
        optimizer.learning_rate = rate


def _stored_learning_rate(reader, path):
    """The learning rate a weights file stores (one finite, non-negative number), or a ModelFileError."""
    stored = reader.array(path)
    rate = float(stored.reshape(-1)[0]) if stored.size == 1 else math.nan
    if not math.isfinite(rate) or rate < 0:
        raise reader.error(path, f"the learning rate must be one finite, non-negative number, got {stored}")
    return rate
