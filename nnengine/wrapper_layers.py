"""The base of Keras's wrapper layers (Bidirectional, TimeDistributed): a layer made of other layers.

A wrapper builds its sublayers and takes their weights as its own, in order and under Keras's names
(``<sublayer name>/<weight name>``: ``forward_lstm/lstm_cell/kernel``, ``dense/kernel``), so that saving,
loading, the optimizer and ``get_weights`` see one layer, as Keras's files do. The weights are the same
Tensors the sublayers compute with. While a file is being loaded, the sublayers' weights are asked of the
file as the wrapper's own; in Keras 3's ``.weights.h5`` layout each one lives in its sublayer's group
(``keras_variable_path``).
"""
import contextlib
import math
from abc import abstractmethod

from .layer_base import Layer, stored_weights, weight_source

__all__ = ["Wrapper", "serialized_layer", "layer_from_entry"]


def serialized_layer(layer):
    """A sublayer as Keras 3 serializes one inside a wrapper's config."""
    return {"module": "keras.layers", "class_name": type(layer).__name__, "config": layer.get_config(),
            "registered_name": None}


def layer_from_entry(owner, key, entry, classes, what):
    """The sublayer a wrapper's config serializes under ``key``, its class one of ``classes`` (by class name);
    a ValueError saying it must be the config of ``what`` otherwise."""
    layer_class = classes.get(entry.get("class_name")) if isinstance(entry, dict) else None
    if layer_class is None or not isinstance(entry.get("config"), dict):
        raise ValueError(f"{owner}: {key!r} must be the config of {what}, got {str(entry)[:80]!r}")
    return layer_class.from_config(entry["config"])


class Wrapper(Layer):
    """A layer made of sublayers; subclasses list them in ``sublayers()`` as (Keras's group name, layer)."""

    @abstractmethod
    def sublayers(self):
        """(the name of the sublayer's group in Keras's .weights.h5 layout, the layer), in weight order."""

    def _build_sublayers(self, input_shapes):
        """Build each sublayer for its input shape and take their weights as this layer's."""
        source = weight_source()
        as_mine = stored_weights(lambda sublayer, name, shape: source(self, f"{sublayer.name}/{name}", shape)) \
            if source is not None else contextlib.nullcontext()
        with as_mine:
            for (_, sublayer), shape in zip(self.sublayers(), input_shapes):
                if not sublayer.built:
                    sublayer.build_once(shape)
        self._weights, self._weight_names = [], []
        self._weight_regularizers, self._weight_constraints = [], []
        for _, sublayer in self.sublayers():
            self._weights += sublayer._weights
            self._weight_names += [f"{sublayer.name}/{name}" for name in sublayer._weight_names]
            self._weight_regularizers += sublayer._weight_regularizers
            self._weight_constraints += sublayer._weight_constraints

    def keras_variable_path(self, index):
        """Where Keras 3's .weights.h5 layout keeps weight ``index``: in the group of the sublayer that owns it
        (while a sublayer builds, every weight asked for is its own)."""
        for group, sublayer in self.sublayers():
            count = len(sublayer.weights) if sublayer.built else math.inf
            if index < count:
                inside = getattr(sublayer, "keras_variable_path", None)
                return f"{group}/" + (inside(index) if inside is not None else f"vars/{index}")
            index -= count
        raise IndexError(f"layer {self.name!r} has no weight {index}")  # pragma: no cover - callers stay in range

    def to(self, device):
        """Move the weights (shared with the sublayers) to ``device``."""
        for _, sublayer in self.sublayers():
            sublayer.device = device
        return super().to(device)

    def capture_blocker(self, training):
        """The first sublayer's reason, if one has one."""
        for _, sublayer in self.sublayers():
            reason = sublayer.capture_blocker(training)
            if reason:
                return reason
        return None

    def draws_dropout_masks(self, training):
        """Whether a sublayer draws dropout masks in this step."""
        return any(sublayer.draws_dropout_masks(training) for _, sublayer in self.sublayers())
