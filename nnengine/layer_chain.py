"""Keras's Functional API for the models nnengine has: a chain of layers from one ``Input``.

    inputs = keras.Input(shape=(10,))
    hidden = keras.layers.Dense(64, activation="relu")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(hidden)
    model = keras.Model(inputs=inputs, outputs=outputs)      # the Sequential of these two layers

Calling a layer on an ``Input``, or on what such a call returned, gives a ``LayerChain``: the input and
the layers called so far, with the ``shape`` Keras's symbolic tensor would have. ``Model(inputs,
outputs)`` turns the chain into the ``Sequential`` of its layers, which compiles, trains, saves and
loads as any other (Keras loads its files as a Sequential). Every layer nnengine has takes one input,
so a functional model of them is a chain; what is not one (several inputs or outputs, a layer used
twice in one chain, outputs not computed from the inputs given) is refused with an error that says so.
A ``Functional`` model that Keras saved loads the same way when it is such a chain (``sequential_config``).
"""

__all__ = ["LayerChain", "chain_model", "sequential_config"]


class LayerChain:
    """What calling layers on an ``Input`` gives: ``input_layer`` and ``layers`` in call order (see the module
    docstring). It holds no values: call ``Model(inputs, outputs)`` and then the model."""

    def __init__(self, input_layer, layers):
        self.input_layer, self.layers = input_layer, tuple(layers)

    def then(self, layer):
        """The chain with ``layer`` called on its output."""
        if any(layer is earlier for earlier in self.layers):
            raise ValueError(f"layer {layer.name!r} is called twice in one chain: nnengine's functional models are "
                             "chains of distinct layers (shared layers are not supported)")
        return LayerChain(self.input_layer, self.layers + (layer,))

    @property
    def shape(self):
        """The output's batch shape, e.g. (None, 10), as Keras's symbolic tensor reports it."""
        shape = tuple(self.input_layer.batch_input_shape)
        for layer in self.layers:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    @property
    def dtype(self):
        """The input's dtype (a layer's output dtype is its own, as in a Sequential)."""
        return self.input_layer.dtype

    def __repr__(self):
        return (f"<LayerChain from {self.input_layer.name!r} through {[layer.name for layer in self.layers]}, "
                f"shape={self.shape}>")


def _single(what, value):
    """``value``, or the one item of a one-item list or tuple (Keras accepts both)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"Model: nnengine's functional models have one input and one output, got {len(value)} "
                             f"{what}")
        return value[0]
    return value


def chain_model(model_class, inputs, outputs, name=None):
    """The ``model_class`` (Sequential) of ``Model(inputs=..., outputs=...)``: the chain's input and layers."""
    inputs, outputs = _single("inputs", inputs), _single("outputs", outputs)
    if not isinstance(outputs, LayerChain):
        raise TypeError(f"Model: outputs must be what calling layers on the Input gave, got "
                        f"{type(outputs).__name__}; e.g. outputs = keras.layers.Dense(10)(inputs)")
    if outputs.input_layer is not inputs:
        raise ValueError("Model: the outputs were not computed from these inputs (they come from Input "
                         f"{outputs.input_layer.name!r})")
    return model_class([inputs, *outputs.layers], name=name)


# ---------------------------------------------------------------------------------------------
# Files: a Functional model that Keras saved, read as the Sequential of its chain
# ---------------------------------------------------------------------------------------------
def sequential_config(config):
    """The Sequential config of a Keras ``Functional`` model's config whose layers form a chain from its one
    input to its one output (Keras 3's and tf.keras 2.x's formats); ValueError saying what is not a chain."""
    entries = config.get("layers")
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ValueError("a Functional config's 'layers' must be a list of layer objects")
    by_name = {_entry_name(entry): entry for entry in entries}
    first, last = _endpoint(config.get("input_layers"), "input"), _endpoint(config.get("output_layers"), "output")
    chain, name = [], last
    while name != first:
        entry = by_name.get(name)
        if entry is None or len(chain) >= len(entries):
            raise ValueError(f"layer {name!r:.80} is not on a path from input {first!r:.80}")
        chain.append(entry)
        name = _parent(entry)
    if first not in by_name or by_name[first].get("class_name") != "InputLayer":
        raise ValueError(f"the model's input {first!r:.80} is not an InputLayer")
    if len(chain) + 1 != len(entries):
        raise ValueError(f"{len(entries) - len(chain) - 1} of its layers are off the chain from input to output "
                         "(a branch or a merge): nnengine loads functional models that are chains of layers")
    layers = [by_name[first], *reversed(chain)]
    return {"name": config.get("name"), "trainable": config.get("trainable", True),
            "layers": [{key: value for key, value in entry.items() if key not in ("inbound_nodes", "name")}
                       for entry in layers]}


def _entry_name(entry):
    name = entry.get("name")
    return name if name is not None else (entry.get("config") or {}).get("name")


def _endpoint(value, what):
    """The layer name of a Functional config's one input or output: ['name', 0, 0] or [['name', 0, 0]]."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        raise ValueError(f"expected one {what} layer, got {value!r:.80}: nnengine loads functional models with one "
                         f"input and one output")
    return value[0]


def _parent(entry):
    """The one layer that feeds ``entry``: its single inbound node's single input (Keras 3's node objects, or
    tf.keras 2.x's [[name, node, tensor, kwargs]] lists)."""
    nodes, name = entry.get("inbound_nodes"), _entry_name(entry)
    if not isinstance(nodes, list) or len(nodes) != 1:
        raise ValueError(f"layer {name!r:.80} is called {len(nodes) if isinstance(nodes, list) else 0} times; "
                         "nnengine loads functional models in which each layer is called once")
    node = nodes[0]
    if isinstance(node, dict):
        histories = [(tensor.get("config") or {}).get("keras_history") for tensor in _tensors(node.get("args"))]
    else:
        histories = [item for item in node if isinstance(item, list)] if isinstance(node, list) else []
    if len(histories) != 1 or not isinstance(histories[0], list) or not histories[0] or \
            not isinstance(histories[0][0], str):
        raise ValueError(f"layer {name!r:.80} takes {len(histories)} inputs; nnengine's layers take one")
    return histories[0][0]


def _tensors(value, depth=0):
    """The symbolic tensors (``{"class_name": "__keras_tensor__", ...}``) among a node's arguments, nested lists
    included (a merge layer takes its inputs as one list)."""
    if isinstance(value, dict):
        return [value] if value.get("class_name") == "__keras_tensor__" else []
    if isinstance(value, list) and depth < 8:
        return [tensor for item in value for tensor in _tensors(item, depth + 1)]
    return []
