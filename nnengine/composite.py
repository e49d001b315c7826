"""Layers made of layers: a custom layer that holds other layers (or models) in its attributes, as Keras's
guide writes a Transformer block.

    class TransformerBlock(keras.layers.Layer):
        def __init__(self, dim, heads):
            super().__init__()
            self.att = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=dim)
            self.ffn = keras.Sequential([keras.layers.Dense(dim, activation="relu"), keras.layers.Dense(dim)])
            self.norm = keras.layers.LayerNormalization()

        def call(self, x):
            x = self.norm(x + self.att(x, x))
            return x + self.ffn(x)

As in Keras 3, the layer tracks every attribute that holds a layer or a model, or a list, tuple or dict of them
(``track``, from ``Layer.__setattr__``). Its weights are its own (``add_weight``) and then each tracked part's
in the order the attributes were assigned, depth first (``weights_within``), so the optimizer, ``get_weights``,
``count_params``, regularizers, constraints, ``to(device)`` and the files see them. A part that is trainable=False
keeps its weights out of ``trainable_weights``.

Files: the legacy ``.h5`` lists the weights in that order under the layer's group. Keras 3's ``.weights.h5``
layout keeps each part's variables in a group named by the attribute that holds it
(``layers/transformer_block/att/query_dense/vars/0``, ``.../ffn/layers/dense/vars/0``; ``keras_paths``), as
Keras's saver walks them. While a file is loading, the parts build on a probe batch of zeros with fresh
weights, and then every weight is read from the file in order (``Layer.build_once``).

nnengine's own layers hold their parts themselves (the wrappers take their sublayers' weights as their own), so
tracking is for layers defined outside nnengine.
"""

from .utils import snake_case

__all__ = ["is_part", "holds_layers", "track", "tracked_parts", "weights_within", "layers_within", "keras_paths",
           "keras_attribute_order", "list_item_groups"]


def is_part(value):
    """Whether ``value`` is a layer or a model (something weights come from)."""
    return hasattr(value, "add_weight") and hasattr(value, "_weight_names") or \
        hasattr(value, "_layers") and hasattr(value, "trainable_weights")


def items_of(value):
    """The items of a list, tuple or dict (its values)."""
    return list(value.values()) if isinstance(value, dict) else list(value)


def holds_layers(value):
    """Whether an attribute's value is tracked: a layer, a model, or a list, tuple or dict holding one."""
    if isinstance(value, (list, tuple, dict)):
        return any(is_part(item) for item in items_of(value))
    return is_part(value)


def track(layer, name, value):
    """Note that attribute ``name`` of ``layer`` now holds ``value``: tracked when it holds parts, no longer
    tracked when it did and does not now."""
    tracked = layer.__dict__.get("_tracked")
    holds = holds_layers(value) and value is not layer
    if tracked is None:
        if not holds:
            return
        tracked = layer.__dict__["_tracked"] = []
    if name in tracked:
        tracked.remove(name)
    if holds:
        tracked.append(name)


def tracked_parts(layer):
    """The layers and models ``layer``'s attributes hold, in assignment order, each once."""
    parts = []
    for name in layer.__dict__.get("_tracked", ()):
        value = layer.__dict__.get(name)
        for item in (items_of(value) if isinstance(value, (list, tuple, dict)) else [value]):
            if is_part(item) and all(item is not part for part in parts):
                parts.append(item)
    return parts


def layers_within(part, trainable_only=False):
    """The layers inside ``part`` (a composite layer, or a model), depth first in Keras's order, itself first
    when it is a layer; with ``trainable_only``, none below a part whose ``trainable`` is False."""
    found, seen = [], set()

    def visit(item):
        if id(item) in seen or (trainable_only and not item.trainable):
            return
        seen.add(id(item))
        if hasattr(item, "add_weight"):
            found.append(item)
            children = tracked_parts(item)
        else:                                   # a model: its layers
            children = list(item._layers)
        for child in children:
            visit(child)

    visit(part)
    return found


def weights_within(layer, trainable_only=False):
    """(weight, name) of every weight of ``layer`` and its parts, each once, in Keras's order: the layer's own,
    then each part's; a part's weight named '<part name>/<its name>'."""
    entries, seen = [], set()
    for inner in layers_within(layer, trainable_only):
        prefix = "" if inner is layer else f"{inner.name}/"
        for weight, name in zip(inner._weights, inner._weight_names):
            if id(weight) not in seen and (not trainable_only or weight.requires_grad):
                seen.add(id(weight))
                entries.append((weight, prefix + name))
    return entries


def keras_paths(layer, model_groups):
    """{id(weight): its path inside the layer's group in Keras 3's .weights.h5 layout}: the layer's own weights
    in ``vars/<i>``, each part's in the group of the attribute that holds it (a list's items named by class,
    as in a subclassed model), walked in Keras's attribute order. ``model_groups(model)``: a model's
    [(group, layer)]."""
    paths = {id(weight): f"vars/{index}" for index, weight in enumerate(layer._weights)}
    for name in keras_attribute_order(layer.__dict__.get("_tracked", ())):
        value = layer.__dict__.get(name)
        if isinstance(value, (list, tuple, dict)):
            for group, item in list_item_groups(items_of(value), name):
                _part_paths(item, group, paths, model_groups)
        else:
            _part_paths(value, name, paths, model_groups)
    return paths


def keras_attribute_order(names):
    """Attribute names in the order Keras 3's saver visits them: by name, private ones (``_name``) last."""
    return sorted(names, key=lambda name: f"~{name}" if name.startswith("_") else name)


def list_item_groups(items, path):
    """(group, item) for the layers and models of a list held in attribute ``path``: each named by its class in
    snake case, numbered per class (``path/dense``, ``path/dense_1``, ...), as Keras 3's saver names them."""
    groups, used = [], {}
    for item in filter(is_part, items):
        base = snake_case(type(item).__name__)
        used[base] = used.get(base, -1) + 1
        groups.append((f"{path}/{base}" + (f"_{used[base]}" if used[base] else ""), item))
    return groups


def _part_paths(part, group, paths, model_groups):
    if hasattr(part, "add_weight"):
        inner = keras_paths(part, model_groups) if part.__dict__.get("_tracked") else \
            {id(weight): part.keras_variable_path(index) if hasattr(part, "keras_variable_path") else f"vars/{index}"
             for index, weight in enumerate(part._weights)}
        for key, path in inner.items():
            paths.setdefault(key, f"{group}/{path}")
        return
    for inner_group, layer in model_groups(part):                 # a model: its layers' groups
        _part_paths(layer, f"{group}/{inner_group}", paths, model_groups)
