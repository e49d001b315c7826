"""The cells of Keras's ``RNN(cell)`` (rnn_layer.py): SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells, and cells
of your own.

A cell computes one step: ``output, new_states = cell(inputs, states)`` for inputs (batch, features) and a list of
states (batch, size). ``RNN`` runs it over the steps of a sequence (batch, steps, features) in a Python loop of
ordinary Tensor ops, so autograd carries gradients back through time and the compiled step records the unrolled
loop. A cell of your own is any layer with ``state_size`` (an int, or a list of ints for several states) and
``call(inputs, states)`` returning ``(output, new_states)``, as in Keras's guide to custom RNN cells; it may also
have ``output_size`` and ``get_initial_state(batch_size)``.

The built-in cells compute Keras 3's formulas (the fused SimpleRNN, LSTM and GRU layers compute the same; these
cells are for stacking, wrapping and learning):

    SimpleRNNCell  h = act(x K + b + h' R)
    LSTMCell       [i, f, g, o] = x K + h' R + b;  c = rec(f) c' + rec(i) act(g);  h = rec(o) act(c)
    GRUCell        [z, r] = rec(x K_zr + b_zr + h' R_zr (+ b'_zr));  with reset_after (Keras's default)
                   n = act(x K_n + b_n + r (h' R_n + b'_n)), else act(x K_n + b_n + (r h') R_n);
                   h = z h' + (1 - z) n

with h', c' the previous states, act the activation (tanh), rec the recurrent activation (sigmoid); any Keras
activation works here. ``dropout`` / ``recurrent_dropout`` mask the inputs / the state in training with masks
drawn once per sequence, as Keras's cells draw them: one per gate with recurrent dropout, else one for all.
``StackedRNNCells`` chains cells: each step runs them in order, each on the previous one's output. ``RNN`` has
Keras's ``return_sequences``, ``return_state``, ``go_backwards`` (the outputs then stay in the order the steps
ran, as Keras returns them), Keras's masks (a padded step keeps the states and repeats the previous output, or
outputs zeros with ``zero_output_for_mask``) and ``initial_state``. Weights and files are Keras's: the cell's
variables under the layer's ``cell`` group (``layers/rnn/cell/vars/0``; stacked: ``cell/cells/<cell>/vars/0``).
"""
import inspect

import numpy as np

from . import activations, arguments, constraints, initializers, regularizers
from . import functional as F
from .dropout_masks import dropout_mask
from .layer_base import Layer, batch_shape
from .recurrent_base import set_recurrent_arguments
from .recurrent_layers import _ForgetGateBias
from .registry import registered_classes
from .utils import snake_case
from .wrapper_layers import Wrapper, serialized_layer

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells", "state_sizes", "step", "cell_from_entry",
           "CELL_CLASSES"]


def state_sizes(cell):
    """The sizes of a cell's states as a list of ints (Keras's ``state_size``: an int or a list of them)."""
    size = getattr(cell, "state_size", None)
    sizes = list(size) if isinstance(size, (list, tuple)) else [size]
    if not sizes or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(f"cell {getattr(cell, 'name', cell)!r} must have a state_size: a positive int or a list of "
                         f"them, got {size!r:.60}")
    return [int(s) for s in sizes]


#: cell class -> whether its call takes ``training`` (a signature is read once per class, not at every step)
_TAKES_TRAINING = {}


def step(cell, inputs, states, training):
    """``cell.call(inputs, states)`` with ``training`` when its call takes it; (output, list of new states)."""
    takes_training = _TAKES_TRAINING.get(type(cell))
    if takes_training is None:
        parameters = inspect.signature(cell.call).parameters
        takes_training = "training" in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())
        _TAKES_TRAINING[type(cell)] = takes_training
    result = cell.call(inputs, states, training=training) if takes_training else cell.call(inputs, states)
    if not isinstance(result, (list, tuple)) or len(result) != 2:
        raise ValueError(f"cell {cell.name!r}: call(inputs, states) must return (output, new_states), got "
                         f"{type(result).__name__}")
    output, new_states = result
    new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
    return output, new_states


