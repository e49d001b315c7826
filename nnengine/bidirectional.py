"""Keras's Bidirectional wrapper: a recurrent layer (recurrent_layers.py) run forwards and a copy of it backwards
over the same inputs, their outputs merged; with ``return_state`` their last states too, and with
``initial_state`` started from given ones (a bidirectional encoder handing its states to a decoder)."""
from . import functional as F
from .recurrent_base import StatesCall, call_with_states
from .recurrent_layers import _RECURRENT_CLASSES, _Recurrent, _sequences_shape
from .wrapper_layers import Wrapper, layer_from_entry, serialized_layer

__all__ = ["Bidirectional"]


class Bidirectional(StatesCall, Wrapper):
    """Keras's Bidirectional wrapper: the recurrent ``layer`` run forwards and a copy of it run backwards over
    the same inputs, their outputs merged (``merge_mode``: "concat" (the default), "sum", "mul" or "ave").

    With ``return_sequences`` the backward layer's states are put back in the inputs' time order before the
    merge, so step t of the output sees the whole sequence. The two layers are copies of ``layer``'s config
    named ``forward_<name>`` and ``backward_<name>`` (or ``backward_layer``, given), and their weights are the
    wrapper's, forward first, named as Keras names them (``forward_lstm/lstm_cell/kernel``).
    """

    MERGE_MODES = ("concat", "sum", "mul", "ave")
    supports_masking = True
    call_argument_names = ("sequences", "initial_state")

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"Bidirectional {self.name!r}"
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"{owner}: layer must be a SimpleRNN, LSTM or GRU, got {type(layer).__name__}")
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
                backward_layer.return_sequences != layer.return_sequences or \
                backward_layer.return_state != layer.return_state or type(backward_layer) is not type(layer):
            raise ValueError(f"{owner}: backward_layer must be a recurrent layer of the layer's class with "
                             "go_backwards opposite to the layer's and the same return_sequences and return_state")
        self.backward_layer = backward_layer
        self.return_sequences, self.return_state = layer.return_sequences, layer.return_state
        self.state_count = 2 * layer.state_count           # the forward layer's states, then the backward one's
        for sublayer in (self.forward_layer, self.backward_layer):      # Keras's rule for padded steps' outputs
            sublayer.zero_output_for_mask = self.return_sequences
        if self.batch_input_shape is None:
            self.batch_input_shape = layer.batch_input_shape
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def sublayers(self):
        """The forward layer, then the backward one (Keras's groups forward_layer and backward_layer)."""
        return [("forward_layer", self.forward_layer), ("backward_layer", self.backward_layer)]

    def build_for(self, input_shape):
        """Build for the sequences' shape (a call with an initial state gives {'sequences': ..., 'initial_state':
        [...]}, whose states must be (batch, units), the forward layer's then the backward one's)."""
        for shape in input_shape.get("initial_state", []) if isinstance(input_shape, dict) else []:
            if len(shape) != 2 or shape[-1] not in (None, self.forward_layer.units):
                raise ValueError(f"{self._owner()}: each initial state must be (batch, {self.forward_layer.units}), "
                                 f"got {shape}")
        super().build_for(_sequences_shape(input_shape))

    def build(self, input_shape):
        """Build both layers; their weights become this layer's (a file being loaded sees them as its own)."""
        input_shape = _sequences_shape(input_shape)
        self._build_sublayers([input_shape, input_shape])
        super().build(input_shape)

    def _owner(self):
        return f"Bidirectional {self.name!r}"

    def compute_output_shape(self, input_shape):
        """The layer's output shape, its last axis doubled by "concat"; with return_state a list: that, then the
        forward layer's state shapes and the backward one's."""
        shape = self.forward_layer.compute_output_shape(input_shape)
        out, states = (shape[0], shape[1:]) if self.return_state else (shape, [])
        merged = (*out[:-1], 2 * out[-1]) if self.merge_mode == "concat" else out
        return [merged, *states, *states] if self.return_state else merged

    def compute_mask(self, inputs, mask=None):
        """Keras's: the input's mask goes on with every step (``return_sequences``), else none."""
        return mask if self.return_sequences else None

    def __call__(self, sequences, initial_state=None, mask=None, training=False):
        """Keras's call: the merged output; with ``return_state`` the list [output, *forward states, *backward
        states] (h, or h and c for an LSTM, each). ``initial_state``: the forward layer's states, then the backward
        one's ([h_f, h_b], or [h_f, c_f, h_b, c_b] for an LSTM); None starts both from zeros."""
        return call_with_states(self, super().__call__, sequences, initial_state, mask, training)

    def _listed_states(self, initial_state):
        """``initial_state`` as a list of ``state_count`` items (ValueError naming the layer otherwise)."""
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != self.state_count:
            each = "[h, c]" if self.state_count == 4 else "[h]"
            raise ValueError(f"{self._owner()}: initial_state must be {self.state_count} states, the forward "
                             f"layer's {each} then the backward layer's, got {len(states)} state(s)")
        return states

    def run_sequences(self, sequences, training, mask, states):
        """Both layers take the mask the sequences carry (``call`` hands them the sequences)."""
        return self.call(sequences, training=training, initial_state=states)

    def call(self, x, training=False, initial_state=None):
        """Both layers over x (each takes the mask x carries, and its half of ``initial_state``), the backward
        states back in time order, merged; with return_state, then each layer's last states."""
        half = None if initial_state is None else len(initial_state) // 2
        forward = self.forward_layer.invoke(x if half is None else {"sequences": x,
                                                                    "initial_state": initial_state[:half]}, training)
        backward = self.backward_layer.invoke(x if half is None else {"sequences": x,
                                                                      "initial_state": initial_state[half:]}, training)
        states = []
        if self.return_state:
            (forward, *forward_states), (backward, *backward_states) = forward, backward
            states = forward_states + backward_states
        merged = self._merged(forward, backward[:, ::-1] if self.return_sequences else backward)
        return [merged, *states] if self.return_state else merged

    def _merged(self, forward, backward):
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
