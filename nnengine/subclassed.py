"""Keras's subclassed models: a subclass of ``keras.Model`` that makes its layers in ``__init__`` and uses them
in ``call``, the way a PyTorch ``nn.Module`` is written.

    class Residual(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(32, activation="relu")
            self.blocks = [keras.layers.Dense(32, activation="relu") for _ in range(2)]
            self.classes = keras.layers.Dense(10, activation="softmax")

        def call(self, x, training=False):
            h = self.hidden(x)
            for block in self.blocks:
                h = h + block(h)
            return self.classes(h)

The model tracks every attribute that holds a layer or a model, or a list, tuple or dict of them
(``Model.__setattr__``); its weights are theirs. It is built by its first call: ``build`` (or the first
``fit``, ``predict``, ...) runs ``call`` once on one sample, which builds every layer and tells the
output shape. Everything else (compile, fit, the compiled step, callbacks) is the trainer's, as for any
model; a ``call`` whose Python branches on the data runs eagerly (the compiled step refuses to capture it).

``.weights.h5`` files follow Keras 3's layout for such models, which names each layer by where the model
holds it (``weight_groups``): an attribute's name (``hidden/vars``), a list's name and the layer's class
(``blocks/dense``, ``blocks/dense_1``), and ``layers/<class>`` for a layer reached only through the
model's layer list. Attributes are visited in name order, private ones (``_name``) last, as Keras does.
"""
import inspect

from .autograd import no_grad
from .composite import holds_layers, is_part, items_of, keras_attribute_order, list_item_groups
from .layer_base import Layer

__all__ = ["holds_layers", "tracked_layers", "leaves_of", "probe_call", "call_with_training", "weight_groups"]


def tracked_layers(model):
    """(the layers and models the attributes hold, in assignment order, each once; the layers they come to,
    nested models' layers included, each once)."""
    parts = []
    for name in model.__dict__["_tracked"]:
        value = model.__dict__.get(name)
        for item in (items_of(value) if isinstance(value, (list, tuple, dict)) else [value]):
            if is_part(item) and all(item is not part for part in parts):
                parts.append(item)
    return parts, leaves_of(parts)


def leaves_of(parts):
    """The layers of ``parts`` (layers, and models used as layers), each once: a model's layers (its ``_layers``)
    in its place. Every kind of model reads its layers this way (model_parts.py for Sequential and Functional)."""
    leaves = []
    for part in parts:
        for layer in ([part] if isinstance(part, Layer) else part._layers):
            if all(layer is not leaf for leaf in leaves):
                leaves.append(layer)
    return leaves


def call_with_training(model, x, training):
    """``model.call(x, training=training)``, or ``call(x)`` when its call takes no ``training``."""
    parameters = inspect.signature(model.call).parameters
    takes_training = "training" in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    return model.call(x, training=training) if takes_training else model.call(x)


def probe_call(model, sample):
    """Run ``call`` on ``sample`` (a Tensor of one sample, or a list of them) without gradients: it builds every
    layer. Returns the output's shape with None for the batch axis."""
    with no_grad():
        out = call_with_training(model, sample, False)
    if not hasattr(out, "shape") or not hasattr(out, "numpy"):
        raise TypeError(f"model {model.name!r}: call must return one Tensor, got {type(out).__name__}")
    return (None, *out.shape[1:])


# ---------------------------------------------------------------------------------------------
# Keras 3's weights-file groups of a subclassed model
# ---------------------------------------------------------------------------------------------
def weight_groups(model, layer_groups):
    """[(group path, part)] for every layer of the subclassed ``model``, where Keras 3 keeps its variables
    (``<path>/vars/<i>``), and every model inside it (a group of its own, with no variables). ``layer_groups(model)``:
    a Sequential or functional model's [(``layers/<key>``, part)]."""
    groups, visited = [], set()
    _walk_model(model, "", groups, visited, layer_groups)
    return groups


def _walk_model(model, prefix, groups, visited, layer_groups):
    for name in dict.fromkeys(keras_attribute_order([*model.__dict__["_tracked"], "layers"])):
        value = model.layers if name == "layers" else model.__dict__.get(name)
        path = f"{prefix}{name}"
        if isinstance(value, (list, tuple, dict)):
            _walk_container(items_of(value), path, groups, visited, layer_groups)
        else:
            _walk_part(value, path, groups, visited, layer_groups)


def _walk_container(items, path, groups, visited, layer_groups):
    """A list's layers, each in its group (``list_item_groups``)."""
    for group, item in list_item_groups(items, path):
        _walk_part(item, group, groups, visited, layer_groups)


def _walk_part(value, path, groups, visited, layer_groups):
    if not is_part(value) or id(value) in visited:
        return
    visited.add(id(value))
    if isinstance(value, Layer):
        groups.append((path, value))
    elif "_tracked" in value.__dict__:          # a subclassed model inside this one
        groups.append((path, value))
        _walk_model(value, f"{path}/", groups, visited, layer_groups)
    else:                                       # a Sequential or functional model: its layers first, as Keras
        groups.append((path, value))
        for group, layer in layer_groups(value):
            if id(layer) not in visited:
                visited.add(id(layer))
                groups.append((f"{path}/{group}", layer))