class _Cell(Layer):
    """What the built-in cells share: arguments, weights (kernel, recurrent_kernel, bias), dropout, config."""

    gates = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} {self.name!r}"
        self.units = arguments.integer(owner, "units", units, minimum=1)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        set_recurrent_arguments(self, owner, use_bias, (kernel_initializer, recurrent_initializer, bias_initializer),
                                (kernel_regularizer, recurrent_regularizer, bias_regularizer),
                                (kernel_constraint, recurrent_constraint, bias_constraint), dropout, recurrent_dropout)
        self.seed = None if seed is None else arguments.integer(owner, "seed", seed, minimum=0)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self.kernel = self.recurrent_kernel = self.bias = None
        self._masks = None

    @property
    def state_size(self):
        """The size of each state: units (the LSTM has two states)."""
        return self.units

    @property
    def output_size(self):
        """The size of each step's output: units."""
        return self.units

    def build(self, input_shape):
        """kernel (features, G*u), recurrent_kernel (u, G*u), bias, for step inputs (batch, features)."""
        input_shape = batch_shape(f"{type(self).__name__} {self.name!r}", "input_shape", input_shape)
        width = self.gates * self.units
        self.kernel = self.add_weight((input_shape[-1], width), self.kernel_initializer, name="kernel",
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight((self.units, width), self.recurrent_initializer,
                                                name="recurrent_kernel", regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        if self.use_bias:
            self.bias = self.add_weight(self._bias_shape(), self._bias_initializer(), name="bias",
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        super().build(input_shape)

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def draws_dropout_masks(self, training):
        """Dropout draws new masks on the host for every training sequence (fed to a compiled step)."""
        return training and (self.dropout > 0 or self.recurrent_dropout > 0)

    def reset_dropout_masks(self):
        """Forget the masks: the next sequence draws new ones (RNN calls this before each sequence)."""
        self._masks = None

    def _dropping(self, training):
        """Whether this step masks its inputs or its state."""
        return training and (self.dropout > 0 or self.recurrent_dropout > 0)

    def _gate_inputs(self, inputs, h, training):
        """(inputs per gate, state per gate): the same Tensor G times, or each times its own dropout mask (drawn
        at the sequence's first step, as Keras's get_dropout_mask)."""
        if not self._dropping(training):
            return [inputs] * self.gates, [h] * self.gates
        # Keras's cells: with recurrent dropout one mask per gate (its implementation 1), else one for all gates
        count = self.gates if self.recurrent_dropout > 0 else 1
        if self._masks is None:
            def draw(rate, like):
                return None if rate == 0 else dropout_mask(self._rng, (count, *like.shape), rate, like.dtype,
                                                           like.device)
            self._masks = (draw(self.dropout, inputs), draw(self.recurrent_dropout, h))
        input_masks, state_masks = self._masks
        return ([inputs if input_masks is None else inputs * input_masks[min(g, count - 1)] for g in range(self.gates)],
                [h if state_masks is None else h * state_masks[min(g, count - 1)] for g in range(self.gates)])

    def _block(self, weight, gate):
        """Gate ``gate``'s columns of a kernel, or of the bias."""
        u = self.units
        return weight[..., gate * u:(gate + 1) * u]

    def _projections(self, inputs, h, training):
        """x_g K_g + b_g and h_g R_g for every gate g (the dropped-out inputs and states of ``_gate_inputs``)."""
        bias = self._input_bias()
        if not self._dropping(training):                  # no dropout: one product each, then the gates' columns
            x_all = F.matmul(inputs, self.kernel)
            x_all = x_all if bias is None else x_all + bias
            h_all = F.matmul(h, self.recurrent_kernel)
            return ([self._block(x_all, g) for g in range(self.gates)],
                    [self._block(h_all, g) for g in range(self.gates)])
        xs, hs = self._gate_inputs(inputs, h, training)
        x_parts = [F.matmul(x, self._block(self.kernel, g)) for g, x in enumerate(xs)]
        if bias is not None:
            x_parts = [part + self._block(bias, g) for g, part in enumerate(x_parts)]
        return x_parts, [F.matmul(state, self._block(self.recurrent_kernel, g)) for g, state in enumerate(hs)]

    def _input_bias(self):
        """The bias added to the inputs' product, or None."""
        return self.bias

    def get_config(self):
        """Keras 3's config of the cell."""
        config = {**super().get_config(), "units": self.units, "activation": activations.serialize(self.activation)}
        if self.gates > 1:
            config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        config.update({"use_bias": self.use_bias})
        config.update(self._extra_config("after_use_bias"))
        config.update({"kernel_initializer": initializers.serialize(self.kernel_initializer),
                       "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                       "bias_initializer": initializers.serialize(self.bias_initializer)})
        config.update({name: regularizers.serialize(getattr(self, name)) for name in
                       ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer")})
        config.update({name: constraints.serialize(getattr(self, name)) for name in
                       ("kernel_constraint", "recurrent_constraint", "bias_constraint")})
        config.update({"dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout})
        config.update(self._extra_config("last"))
        config["seed"] = self.seed
        return config

    def _extra_config(self, where):
        return {}

    _CONFIG_KEYS = ("units", "activation", "recurrent_activation", "use_bias", "kernel_initializer",
                    "recurrent_initializer", "bias_initializer", "kernel_regularizer", "recurrent_regularizer",
                    "bias_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
                    "recurrent_dropout", "seed")

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), **{key: config[key] for key in cls._CONFIG_KEYS if key in config}}


class SimpleRNNCell(_Cell):
    """One step of a fully connected recurrence: h = activation(x K + b + h' R)."""

    def __init__(self, units, activation="tanh", **kwargs):
        super().__init__(units, activation, **kwargs)

    def call(self, inputs, states, training=False):
        """(h, [h]) for this step."""
        (x,), (hidden,) = self._projections(inputs, states[0], training)
        h = self.activation(x + hidden)
        return h, [h]

    _CONFIG_KEYS = tuple(key for key in _Cell._CONFIG_KEYS if key != "recurrent_activation")


class LSTMCell(_Cell):
    """One LSTM step (gates i, f, g, o; see the module's formula); states [h, c]."""

    gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__(units, activation, recurrent_activation, **kwargs)
        self.unit_forget_bias = arguments.boolean(f"LSTMCell {self.name!r}", "unit_forget_bias", unit_forget_bias)

    @property
    def state_size(self):
        """[units, units]: h and c."""
        return [self.units, self.units]

    def _bias_initializer(self):
        return _ForgetGateBias(self.bias_initializer, self.units) if self.unit_forget_bias else self.bias_initializer

    def call(self, inputs, states, training=False):
        """(h, [h, c]) for this step."""
        h_previous, c_previous = states
        xs, hs = self._projections(inputs, h_previous, training)
        i, f, g, o = (x + h for x, h in zip(xs, hs))
        c = self.recurrent_activation(f) * c_previous + self.recurrent_activation(i) * self.activation(g)
        h = self.recurrent_activation(o) * self.activation(c)
        return h, [h, c]

    def _extra_config(self, where):
        return {"unit_forget_bias": self.unit_forget_bias} if where == "after_use_bias" else {}

    _CONFIG_KEYS = (*_Cell._CONFIG_KEYS, "unit_forget_bias")


class GRUCell(_Cell):
    """One GRU step (gates z, r and the candidate n; see the module's formula); state [h]."""

    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", reset_after=True, **kwargs):
        super().__init__(units, activation, recurrent_activation, **kwargs)
        self.reset_after = arguments.boolean(f"GRUCell {self.name!r}", "reset_after", reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _input_bias(self):
        return None if self.bias is None else (self.bias[0] if self.reset_after else self.bias)

    def call(self, inputs, states, training=False):
        """(h, [h]) for this step."""
        h_previous = states[0]
        xs, hs = self._gate_inputs(inputs, h_previous, training)
        bias = self._input_bias()
        x_z, x_r, x_n = (F.matmul(x, self._block(self.kernel, g)) + (0.0 if bias is None else self._block(bias, g))
                         for g, x in enumerate(xs))
        recurrent_bias = self.bias[1] if self.bias is not None and self.reset_after else None

        def recurrent(g, state):
            product = F.matmul(state, self._block(self.recurrent_kernel, g))
            return product if recurrent_bias is None else product + self._block(recurrent_bias, g)
        z = self.recurrent_activation(x_z + recurrent(0, hs[0]))
        r = self.recurrent_activation(x_r + recurrent(1, hs[1]))
        candidate = r * recurrent(2, hs[2]) if self.reset_after else recurrent(2, r * hs[2])
        n = self.activation(x_n + candidate)
        h = z * h_previous + (1.0 - z) * n
        return h, [h]

    def _extra_config(self, where):
        return {"reset_after": self.reset_after} if where == "last" else {}

    _CONFIG_KEYS = (*_Cell._CONFIG_KEYS, "reset_after")


class StackedRNNCells(Wrapper):
    """Cells run one after the other at each step, each on the previous one's output; its states are theirs, in
    order (Keras's)."""

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(f"StackedRNNCells {self.name!r}: cells must be a non-empty list of cells")
        for cell in cells:
            state_sizes(cell)
        self.cells = list(cells)

    def sublayers(self):
        """Each cell, under Keras's group ``cells/<its class in snake case>`` (numbered per class)."""
        counts, groups = {}, []
        for cell in self.cells:
            key = snake_case(type(cell).__name__)
            count = counts.get(key, 0)
            counts[key] = count + 1
            groups.append((f"cells/{key}" if count == 0 else f"cells/{key}_{count}", cell))
        return groups

    @property
    def state_size(self):
        """Every cell's state sizes, in order."""
        return [size for cell in self.cells for size in state_sizes(cell)]

    @property
    def output_size(self):
        """The last cell's output size."""
        last = self.cells[-1]
        return getattr(last, "output_size", state_sizes(last)[0])

    def build(self, input_shape):
        """Build each cell for the output of the one before it."""
        shapes, features = [], batch_shape(f"StackedRNNCells {self.name!r}", "input_shape", input_shape)[-1]
        for cell in self.cells:
            shapes.append((None, features))
            features = getattr(cell, "output_size", state_sizes(cell)[0])
        self._build_sublayers(shapes)
        super().build(input_shape)

    def reset_dropout_masks(self):
        """Each cell's masks are drawn anew for the next sequence."""
        for cell in self.cells:
            getattr(cell, "reset_dropout_masks", lambda: None)()

    def call(self, inputs, states, training=False):
        """The last cell's output and every cell's new states."""
        new_states, position = [], 0
        for cell in self.cells:
            count = len(state_sizes(cell))
            inputs, cell_states = step(cell, inputs, states[position:position + count], training)
            new_states += cell_states
            position += count
        return inputs, new_states

    def get_config(self):
        """Keras 3's config: the cells serialized."""
        return {**super().get_config(), "cells": [serialized_layer(cell) for cell in self.cells]}

    @classmethod
    def from_config(cls, config):
        """The cells from their configs (built-in cells, or cells registered with register_keras_serializable)."""
        cells = config.get("cells")
        if not isinstance(cells, list):
            raise ValueError("StackedRNNCells: 'cells' must be a list of cell configs")
        return cls([cell_from_entry("StackedRNNCells", entry) for entry in cells],
                   **super()._config_arguments(config))


def cell_from_entry(owner, entry):
    """A cell from its serialized config: a built-in cell, StackedRNNCells, or a registered class."""
    known = {**registered_classes(), **CELL_CLASSES}
    name = entry.get("class_name") if isinstance(entry, dict) else None
    registered = entry.get("registered_name") if isinstance(entry, dict) else None
    cell_class = known.get(registered) or known.get(name)
    if cell_class is None or not isinstance(entry.get("config"), dict):
        raise ValueError(f"{owner}: a cell must be the config of a built-in cell or of a class registered with "
                         f"keras.saving.register_keras_serializable, got {str(entry)[:80]!r}")
    return cell_class.from_config(entry["config"])


CELL_CLASSES = {cls.__name__: cls for cls in (SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells)}
