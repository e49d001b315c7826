"""Keras's Attention (Luong's dot-product attention) and AdditiveAttention (Bahdanau's), called on a list.

For a query sequence q (batch, Tq, d), a value sequence v (batch, Tv, d_v) and a key sequence k (batch, Tv, d),
which defaults to the value:

    Attention, score_mode='dot':     scores[b, t, s] = c * sum_i q[b, t, i] k[b, s, i]
    Attention, score_mode='concat':  scores[b, t, s] = w * sum_i tanh(c * (q[b, t, i] + k[b, s, i]))
    AdditiveAttention:               scores[b, t, s] = sum_i a[i] * tanh(q[b, t, i] + k[b, s, i])
    weights = softmax of the scores over s (masked, below);  out[b, t, :] = sum_s weights[b, t, s] v[b, s, :]

c is the learnt scalar ``scale`` (with use_scale=True; else 1), w the learnt scalar ``concat_score_weight``, a
the learnt vector ``scale`` of AdditiveAttention (size d; else all ones). Masks, as Keras 3.15 applies them:
the value's Keras mask (batch, Tv) (from Embedding(mask_zero=True) or Masking, or ``mask=[query_mask,
value_mask]``) and ``use_causal_mask=True`` (t attends to s <= t only) subtract 1e9 from the scores of the
pairs they forbid, so those pairs get weight 0 (a query with every pair forbidden attends to all equally);
the query's mask zeroes the output at the query's padded steps and rides on the output. In training, dropout
drops attention weights (and the weights returned with ``return_attention_scores=True`` are the dropped ones,
as Keras's). Everything is core ops (matmul, tanh, softmax, where), so autograd, every device and the compiled
step work as for any layer.
"""
import numpy as np

from . import arguments, initializers
from . import functional as F
from .attention_layers import band_mask, check_sequences
from .layer_base import Layer, batch_shape
from .masks import mask_of
from .symbolic import call_symbolic, is_symbolic
from .tensor import Tensor
from .tensor_base import TensorBase
from .utility_layers import inverted_dropout

__all__ = ["Attention", "AdditiveAttention"]

#: what Keras 3.15 subtracts from a forbidden pair's score (for float32 and float64)
MASK_PENALTY = 1e9


