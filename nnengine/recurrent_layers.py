"""Keras's recurrent layers: SimpleRNN, LSTM and GRU, over inputs (batch, steps, features).

Each layer does two things: it projects every step's input at once, ``P = x @ kernel + bias`` (one fused
dense product over batch * steps rows: the projection does not depend on the state), and then runs the
recurrence with one core op over the whole sequence (``nnengine.functional.simple_rnn``, ``lstm``, ``gru``;
the formulas and their backward through time are in ``nnengine/recurrent_ops.py``). So autograd, the
compiled step and every device serve them as any op.

Weights, defaults and configs are Keras 3's: kernel (features, G * units), recurrent_kernel (units, G *
units) drawn orthogonal, bias (G * units,) with G = 1, 4 (gates i, f, c, o) or 3 (gates z, r, h); the
GRU's bias is (2, 3 * units) with ``reset_after=True`` (input and recurrent biases). The weights are named
as Keras names them, under the layer's cell (``lstm_cell/kernel``), so ``.h5``, ``.weights.h5`` and
``.keras`` files move between Keras and nnengine.

Supported as in Keras: ``return_sequences``, ``go_backwards``, ``dropout`` and ``recurrent_dropout`` (masks on
the inputs and on the state, drawn once per sequence, one per gate with recurrent dropout: Keras's rules),
``unit_forget_bias``, ``reset_after``, regularizers, constraints, ``Bidirectional`` (bidirectional.py), and
``return_state`` / ``initial_state`` (``out, h, c = LSTM(u, return_state=True)(x)``, ``LSTM(u)(y,
initial_state=[h, c])``; gradients flow through both). Refused with the reason: ``stateful``, ``return_state``
in a Sequential, and activations other than tanh, sigmoid, relu and linear (the ones the op differentiates).
"""
import numpy as np

from . import activations, arguments, constraints, initializers, regularizers
from . import functional as F
from .dropout_masks import dropout_mask
from .layer_base import Layer, batch_shape
from .masks import step_mask
from .recurrent_base import StatesCall, call_with_states, set_recurrent_arguments
from .recurrent_ops import RECURRENT_ACTIVATIONS
from .tensor_base import TensorBase

__all__ = ["SimpleRNN", "LSTM", "GRU"]


class _ForgetGateBias(initializers.Initializer):
    """Keras's ``unit_forget_bias``: the LSTM bias from ``initializer``, with the forget gate's block set to 1."""

    def __init__(self, initializer, units):
        super().__init__(None)
        self.initializer, self.units = initializer, units

    def sample(self, shape, rng):
        """[init(u), ones(u), init(2u)]: gates i, f, c, o."""
        u = self.units
        return np.concatenate([self.initializer((u,), "float64"), np.ones(u), self.initializer((2 * u,), "float64")])


