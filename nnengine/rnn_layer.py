"""Keras's ``RNN(cell)`` layer: a cell (rnn_cells.py, whose docstring gives the cells' formulas) run over the steps
of each sequence in a loop of Tensor ops.

Each step is ``output, states = cell(x_t, states)``; Keras's masks keep a padded step's states (and repeat the
previous output, or give zeros with ``zero_output_for_mask``); ``go_backwards`` runs the steps from the last, and
the outputs stay in the order the steps ran (as Keras returns them); ``return_state`` adds the last states and
``initial_state`` gives the first. The cell's dropout masks are drawn anew for each sequence.
"""
import numpy as np

from . import arguments
from . import functional as F
from .layer_base import Layer, batch_shape
from .masks import step_mask
from .recurrent_base import StatesCall, call_with_states
from .rnn_cells import StackedRNNCells, cell_from_entry, state_sizes, step
from .tensor import zeros
from .tensor_base import TensorBase
from .wrapper_layers import Wrapper, serialized_layer

__all__ = ["RNN"]


class RNN(StatesCall, Wrapper):
    """Keras's ``RNN(cell)``: ``cell`` run over the steps of each sequence (see the module's docstring); a list of
    cells is stacked (``StackedRNNCells``)."""

    supports_masking = True
    call_argument_names = ("sequences", "initial_state")

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, **kwargs):
        super().__init__(**kwargs)
        owner = self._owner()
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if not isinstance(cell, Layer) or not callable(getattr(cell, "call", None)):
            raise TypeError(f"{owner}: cell must be a layer with call(inputs, states) and state_size, got "
                            f"{type(cell).__name__}")
        state_sizes(cell)
        self.cell = cell
        self.return_sequences = arguments.boolean(owner, "return_sequences", return_sequences)
        self.return_state = arguments.boolean(owner, "return_state", return_state)
        self.go_backwards = arguments.boolean(owner, "go_backwards", go_backwards)
        self.unroll = arguments.boolean(owner, "unroll", unroll)          # a loop of ops is unrolled anyway
        self.zero_output_for_mask = arguments.boolean(owner, "zero_output_for_mask", zero_output_for_mask)
        if arguments.boolean(owner, "stateful", stateful):
            raise ValueError(f"{owner}: stateful=True is not supported (each batch starts from the cell's initial "
                             "state, or from the initial_state given)")
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def _owner(self):
        return f"RNN {self.name!r}"

    def sublayers(self):
        """The cell, under Keras's group ``cell``."""
        return [("cell", self.cell)]

    @property
    def state_count(self):
        """How many states the cell carries."""
        return len(state_sizes(self.cell))

    def _output_size(self):
        return getattr(self.cell, "output_size", state_sizes(self.cell)[0])

    def build_for(self, input_shape):
        """Build for the sequences' shape (a call with an initial state gives {'sequences', 'initial_state'})."""
        sizes = state_sizes(self.cell)
        states = input_shape.get("initial_state", []) if isinstance(input_shape, dict) else []
        for shape, size in zip(states, sizes):
            if len(shape) != 2 or shape[-1] not in (None, size):
                raise ValueError(f"{self._owner()}: each initial state must be (batch, its size {sizes}), got {shape}")
        super().build_for(input_shape["sequences"] if isinstance(input_shape, dict) else input_shape)

    def build(self, input_shape):
        """Build the cell for one step's inputs (batch, features)."""
        input_shape = batch_shape(self._owner(), "input_shape", input_shape)
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"{self._owner()} expects inputs (batch, steps, features) with a known feature size, "
                             f"got input shape {tuple(input_shape)}")
        self._build_sublayers([(None, input_shape[-1])])
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        """(batch, steps, output size) with return_sequences, else (batch, output size); with return_state also
        each state (batch, its size)."""
        shape = input_shape["sequences"] if isinstance(input_shape, dict) else input_shape
        batch, steps = tuple(shape)[:2]
        size = self._output_size()
        out = (batch, steps, size) if self.return_sequences else (batch, size)
        return [out, *[(batch, s) for s in state_sizes(self.cell)]] if self.return_state else out

    def compute_mask(self, inputs, mask=None):
        """Keras's: the input's mask goes on with every output (``return_sequences``); the last one has none."""
        return mask if self.return_sequences else None

    def __call__(self, sequences, initial_state=None, mask=None, training=False):
        """Keras's call: the output; with ``return_state`` [output, *states]. ``initial_state``: the states to start
        from (a list, one per state of the cell); None starts from the cell's initial state (zeros)."""
        return call_with_states(self, super().__call__, sequences, initial_state, mask, training)

    def _listed_states(self, initial_state):
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != self.state_count:
            raise ValueError(f"{self._owner()}: initial_state must hold {self.state_count} state(s) (the cell's "
                             f"state_size {self.cell.state_size!r}), got {len(states)}")
        return states

    def call(self, x, training=False, mask=None, initial_state=None):
        """The loop over the steps (in reverse with go_backwards); Keras's mask keeps the states of padded steps."""
        if x.ndim != 3 or x.shape[1] == 0 or x.shape[2] != self.input_shape[-1]:
            raise ValueError(f"Input of layer {self.name!r} is incompatible with the layer: expected inputs (batch, "
                             f"steps >= 1, {self.input_shape[-1]}), but received input with shape {x.shape}")
        if x.dtype != np.dtype(self.dtype):
            x = x.astype(self.dtype)
        samples, steps = x.shape[:2]
        states = self._initial_states(x, initial_state)
        kept = None if mask is None else step_mask(self.name, mask, x)
        getattr(self.cell, "reset_dropout_masks", lambda: None)()
        outputs, previous = [], None
        for t in (range(steps - 1, -1, -1) if self.go_backwards else range(steps)):
            output, new_states = step(self.cell, x[:, t, :], states, training)
            if len(new_states) != len(states):
                raise ValueError(f"{self._owner()}: the cell returned {len(new_states)} state(s), its state_size says "
                                 f"{len(states)}")
            if kept is not None:
                keep = kept[:, t].reshape(samples, 1)
                states = [F.where(keep, new, old) for new, old in zip(new_states, states)]
                fallback = 0.0 if self.zero_output_for_mask or previous is None else previous
                output = F.where(keep, output, fallback)
            else:
                states = new_states
            outputs.append(output)
            previous = output
        out = F.concatenate([o.reshape(samples, 1, -1) for o in outputs], axis=1) if self.return_sequences \
            else outputs[-1]
        return [out, *states] if self.return_state else out

    def _initial_states(self, x, given):
        """The states before the first step: ``given`` (checked), the cell's get_initial_state, or zeros."""
        sizes = state_sizes(self.cell)
        samples = x.shape[0]
        if given is not None:
            for position, (state, size) in enumerate(zip(given, sizes)):
                if not isinstance(state, TensorBase) or state.shape != (samples, size):
                    raise ValueError(f"{self._owner()}: initial_state[{position}] must be a Tensor of shape (batch, "
                                     f"{size}), got {getattr(state, 'shape', state)!r:.80}")
            return [s if s.dtype == x.dtype else s.astype(x.dtype) for s in given]
        made = getattr(self.cell, "get_initial_state", None)
        if made is not None:
            states = made(batch_size=samples)
            return list(states) if isinstance(states, (list, tuple)) else [states]
        return [zeros((samples, size), dtype=x.dtype, device=x.device) for size in sizes]

    def get_config(self):
        """Keras 3's RNN config, the cell serialized inside."""
        return {**super().get_config(), "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": False, "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask, "cell": serialized_layer(self.cell)}

    @classmethod
    def from_config(cls, config):
        """The cell from its config (a built-in cell, StackedRNNCells, or a registered class), then the layer."""
        arguments_ = {key: config[key] for key in ("return_sequences", "return_state", "go_backwards", "stateful",
                                                   "unroll", "zero_output_for_mask") if key in config}
        return cls(cell_from_entry("RNN", config.get("cell")), **arguments_, **super()._config_arguments(config))