class Attention(Layer):
    """Keras's Attention layer: ``Attention()([query, value])`` or ``([query, value, key])`` (see the module's
    docstring for the formulas).

    Args:
        use_scale: learn a scalar that multiplies the scores (dot) or the sums before tanh (concat).
        score_mode: 'dot' (q·k) or 'concat' (the sum of tanh(q + k), times a learnt scalar).
        dropout: the rate of dropout on the attention weights, in training.
        seed: the seed of that dropout.
    """

    takes_list = True
    supports_masking = True
    #: the keyword options of a call that a functional model records (and reads back from Keras's files)
    call_options = ("use_causal_mask", "return_attention_scores")
    score_modes = ("dot", "concat")

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        owner = self._owner()
        self.use_scale = arguments.boolean(owner, "use_scale", use_scale)
        if score_mode not in self.score_modes:
            raise ValueError(f"{owner}: score_mode must be one of {', '.join(map(repr, self.score_modes))}, got "
                             f"{score_mode!r:.40}")
        self.score_mode = score_mode
        self.dropout = arguments.number(owner, "dropout", dropout, 0, 1, high_open=True)
        self.seed = None if seed is None else arguments.integer(owner, "seed", seed, minimum=0)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self.scale = self.concat_score_weight = None

    def _owner(self):
        return f"{type(self).__name__} {self.name!r}"

    # -- building --------------------------------------------------------------------------------
    def build(self, input_shape):
        """Check [query, value(, key)] shapes; the learnt scalars (``scale``, then ``concat_score_weight``)."""
        self._shapes(input_shape)
        if self.use_scale:
            self.scale = self.add_weight((), initializers.get("ones"), name="scale")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight((), initializers.get("ones"), name="concat_score_weight")
        self._built_for(input_shape)

    def _built_for(self, input_shape):
        """Record the list of input shapes (Layer.build takes one shape) and mark the layer built."""
        self.input_shape = [tuple(shape) for shape in input_shape]
        self.built = True

    def _shapes(self, input_shape):
        """(query, value, key) shapes, checked: sequences (batch, steps, features), the key's features the
        query's, the value's steps the key's."""
        owner = self._owner()
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) not in (2, 3) or \
                not all(isinstance(shape, (list, tuple)) for shape in input_shape):
            raise ValueError(f"{owner} must be called on a list [query, value] or [query, value, key], got input "
                             f"shape {input_shape!r:.80}")
        shapes = [batch_shape(owner, f"{name} shape", shape) for name, shape in zip(("query", "value", "key"),
                                                                                      input_shape)]
        query, value, key = (*shapes, shapes[1]) if len(shapes) == 2 else shapes
        for name, shape in (("query", query), ("value", value), ("key", key)):
            if len(shape) != 3 or shape[-1] is None:
                raise ValueError(f"{owner}: the {name} must be a sequence (batch, steps, features) with a known "
                                 f"feature size, got shape {tuple(shape)}")
        if query[-1] != key[-1]:
            raise ValueError(f"{owner}: the query and the key must have the same feature size, got shapes "
                             f"{tuple(query)} and {tuple(key)}")
        if None not in (value[1], key[1]) and value[1] != key[1]:
            raise ValueError(f"{owner}: the value and the key must have the same number of steps, got shapes "
                             f"{tuple(value)} and {tuple(key)}")
        return query, value, key

    def compute_output_shape(self, input_shape, return_attention_scores=False, use_causal_mask=False):
        """(batch, Tq, the value's features); with ``return_attention_scores``, also (batch, Tq, Tv)."""
        query, value, _ = self._shapes(input_shape)
        out = (*query[:-1], value[-1])
        return [out, (*query[:-1], value[1])] if return_attention_scores else out

    def draws_dropout_masks(self, training):
        """Dropout of the attention weights draws a new random mask on the host every training step."""
        return training and self.dropout > 0

    # -- calling ---------------------------------------------------------------------------------
    def __call__(self, inputs, mask=None, training=False, return_attention_scores=False, use_causal_mask=False):
        owner = self._owner()
        options = {"return_attention_scores": arguments.boolean(owner, "return_attention_scores",
                                                                return_attention_scores),
                   "use_causal_mask": arguments.boolean(owner, "use_causal_mask", use_causal_mask)}
        options = {key: value for key, value in options.items() if value}
        if is_symbolic(inputs):
            return call_symbolic(self, inputs, options)
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(f"{owner} must be called on a list [query, value] or [query, value, key], got "
                            f"{type(inputs).__name__}")
        tensors = [item if isinstance(item, TensorBase) else Tensor(np.asarray(item), dtype=self.dtype,
                                                                     device=self.device) for item in inputs]
        if not self.built:
            self.build_once([(None, *tensor.shape[1:]) for tensor in tensors])
        return self.invoke(tensors, training, mask=mask, **options)

    def invoke(self, x, training=False, mask=None, use_causal_mask=False, return_attention_scores=False):
        """The attention of the list ``x``; ``mask``: [query mask, value mask] (default: the masks the tensors
        carry). The output carries the query's mask."""
        owner = self._owner()
        if not isinstance(x, (list, tuple)):
            raise TypeError(f"{owner} must be called on a list [query, value] or [query, value, key]; it cannot "
                            "be a layer of a Sequential model")
        query, value, key = self._checked_inputs(owner, x)
        query_mask, value_mask = self._masks(owner, x, mask, query, value)
        scores = self._scores(query, key)
        allowed = _allowed_pairs(value_mask, use_causal_mask, query, scores.shape)
        if allowed is not None:
            scores = F.where(allowed, scores, scores - MASK_PENALTY)
        weights = F.softmax(scores, axis=-1)
        if training:
            weights = inverted_dropout(weights, self.dropout, self._rng)
        out = F.matmul(weights, value)
        if query_mask is not None:
            out = F.where(query_mask.reshape(*query_mask.shape, 1), out, 0.0)
            out._keras_mask = query_mask
        return (out, weights) if return_attention_scores else out

    def call(self, x, training=False):
        """The attention output of the list ``x`` (as ``invoke`` takes it)."""
        return self.invoke(x, training)

    def compute_mask(self, inputs, mask=None):
        """Keras's: the query's mask (or None)."""
        return mask[0] if isinstance(mask, list) and mask else None

    def _checked_inputs(self, owner, x):
        """(query, value, key) as Tensors of the layer's dtype, their shapes checked against the built ones."""
        if len(x) not in (2, 3):
            raise ValueError(f"{owner} takes [query, value] or [query, value, key], got a list of {len(x)}")
        expected = self._shapes(self.input_shape)
        tensors = [t if t.dtype == self.dtype else t.astype(self.dtype) for t in x]
        query, value, key = (*tensors, tensors[1]) if len(tensors) == 2 else tensors
        check_sequences(self, owner, (query, value, key), [shape[-1] for shape in expected])
        return query, value, key

    @staticmethod
    def _masks(owner, x, mask, query, value):
        """(query mask, value mask): bool (batch, steps) Tensors or None, from ``mask`` or the inputs'."""
        given = mask_of(list(x)) if mask is None else mask
        if not isinstance(given, (list, tuple)) or len(given) not in (2, 3):
            raise ValueError(f"{owner}: mask must be a list [query_mask, value_mask], got {given!r:.60}")
        result = []
        for name, item, tensor in (("query mask", given[0], query), ("value mask", given[1], value)):
            if item is not None:
                item = item if isinstance(item, TensorBase) else Tensor(np.asarray(item), device=tensor.device)
                if tuple(item.shape) != tuple(tensor.shape[:2]):
                    raise ValueError(f"{owner}: the {name} must have shape {tuple(tensor.shape[:2])}, got "
                                     f"{tuple(item.shape)}")
                item = item if item.dtype == np.bool_ else item != 0
            result.append(item)
        return tuple(result)

    def _scores(self, query, key):
        """(batch, Tq, Tv) scores of the module's formulas."""
        if self.score_mode == "dot":
            scores = F.matmul(query, key.transpose(0, 2, 1))
            return scores * self.scale if self.scale is not None else scores
        sums = _pairwise_sums(query, key)
        if self.scale is not None:
            sums = sums * self.scale
        return sums.tanh().sum(axis=-1) * self.concat_score_weight

    # -- config ----------------------------------------------------------------------------------
    def get_config(self):
        """Keras 3's config."""
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout, "seed": self.seed}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "use_scale": config.get("use_scale", False),
                "score_mode": config.get("score_mode", "dot"), "dropout": config.get("dropout", 0.0),
                "seed": config.get("seed")}


