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
"""

__all__ = ["LayerChain", "chain_model"]


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
