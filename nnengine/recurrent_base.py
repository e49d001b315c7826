"""What the layers that run over sequences with states share: the recurrent layers (recurrent_layers.py),
Bidirectional (bidirectional.py) and RNN (rnn_layer.py), and the cells (rnn_cells.py).

* ``call_with_states``: Keras's call of such a layer, which may start from given states (``initial_state``) and
  return its last ones (``return_state``), on data or recorded in a functional graph;
* ``StatesCall``: their run of ``x`` or {'sequences', 'initial_state'}, Keras's mask on the (first) output, and
  the activity penalty of every output;
* ``set_recurrent_arguments``: the weight arguments of a recurrent layer or cell, checked as Keras reads them.
"""
import numpy as np

from . import arguments, constraints, initializers, regularizers
from . import masks as keras_masks
from .layer_base import Layer
from .symbolic import call_symbolic, is_symbolic
from .tensor import Tensor
from .tensor_base import TensorBase

__all__ = ["call_with_states", "StatesCall", "set_recurrent_arguments"]


def set_recurrent_arguments(layer, owner, use_bias, initializers_, regularizers_, constraints_, dropout,
                            recurrent_dropout):
    """Set what every recurrent layer and cell takes for its weights: use_bias, the (kernel, recurrent kernel,
    bias) initializers, regularizers and constraints, and the dropout rates, each checked as Keras reads it."""
    layer.use_bias = arguments.boolean(owner, "use_bias", use_bias)
    for kind, values, resolve in (("initializer", initializers_, initializers.get),
                                  ("regularizer", regularizers_, regularizers.get),
                                  ("constraint", constraints_, constraints.get)):
        for weight, value in zip(("kernel", "recurrent", "bias"), values):
            setattr(layer, f"{weight}_{kind}", resolve(value))
    layer.dropout = arguments.number(owner, "dropout", dropout, 0, 1, high_open=True)
    layer.recurrent_dropout = arguments.number(owner, "recurrent_dropout", recurrent_dropout, 0, 1, high_open=True)


class StatesCall:
    """What the layers that take ``initial_state`` and give ``return_state`` share (the recurrent layers,
    Bidirectional, RNN): the run of ``x`` or {'sequences', 'initial_state'} with Keras's mask on the (first)
    output, and the activity penalty of every output. A class lists it before Layer and defines
    ``_listed_states`` and ``run_sequences``."""

    def invoke(self, x, training=False, mask=None):
        """Run on ``x`` (a Tensor, or {'sequences', 'initial_state'}); the output carries Keras's mask (with
        return_state, the first output only: the states have none)."""
        sequences, states = (x["sequences"], x.get("initial_state")) if isinstance(x, dict) else (x, None)
        mask = keras_masks.mask_of(sequences) if mask is None else mask
        out = self.run_sequences(sequences, training, mask, None if states is None else self._listed_states(states))
        self.pass_mask(sequences, out[0] if self.return_state else out, mask)
        return out

    def run_sequences(self, sequences, training, mask, states):
        """The layer's call on the sequences, with their mask and the initial states (or None)."""
        return self.call(sequences, training=training, mask=mask, initial_state=states)

    def activity_loss(self, output):
        """The activity penalty of the output, or with return_state the sum over the output and the states (Keras
        regularizes every output of a call)."""
        if self.activity_regularizer is None or not isinstance(output, list):
            return Layer.activity_loss(self, output)
        penalties = [Layer.activity_loss(self, item) for item in output]
        return sum(penalties[1:], penalties[0])


def call_with_states(layer, plain_call, sequences, initial_state, mask, training):
    """Keras's call of a layer that may start from given states and return its last ones (a recurrent layer,
    Bidirectional): ``plain_call(sequences, training, mask)`` when it does neither; else the call recorded in a
    functional graph, or run on data with {"sequences", "initial_state"} (``layer._listed_states`` checks the
    states' count)."""
    if initial_state is None and not layer.return_state:
        return plain_call(sequences, training, mask)
    states = None if initial_state is None else layer._listed_states(initial_state)
    if is_symbolic(sequences) or (states is not None and is_symbolic(states)):
        if mask is not None:
            raise TypeError(f"layer {layer.name!r}: a functional model does not record mask=; let a layer make "
                            "the mask (Embedding(mask_zero=True) or Masking) and the layers pass it on")
        if states is not None and not (is_symbolic(sequences) and all(is_symbolic(s) for s in states)):
            raise TypeError(f"{layer._owner()}: in a functional model the sequences and the initial_state must "
                            "all be what calling layers on a keras.Input gave")
        return call_symbolic(layer, sequences if states is None else {"sequences": sequences, "initial_state": states})

    def tensor(value):
        return value if isinstance(value, TensorBase) else Tensor(np.asarray(value), layer.dtype, layer.device)
    x = tensor(sequences)
    if not layer.built:
        layer.build_for((None, *x.shape[1:]))
    return layer.invoke(x if states is None else {"sequences": x, "initial_state": [tensor(s) for s in states]},
                        training, mask)
