"""Keras's Bidirectional wrapper: a recurrent layer (recurrent_layers.py) run forwards and a copy of it backwards
over the same inputs, their outputs merged."""
from . import functional as F
from .recurrent_layers import _RECURRENT_CLASSES, _Recurrent
from .wrapper_layers import Wrapper, layer_from_entry, serialized_layer

__all__ = ["Bidirectional"]


class Bidirectional(Wrapper):
    """Keras's Bidirectional wrapper: the recurrent ``layer`` run forwards and a copy of it run backwards over
    the same inputs, their outputs merged (``merge_mode``: "concat" (the default), "sum", "mul" or "ave").

    With ``return_sequences`` the backward layer's states are put back in the inputs' time order before the
    merge, so step t of the output sees the whole sequence. The two layers are copies of ``layer``'s config
    named ``forward_<name>`` and ``backward_<name>`` (or ``backward_layer``, given), and their weights are the
    wrapper's, forward first, named as Keras names them (``forward_lstm/lstm_cell/kernel``).
    """

    MERGE_MODES = ("concat", "sum", "mul", "ave")
    supports_masking = True

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"Bidirectional {self.name!r}"
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"{owner}: layer must be a SimpleRNN, LSTM or GRU, got {type(layer).__name__}")
        if layer.return_state:
            raise ValueError(f"{owner}: a layer with return_state=True is not supported inside Bidirectional yet "
                             "(its output is one merged tensor); run two layers, one with go_backwards=True, "
                             "in a functional model")
        if merge_mode not in self.MERGE_MODES:
            raise ValueError(f"{owner}: merge_mode must be one of {self.MERGE_MODES} (None, a list of both outputs, "
                             f"cannot go on through a Sequential), got {merge_mode!r}")
        if weights is not None:
            raise ValueError(f"{owner}: initial weights are not supported; call set_weights() once it is built")
        self.merge_mode = merge_mode
        config = layer.get_config()
        base = config["name"].removeprefix("forward_")
        self.forward_layer = type(layer).from_config({**config, "name": f"forward_{base}"})
        if backward_layer is None:
            backward_layer = type(layer).from_config({**config, "name": f"backward_{base}",
                                                      "go_backwards": not layer.go_backwards})
        elif not isinstance(backward_layer, _Recurrent) or backward_layer.go_backwards == layer.go_backwards or \
                backward_layer.return_sequences != layer.return_sequences:
            raise ValueError(f"{owner}: backward_layer must be a recurrent layer with go_backwards opposite to the "
                             f"layer's and the same return_sequences")
        self.backward_layer = backward_layer
        self.return_sequences = layer.return_sequences
        for sublayer in (self.forward_layer, self.backward_layer):      # Keras's rule for padded steps' outputs
            sublayer.zero_output_for_mask = self.return_sequences
        if self.batch_input_shape is None:
            self.batch_input_shape = layer.batch_input_shape
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def sublayers(self):
        """The forward layer, then the backward one (Keras's groups forward_layer and backward_layer)."""
        return [("forward_layer", self.forward_layer), ("backward_layer", self.backward_layer)]

    def build(self, input_shape):
        """Build both layers; their weights become this layer's (a file being loaded sees them as its own)."""
        self._build_sublayers([input_shape, input_shape])
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        """The layer's output shape, its last axis doubled by "concat"."""
        shape = self.forward_layer.compute_output_shape(input_shape)
        return (*shape[:-1], 2 * shape[-1]) if self.merge_mode == "concat" else shape

    def compute_mask(self, inputs, mask=None):
        """Keras's: the input's mask goes on with every step (``return_sequences``), else none."""
        return mask if self.return_sequences else None

    def call(self, x, training=False):
        """Both layers over x (each takes the mask x carries), the backward states back in time order, merged."""
        forward = self.forward_layer.invoke(x, training)
        backward = self.backward_layer.invoke(x, training)
        if self.return_sequences:
            backward = backward[:, ::-1]
        if self.merge_mode == "concat":
            return F.concatenate([forward, backward], axis=-1)
        if self.merge_mode == "sum":
            return forward + backward
        if self.merge_mode == "mul":
            return forward * backward
        return (forward + backward) * 0.5               # "ave": / 2, exactly

    def get_config(self):
        """Keras 3's Bidirectional config: the two layers serialized inside it."""
        return {**super().get_config(), "merge_mode": self.merge_mode, "layer": serialized_layer(self.forward_layer),
                "backward_layer": serialized_layer(self.backward_layer)}

    @classmethod
    def from_config(cls, config):
        """Rebuild the wrapper and its two layers from Keras's config."""
        layers = {key: layer_from_entry("Bidirectional", key, config.get(key), _RECURRENT_CLASSES,
                                        "a SimpleRNN, LSTM or GRU")
                  for key in ("layer", "backward_layer") if key == "layer" or config.get(key) is not None}
        return cls(layers["layer"], merge_mode=config.get("merge_mode", "concat"),
                   backward_layer=layers.get("backward_layer"), **super()._config_arguments(config))