class _Recurrent(StatesCall, Layer):
    """What the three recurrent layers share: arguments, weights, the projection, dropout and config."""

    #: gates side by side in the kernels; the name Keras gives the layer's cell (the weights' scope)
    gates, cell_name = 1, "simple_rnn_cell"

    def __init__(self, units, activation="tanh", recurrent_activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False, unroll=False,
                 seed=None, zero_output_for_mask=False, use_cudnn="auto", **kwargs):
        super().__init__(**kwargs)
        owner = self._owner()
        self.units = arguments.integer(owner, "units", units, minimum=1)
        self.activation = self._recurrent_activation(owner, "activation", activation)
        self.recurrent_activation = None if recurrent_activation is None else \
            self._recurrent_activation(owner, "recurrent_activation", recurrent_activation)
        set_recurrent_arguments(self, owner, use_bias, (kernel_initializer, recurrent_initializer, bias_initializer),
                                (kernel_regularizer, recurrent_regularizer, bias_regularizer),
                                (kernel_constraint, recurrent_constraint, bias_constraint), dropout, recurrent_dropout)
        self.return_sequences = arguments.boolean(owner, "return_sequences", return_sequences)
        self.go_backwards = arguments.boolean(owner, "go_backwards", go_backwards)
        self.unroll = arguments.boolean(owner, "unroll", unroll)          # the same math either way
        self.return_state = arguments.boolean(owner, "return_state", return_state)
        if arguments.boolean(owner, "stateful", stateful):
            raise ValueError(f"{owner}: stateful=True is not supported (each batch starts from a zero state, or from "
                             "the initial_state given)")
        # what a padded step outputs (Keras's mask): zeros, or (the default) the state it kept
        self.zero_output_for_mask = arguments.boolean(owner, "zero_output_for_mask", zero_output_for_mask)
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"{owner}: use_cudnn must be 'auto', True or False, got {use_cudnn!r}")
        self.seed = None if seed is None else arguments.integer(owner, "seed", seed, minimum=0)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self.kernel = self.recurrent_kernel = self.bias = None
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def _owner(self):
        return f"{type(self).__name__} {self.name!r}"

    @staticmethod
    def keras_variable_path(index):
        """Where Keras 3's .weights.h5 layout keeps weight ``index``: inside the layer's cell."""
        return f"cell/vars/{index}"

    @staticmethod
    def _recurrent_activation(owner, name, value):
        function = activations.get(value)
        fused = activations.fused_name(function)
        if fused not in RECURRENT_ACTIVATIONS:
            raise ValueError(f"{owner}: {name} must be 'tanh', 'sigmoid', 'relu' or 'linear' (the activations the "
                             f"recurrent op differentiates itself), got {value!r}")
        return function

    #: a call's tensors by name (Keras's call(sequences, initial_state=None)): how a functional model writes a call
    #: with an initial state ({'args': [sequences], 'kwargs': {'initial_state': [h, c]}}) and reads it back
    call_argument_names = ("sequences", "initial_state")

    @property
    def state_count(self):
        """The states the layer carries: 2 for the LSTM (h and c), else 1 (h)."""
        return 2 if self.gates == 4 else 1

    # -- weights -------------------------------------------------------------------------------
    def build_for(self, input_shape):
        """Build for the sequences' shape (a call with an initial state gives {'sequences': ..., 'initial_state':
        [...]}, whose states must be (batch, units))."""
        for shape in input_shape.get("initial_state", []) if isinstance(input_shape, dict) else []:
            if len(shape) != 2 or shape[-1] not in (None, self.units):
                raise ValueError(f"{self._owner()}: each initial state must be (batch, {self.units}), got {shape}")
        super().build_for(_sequences_shape(input_shape))

    def build(self, input_shape):
        """Create kernel (features, G*u), recurrent_kernel (u, G*u) and bias for inputs (batch, steps, features)."""
        input_shape = batch_shape(self._owner(), "input_shape", _sequences_shape(input_shape))
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"{self._owner()} expects inputs (batch, steps, features) with a known feature size, "
                             f"got input shape {tuple(input_shape)}")
        width = self.gates * self.units
        self.kernel = self.add_weight((input_shape[-1], width), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
                                      name=f"{self.cell_name}/kernel")
        self.recurrent_kernel = self.add_weight((self.units, width), self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint,
                                                name=f"{self.cell_name}/recurrent_kernel")
        if self.use_bias:
            self.bias = self.add_weight(self._bias_shape(), self._bias_initializer(), regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, name=f"{self.cell_name}/bias")
        super().build(input_shape)

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def _input_bias(self):
        """The bias added to the projected inputs, or None."""
        return self.bias

    # -- calling -------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        """(batch, steps, units) with return_sequences, else (batch, units); with return_state a list: that, then
        (batch, units) for each state."""
        batch, steps = tuple(_sequences_shape(input_shape))[:2]
        out = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        return [out, *[(batch, self.units)] * self.state_count] if self.return_state else out

    def draws_dropout_masks(self, training):
        """Dropout draws new masks on the host for every training batch (fed to a compiled step)."""
        return training and (self.dropout > 0 or self.recurrent_dropout > 0)

    supports_masking = True

    def compute_mask(self, inputs, mask=None):
        """Keras's: the input's mask goes on with every state (``return_sequences``); the last state has none."""
        return mask if self.return_sequences else None

    def __call__(self, sequences, initial_state=None, mask=None, training=False):
        """Keras's call: the output for ``sequences``; with ``return_state`` the list [output, h] ([output, h, c]
        for the LSTM). ``initial_state``: the state to start from, [h] or h ([h, c] for the LSTM), each (batch,
        units); None starts from zeros."""
        return call_with_states(self, super().__call__, sequences, initial_state, mask, training)

    def _listed_states(self, initial_state):
        """``initial_state`` as a list of ``state_count`` items (ValueError naming the layer otherwise)."""
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != self.state_count:
            expected = "[h, c] (two states)" if self.state_count == 2 else "h, or [h] (one state)"
            raise ValueError(f"{self._owner()}: initial_state must be {expected}, got {len(states)} state(s)")
        return states

    def call(self, x, training=False, mask=None, initial_state=None):
        """Project every step's input, run the recurrence, return the last state or every state.

        In training, ``dropout`` masks the inputs and ``recurrent_dropout`` the state, each mask drawn once per
        sequence, as Keras 3 does: with recurrent dropout, each gate gets masks of its own (Keras's
        implementation 1), so its projection is made per gate too. With Keras's ``mask`` (batch, steps) a padded
        step keeps the state it had (the recurrence skips it); with ``zero_output_for_mask`` it outputs zeros.
        ``initial_state`` ([h] or [h, c], each (batch, units)) is the state before the first step; with
        ``return_state`` the result is [output, h_T] or [output, h_T, c_T].
        """
        self._check_input(x)
        initial_state = self._checked_states(initial_state, x)
        samples, steps, features = x.shape
        if x.dtype != self.kernel.dtype:
            x = x.astype(self.kernel.dtype)
        masks = None
        if training and self.recurrent_dropout > 0:
            masks = self._dropout_mask((self.gates, samples, self.units), x, self.recurrent_dropout)
        if training and self.dropout > 0:
            count = self.gates if masks is not None else 1
            projected = self._projection(x, self._dropout_mask((count, samples, 1, features), x, self.dropout))
        else:
            projected = self._projection(x, None)
        kept = None if mask is None else step_mask(self.name, mask, x).transpose(1, 0)     # (steps, n): time first
        out, *states = self._sequence(projected, masks, kept, initial_state) if self.return_state else \
            [self._sequence(projected, masks, kept, initial_state)]
        if kept is not None and self.zero_output_for_mask:
            out = self._zeroed(out, kept)
        out = out.transpose(1, 0, 2) if self.return_sequences else out
        return [out, *states] if self.return_state else out

    def _checked_states(self, states, x):
        """The initial states as Tensors of the kernel's dtype, each (batch, units); None stays None."""
        if states is None:
            return None
        for position, state in enumerate(states):
            if not isinstance(state, TensorBase) or state.shape != (x.shape[0], self.units):
                raise ValueError(f"{self._owner()}: initial_state[{position}] must be a Tensor of shape (batch, "
                                 f"units) = {(x.shape[0], self.units)}, got {getattr(state, 'shape', state)!r:.80}")
        return [state if state.dtype == self.kernel.dtype else state.astype(self.kernel.dtype) for state in states]

    def _zeroed(self, out, kept):
        """Keras's zero_output_for_mask: zeros for the padded steps, in the order the steps ran (the last state is
        zeros when the last step run was padding)."""
        if self.go_backwards:
            kept = kept[::-1]
        if self.return_sequences:
            return F.where(kept.reshape(*kept.shape, 1), out, 0.0)
        return F.where(kept[-1].reshape(kept.shape[1], 1), out, 0.0)

    def _projection(self, x, input_masks):
        """P (steps, n, G*u) = x_t @ kernel + bias for every step at once; with ``input_masks`` (1 or G, n, 1,
        features) x is masked first, block by block of gates when there is one mask per gate."""
        samples, steps, features = x.shape

        def rows(inputs):                     # time first: step t is rows[t*n:(t+1)*n]
            return inputs.transpose(1, 0, 2).reshape(steps * samples, features)
        bias = self._input_bias()
        if input_masks is None or input_masks.shape[0] == 1:
            inputs = x if input_masks is None else x * input_masks[0]
            return F.linear(rows(inputs), self.kernel, bias, "none").reshape(steps, samples, -1)
        u = self.units
        blocks = [F.linear(rows(x * input_masks[g]), self.kernel[:, g * u:(g + 1) * u],
                           None if bias is None else bias[g * u:(g + 1) * u], "none") for g in range(self.gates)]
        return F.concatenate(blocks, axis=1).reshape(steps, samples, -1)

    def _check_input(self, x):
        expected = self.kernel.shape[0]
        if x.ndim != 3 or x.shape[2] != expected or x.shape[1] == 0:
            raise ValueError(f"Input of layer {self.name!r} is incompatible with the layer: expected inputs (batch, "
                             f"steps >= 1, {expected}), but received input with shape {x.shape}")

    def _dropout_mask(self, shape, like, rate):
        """Inverted dropout's masks for one sequence: 0 or 1 / (1 - rate), the same at every step (Keras's rule)."""
        return dropout_mask(self._rng, shape, rate, like.dtype, like.device)

    def _activation_names(self):
        names = [activations.fused_name(self.activation)]
        if self.recurrent_activation is not None:
            names.append(activations.fused_name(self.recurrent_activation))
        return names

    # -- config --------------------------------------------------------------------------------
    def get_config(self):
        """Keras 3's config of the layer, in Keras's key order."""
        config = {**super().get_config(), "return_sequences": self.return_sequences,
                  "return_state": self.return_state,
                  "go_backwards": self.go_backwards, "stateful": False, "unroll": self.unroll,
                  "zero_output_for_mask": self.zero_output_for_mask, "units": self.units,
                  "activation": activations.serialize(self.activation)}
        if self.recurrent_activation is not None:
            config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        config.update({"use_bias": self.use_bias, "kernel_initializer": initializers.serialize(self.kernel_initializer),
                       "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                       "bias_initializer": initializers.serialize(self.bias_initializer)})
        config.update(self._extra_config("after_initializers"))
        config.update({name: regularizers.serialize(getattr(self, name)) for name in
                       ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer")})
        config.update({name: constraints.serialize(getattr(self, name)) for name in
                       ("kernel_constraint", "recurrent_constraint", "bias_constraint")})
        config.update({"dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout})
        config.update(self._extra_config("last"))
        return config

    def _extra_config(self, where):
        """A subclass's own keys, at their place in Keras's order."""
        return {"seed": self.seed} if where == "last" else {}

    #: the constructor arguments read from a config (besides the base layer's)
    _CONFIG_KEYS = ("units", "activation", "use_bias", "kernel_initializer", "recurrent_initializer",
                    "bias_initializer", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                    "activity_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
                    "recurrent_dropout", "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                    "zero_output_for_mask", "seed")

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config),
                **{key: config[key] for key in cls._CONFIG_KEYS if key in config}}


class SimpleRNN(_Recurrent):
    """A fully connected recurrence: h_t = activation(x_t @ kernel + bias + h_{t-1} @ recurrent_kernel)."""

    def __init__(self, units, activation="tanh", **kwargs):
        if "recurrent_activation" in kwargs:          # as in Keras: a SimpleRNN has no gates
            raise TypeError("SimpleRNN got an unexpected keyword argument 'recurrent_activation' (it has no gates)")
        super().__init__(units, activation=activation, **kwargs)

    def _sequence(self, projected, masks, kept, initial_state):
        return F.simple_rnn(projected, self.recurrent_kernel, *self._activation_names(), reverse=self.go_backwards,
                            return_sequences=self.return_sequences, recurrent_masks=masks, step_mask=kept,
                            initial_state=initial_state, return_state=self.return_state)

    def _extra_config(self, where):
        return {}         # Keras 3's SimpleRNN config has no seed

    _CONFIG_KEYS = tuple(key for key in _Recurrent._CONFIG_KEYS if key != "seed")


class LSTM(_Recurrent):
    """Long short-term memory (Hochreiter and Schmidhuber, 1997), Keras's gates i, f, c, o.

    c_t = f * c_{t-1} + i * activation(c~), h_t = o * activation(c_t), with i, f, o from the recurrent
    activation; ``unit_forget_bias`` (Keras's default) starts the forget gate's bias at 1.
    """

    gates, cell_name = 4, "lstm_cell"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        self.unit_forget_bias = arguments.boolean(f"LSTM {kwargs.get('name')!r}", "unit_forget_bias",
                                                  unit_forget_bias)
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, **kwargs)

    def _bias_initializer(self):
        return _ForgetGateBias(self.bias_initializer, self.units) if self.unit_forget_bias else self.bias_initializer

    def _sequence(self, projected, masks, kept, initial_state):
        return F.lstm(projected, self.recurrent_kernel, *self._activation_names(), reverse=self.go_backwards,
                      return_sequences=self.return_sequences, recurrent_masks=masks, step_mask=kept,
                      initial_state=initial_state, return_state=self.return_state)

    def _extra_config(self, where):
        if where == "after_initializers":
            return {"unit_forget_bias": self.unit_forget_bias}
        return super()._extra_config(where)

    _CONFIG_KEYS = (*_Recurrent._CONFIG_KEYS, "unit_forget_bias", "recurrent_activation")


class GRU(_Recurrent):
    """Gated recurrent unit (Cho et al., 2014), Keras's gates z (update), r (reset) and the candidate.

    h_t = z * h_{t-1} + (1 - z) * candidate. With ``reset_after`` (Keras 3's default, the cuDNN form) the
    reset gate scales h_{t-1} @ recurrent_kernel + recurrent_bias and the bias is (2, 3 * units): row 0 for the
    inputs, row 1 for the state; without it the gate scales h_{t-1} before the product and the bias is (3 * units,).
    """

    gates, cell_name = 3, "gru_cell"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", reset_after=True, **kwargs):
        self.reset_after = arguments.boolean(f"GRU {kwargs.get('name')!r}", "reset_after", reset_after)
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, **kwargs)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _input_bias(self):
        return None if self.reset_after else self.bias        # with reset_after, the GRU op adds both rows

    def _sequence(self, projected, masks, kept, initial_state):
        return F.gru(projected, self.recurrent_kernel, self.bias if self.reset_after else None,
                     *self._activation_names(), reverse=self.go_backwards, reset_after=self.reset_after,
                     return_sequences=self.return_sequences, recurrent_masks=masks, step_mask=kept,
                     initial_state=initial_state, return_state=self.return_state)

    def _extra_config(self, where):
        if where == "last":
            return {"reset_after": self.reset_after, **super()._extra_config(where)}
        return {}

    _CONFIG_KEYS = (*_Recurrent._CONFIG_KEYS, "reset_after", "recurrent_activation")


_RECURRENT_CLASSES = {cls.__name__: cls for cls in (SimpleRNN, LSTM, GRU)}


def _sequences_shape(input_shape):
    """The sequences' shape of a call's input shape ({'sequences': shape, 'initial_state': [...]} for a call
    with an initial state, as Keras's build config names them too)."""
    if isinstance(input_shape, dict):
        return input_shape.get("sequences", input_shape.get("sequences_shape"))
    return input_shape