class AdditiveAttention(Attention):
    """Keras's AdditiveAttention (Bahdanau's): scores = sum_i scale[i] tanh(q_i + k_i), ``scale`` a learnt vector
    of the query's feature size (glorot_uniform; all ones with use_scale=False)."""

    score_modes = ("dot",)        # the argument is Keras's Attention's; AdditiveAttention has its own score

    def __init__(self, use_scale=True, dropout=0.0, seed=None, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, seed=seed, **kwargs)

    def build(self, input_shape):
        """Check the shapes; ``scale`` (the query's feature size) with use_scale."""
        query, _, _ = self._shapes(input_shape)
        if self.use_scale:
            self.scale = self.add_weight((query[-1],), initializers.get("glorot_uniform"), name="scale")
        self._built_for(input_shape)

    def _scores(self, query, key):
        terms = _pairwise_sums(query, key).tanh()
        if self.scale is not None:
            terms = terms * self.scale
        return terms.sum(axis=-1)

    def get_config(self):
        """Keras 3's config (no score_mode)."""
        config = super().get_config()
        del config["score_mode"]
        return config

    @classmethod
    def _config_arguments(cls, config):
        arguments_ = super()._config_arguments(config)
        arguments_.pop("score_mode")
        arguments_["use_scale"] = config.get("use_scale", True)
        return arguments_


def _pairwise_sums(query, key):
    """q[b, t, i] + k[b, s, i] for every pair (t, s): (batch, Tq, Tv, d)."""
    return query.expand_dims(2) + key.expand_dims(1)


def _allowed_pairs(value_mask, use_causal_mask, like, shape):
    """The (batch or 1, Tq, Tv) bool Tensor of the pairs that may attend (value mask AND causal), or None."""
    allowed = None
    if value_mask is not None:
        allowed = value_mask.reshape(value_mask.shape[0], 1, value_mask.shape[1])
    if use_causal_mask:
        causal = band_mask(like, shape[1], shape[2], "causal", None)
        allowed = causal if allowed is None else (allowed.astype(np.float32) * causal.astype(np.float32)) > 0
    return allowed
