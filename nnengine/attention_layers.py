"""Keras's MultiHeadAttention: scaled dot-product attention with several heads (Vaswani et al., 2017).

For a query sequence x_q (batch, T, d_q) and a value sequence x_v (batch, S, d_v), with a key sequence x_k
(batch, S, d_k) that defaults to the value, each of the h heads projects the sequences and attends:

    q = x_q W_q + b_q        W_q (d_q, h, key_dim)       q: (batch, T, h, key_dim)
    k = x_k W_k + b_k        W_k (d_k, h, key_dim)       k: (batch, S, h, key_dim)
    v = x_v W_v + b_v        W_v (d_v, h, value_dim)     v: (batch, S, h, value_dim)
    scores[b, n, t, s] = sum_i (q[b, t, n, i] / sqrt(key_dim)) k[b, s, n, i]
    p = softmax of the scores over s, masked (below)      the attention weights, (batch, h, T, S)
    o[b, t, n, j] = sum_s p[b, n, t, s] v[b, s, n, j]
    out = sum over n, j of o[b, t, n, j] W_o[n, j, :] + b_o      W_o (h, value_dim, d_out); d_out = d_q

Keras names the projections ``query``, ``key``, ``value`` and ``attention_output`` (plus ``gate`` with
``use_gate``: o is multiplied by sigmoid(x_q W_g + b_g) before the output projection); their kernels keep
Keras's shapes, so files move between Keras and nnengine. Each projection is one fused product
(``functional.linear``) on the kernel seen as a matrix, and the rest is batched matmuls and a softmax:
ordinary differentiable ops, so autograd, every device and the compiled step work as for any layer.

Masks (which pairs (t, s) may attend), joined with AND, as Keras 3.15 joins them:
* the query's Keras mask (batch, T) and the value's (and the key's) (batch, S), from Embedding(mask_zero=True)
  or Masking upstream, or given as ``value_mask``/``key_mask``;
* ``attention_mask`` (batch, T, S), True (or non-zero) where attention is allowed;
* ``use_causal_mask=True``: position t sees s <= t only (a decoder);
* ``sliding_window=w``: |t - s| < w only.
A masked pair gets weight 0. A query with no allowed pair is treated as Keras 3.15 treats it: with dropout, or
when the weights are asked for, its weights are 0 (Keras's masked Softmax); otherwise it attends to every
position equally (Keras's fused attention; ``_weights_of``). The output carries the query's mask.

Called as Keras calls it: ``mha(query, value)``, ``mha(query, value, key)``, with keyword arguments
``attention_mask``, ``use_causal_mask``, ``return_attention_scores`` (in a functional model, a call with two
outputs) and ``training`` (dropout of the attention weights). Inputs are sequences (rank 3):
``attention_axes`` other than the sequence axis are refused.
"""
import math

import numpy as np

from . import arguments, constraints, initializers, regularizers
from . import functional as F
from .layer_base import KernelAndBias, Layer, batch_shape
from .layer_functional import host_constant
from .symbolic import call_symbolic, is_symbolic
from .tensor import Tensor
from .tensor_base import TensorBase
from .utility_layers import inverted_dropout
from .wrapper_layers import Wrapper

__all__ = ["MultiHeadAttention", "check_sequences", "band_mask"]

#: what a masked score becomes before the softmax on Keras's explicit path (its Softmax layer: -1e9 for float32
#: and float64), and what its fused attention adds to one (-0.7 times about the largest float32)
MASKED_SCORE = -1e9
FUSED_MASKED_SCORE = -0.7 * 3.38953e38


class _Projection(Layer):
    """Keras's EinsumDense as MultiHeadAttention uses it: the last ``contracted`` axes of the input times a kernel
    (those axes' sizes, *outputs), plus a bias of shape ``outputs``; one fused product on the kernel as a matrix."""

    def __init__(self, outputs, contracted, owner, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.outputs, self.contracted, self.activation = tuple(outputs), contracted, activation
        self.use_bias = owner.use_bias
        self._owner = owner

    def build(self, input_shape):
        """Kernel (*contracted input axes, *outputs) and bias ``outputs``, with the owner's initializers."""
        owner = self._owner
        contracted = tuple(input_shape[-self.contracted:])
        self.kernel = self.add_weight(contracted + self.outputs, owner.kernel_initializer, name="kernel",
                                      regularizer=owner.kernel_regularizer, constraint=owner.kernel_constraint)
        self.bias = self.add_weight(self.outputs, owner.bias_initializer, name="bias",
                                    regularizer=owner.bias_regularizer, constraint=owner.bias_constraint) \
            if self.use_bias else None
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        """The leading axes of the input, then ``outputs``."""
        return (*tuple(input_shape)[:-self.contracted], *self.outputs)

    def call(self, x, training=False):
        """(x as rows of the contracted axes) @ (kernel as a matrix) + bias, shaped (*leading axes, *outputs)."""
        leading = x.shape[:-self.contracted]
        inner, outer = math.prod(x.shape[-self.contracted:]), math.prod(self.outputs)
        bias = None if self.bias is None else self.bias.reshape(outer)
        out = F.linear(x.reshape(-1, inner), self.kernel.reshape(inner, outer), bias, self.activation)
        return out.reshape(*leading, *self.outputs)


class MultiHeadAttention(KernelAndBias, Wrapper):
    """Keras's MultiHeadAttention layer (see the module's docstring for the formulas and the masks).

    Args:
        num_heads: the number of heads h.
        key_dim: the size of each head's query and key.
        value_dim: the size of each head's value (default ``key_dim``).
        dropout: the rate of dropout on the attention weights, in training.
        use_bias: whether the projections add biases.
        output_shape: the size of the output's last axis (an int or a tuple of sizes); default: the query's.
        attention_axes: None or the sequence axis (1); attention over other axes is not supported.
        sliding_window: None, or w > 0: each position attends within w - 1 positions on either side.
        flash_attention: accepted for Keras's signature; the result is the same math (True refuses dropout).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer, kernel_constraint,
        bias_constraint: for every projection, as in Dense.
        use_gate: gate each head's output with a sigmoid of another projection of the query.
        seed: the seed of the attention dropout.
    """

    supports_masking = True
    #: Keras's call takes the query and the value (and the key) positionally; a functional model records them so
    call_argument_names = ("query", "value", "key")

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 attention_axes=None, sliding_window=None, flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, use_gate=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"MultiHeadAttention {self.name!r}"
        self.num_heads = arguments.integer(owner, "num_heads", num_heads, minimum=1)
        self.key_dim = arguments.integer(owner, "key_dim", key_dim, minimum=1)
        self.value_dim = self.key_dim if value_dim is None else \
            arguments.integer(owner, "value_dim", value_dim, minimum=1)
        self.dropout = arguments.number(owner, "dropout", dropout, 0, 1, high_open=True)
        self.use_gate = arguments.boolean(owner, "use_gate", use_gate)
        self._output_shape = _output_shape(owner, output_shape)
        self.attention_axes = _attention_axes(owner, attention_axes)
        self.sliding_window = None if sliding_window is None else \
            arguments.integer(owner, "sliding_window", sliding_window, minimum=1)
        if flash_attention is not None and arguments.boolean(owner, "flash_attention", flash_attention) \
                and self.dropout > 0:
            raise ValueError(f"{owner}: dropout is not supported with flash_attention=True (set dropout=0.0)")
        if activity_regularizer is not None:
            raise ValueError(f"{owner}: activity_regularizer is not supported")
        self._init_kernel_and_bias(owner, None, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                                   bias_regularizer, kernel_constraint, bias_constraint)    # the projections'
        self.seed = None if seed is None else arguments.integer(owner, "seed", seed, minimum=0)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._projections = None

    # -- building --------------------------------------------------------------------------------
    def sublayers(self):
        """The projections, in Keras's weight order, under their groups in Keras's .weights.h5 layout."""
        return self._projections or []

    def build_for(self, input_shape):
        """Build for, or check, inputs {'query': shape, 'value': shape[, 'key': shape]} (the key's shape defaults
        to the value's; masks' shapes are checked by the call)."""
        if isinstance(input_shape, dict) and {"query", "value"} <= set(input_shape):
            input_shape = {"query": input_shape["query"], "value": input_shape["value"],
                           "key": input_shape.get("key", input_shape["value"])}
        super().build_for(input_shape)

    def build(self, input_shape):
        """Make and build the projections for inputs {'query': shape, 'value': shape, 'key': shape}."""
        owner = f"MultiHeadAttention {self.name!r}"
        if not isinstance(input_shape, dict) or not {"query", "value", "key"} <= set(input_shape):
            raise TypeError(f"{owner} takes a query and a value: call it as mha(query, value), got inputs of shape "
                            f"{input_shape!r:.80}")
        query, value, key = (batch_shape(owner, f"{name} shape", input_shape[name])
                             for name in ("query", "value", "key"))
        for name, shape in (("query", query), ("value", value), ("key", key)):
            if len(shape) != 3 or shape[-1] is None:
                raise ValueError(f"{owner}: the {name} must be a sequence (batch, steps, features) with a known "
                                 f"feature size, got shape {tuple(shape)}")
        if None not in (value[1], key[1]) and value[1] != key[1]:
            raise ValueError(f"{owner}: the value and the key must have the same number of steps, got shapes "
                             f"{tuple(value)} and {tuple(key)}")
        heads = self.num_heads
        out = self._output_shape or (query[-1],)
        projections = [("query_dense", _Projection((heads, self.key_dim), 1, self, name="query"), query),
                       ("key_dense", _Projection((heads, self.key_dim), 1, self, name="key"), key)]
        if self.use_gate:
            projections.append(("_gate_dense", _Projection((heads, self.value_dim), 1, self, "sigmoid", name="gate"),
                                query))
        projections += [("value_dense", _Projection((heads, self.value_dim), 1, self, name="value"), value),
                        ("output_dense", _Projection(out, 2, self, name="attention_output"),
                         (None, query[1], heads, self.value_dim))]
        for _, projection, _ in projections:
            projection.dtype, projection.device = self.dtype, self.device
        self._projections = [(group, projection) for group, projection, _ in projections]
        self._build_sublayers([shape for _, _, shape in projections])
        self.attention_axes = (1,)
        self.input_shape = {"query": query, "value": value, "key": key}
        self.built = True

    def compute_output_shape(self, input_shape, return_attention_scores=False, **options):
        """The query's shape with its last axis ``output_shape`` (default: the query's own); with
        ``return_attention_scores``, a list: that, then the weights' shape (batch, heads, T, S)."""
        query = tuple(input_shape["query"]) if isinstance(input_shape, dict) else tuple(input_shape)
        out = (*query[:-1], *(self._output_shape or query[-1:]))
        if not return_attention_scores:
            return out
        return [out, (query[0], self.num_heads, query[1], tuple(input_shape["value"])[1])]

    def draws_dropout_masks(self, training):
        """Dropout of the attention weights draws a new random mask on the host every training step."""
        return training and self.dropout > 0

    # -- calling ---------------------------------------------------------------------------------
    def __call__(self, query, value=None, key=None, query_mask=None, value_mask=None, key_mask=None,
                 attention_mask=None, return_attention_scores=False, training=False, use_causal_mask=False):
        owner = f"MultiHeadAttention {self.name!r}"
        if value is None:
            raise TypeError(f"{owner} takes a query and a value: call it as mha(query, value) (self-attention: "
                            "mha(x, x))")
        given = {"query": query, "value": value, "key": key, "query_mask": query_mask, "value_mask": value_mask,
                 "key_mask": key_mask, "attention_mask": attention_mask}
        inputs = {name: item for name, item in given.items() if item is not None}
        options = {"use_causal_mask": arguments.boolean(owner, "use_causal_mask", use_causal_mask)}
        return_attention_scores = arguments.boolean(owner, "return_attention_scores", return_attention_scores)
        if any(is_symbolic(item) for item in inputs.values()):
            if return_attention_scores:          # a node with two outputs: [output, scores]
                options["return_attention_scores"] = True
            return call_symbolic(self, inputs, options)
        inputs = {name: item if isinstance(item, TensorBase) else
                  Tensor(np.asarray(item), dtype=None if name.endswith("mask") else self.dtype, device=self.device)
                  for name, item in inputs.items()}
        if not self.built:
            self.build_for({name: (None, *item.shape[1:]) for name, item in inputs.items()
                            if name in self.call_argument_names})
        return self.invoke(inputs, training, return_attention_scores=return_attention_scores, **options)

    def invoke(self, x, training=False, mask=None, use_causal_mask=False, return_attention_scores=False):
        """The attention of ``x`` ({'query', 'value', and optionally 'key', 'attention_mask', 'value_mask',
        'key_mask', 'query_mask'}); the output carries the query's mask."""
        owner = f"MultiHeadAttention {self.name!r}"
        if not isinstance(x, dict):
            raise TypeError(f"{owner} takes a query and a value: call it as mha(query, value); it cannot be a "
                            "layer of a Sequential model")
        query, value = x["query"], x["value"]
        key = x.get("key", value)
        self._check_inputs(owner, query, value, key)
        query_mask = getattr(query, "_keras_mask", None)
        query_mask = x.get("query_mask") if query_mask is None else query_mask
        if query_mask is not None:
            query_mask = _as_mask(owner, "the query's mask", query_mask, query.shape[:2])
        allowed = self._allowed_pairs(owner, x, query, value, key, query_mask, use_causal_mask)
        explicit = self.dropout > 0 or return_attention_scores
        out, weights = self._attend(query, value, key, allowed, training, explicit)
        if query_mask is not None:
            out._keras_mask = query_mask
        return (out, weights) if return_attention_scores else out

    def call(self, x, training=False):
        """The attention output of ``x`` (a dict, as ``invoke`` takes it)."""
        return self.invoke(x, training)

    def _check_inputs(self, owner, query, value, key):
        check_sequences(self, owner, (query, value, key),
                        [self.input_shape[name][-1] for name in ("query", "value", "key")])

    def _attend(self, query, value, key, allowed, training, explicit):
        """(out, the attention weights p) of the module's formulas; ``allowed``: (batch or 1, T, S) bool or None;
        ``explicit``: Keras's explicit path (below)."""
        layers = dict(self._projections)
        cast = {name: t if t.dtype == self.dtype else t.astype(self.dtype)
                for name, t in (("query", query), ("value", value), ("key", key))}
        q = layers["query_dense"].call(cast["query"]).transpose(0, 2, 1, 3)        # (batch, h, T, key_dim)
        k = layers["key_dense"].call(cast["key"]).transpose(0, 2, 3, 1)            # (batch, h, key_dim, S)
        v = layers["value_dense"].call(cast["value"]).transpose(0, 2, 1, 3)        # (batch, h, S, value_dim)
        scores = F.matmul(q * (1.0 / math.sqrt(self.key_dim)), k)                  # (batch, h, T, S)
        weights = self._weights_of(scores, allowed, explicit)
        dropped = inverted_dropout(weights, self.dropout, self._rng) if training else weights
        heads = F.matmul(dropped, v).transpose(0, 2, 1, 3)                        # (batch, T, h, value_dim)
        if self.use_gate:
            heads = heads * layers["_gate_dense"].call(cast["query"])
        return layers["output_dense"].call(heads), weights

    @staticmethod
    def _weights_of(scores, allowed, explicit):
        """The attention weights: softmax over the last axis of the scores, masked as Keras 3.15 masks them. Its
        explicit path (dropout, or the weights asked for) is its masked Softmax: masked scores become -1e9 and
        their weights 0, so a query with no allowed pair gets weights 0. Otherwise it runs the backend's fused
        attention, which adds -0.7 * 3.38953e38 to masked scores: a query with no allowed pair then attends to
        every position equally (the scores vanish in that sum, yet their gradient still flows through it)."""
        if allowed is None:
            return F.softmax(scores, axis=-1)
        allowed = allowed.reshape(allowed.shape[0], 1, *allowed.shape[1:])        # the same for every head
        if explicit:
            return F.where(allowed, F.softmax(F.where(allowed, scores, MASKED_SCORE), axis=-1), 0.0)
        return F.softmax(scores + (1.0 - allowed.astype(scores.dtype)) * FUSED_MASKED_SCORE, axis=-1)

    def _allowed_pairs(self, owner, x, query, value, key, query_mask, use_causal_mask):
        """The (batch or 1, T, S) bool Tensor of the pairs (t, s) that may attend, or None when all may: the AND
        of the masks the module's docstring lists (as float products, which every device computes)."""
        steps, sources = query.shape[1], value.shape[1]
        factors = []
        if query_mask is not None:                                                  # checked by invoke
            factors.append(query_mask.reshape(-1, steps, 1))
        for name, given in (("value_mask", "value"), ("key_mask", "key")):
            mask = x.get(name, getattr(x.get(given), "_keras_mask", None))      # a key not given has no mask
            if mask is not None:
                factors.append(_as_mask(owner, name, mask, value.shape[:2]).reshape(-1, 1, sources))
        if "attention_mask" in x:
            factors.append(_as_mask(owner, "attention_mask", x["attention_mask"], (query.shape[0], steps, sources)))
        if use_causal_mask:
            factors.append(band_mask(query, steps, sources, "causal", None))
        if self.sliding_window is not None:
            factors.append(band_mask(query, steps, sources, "window", self.sliding_window))
        if not factors:
            return None
        product = factors[0].astype(np.float32)
        for factor in factors[1:]:
            product = product * factor.astype(np.float32)
        return product > 0

    # -- config ----------------------------------------------------------------------------------
    def get_config(self):
        """Keras 3's MultiHeadAttention config."""
        serialize = {"kernel_initializer": initializers.serialize, "bias_initializer": initializers.serialize,
                     "kernel_regularizer": regularizers.serialize, "bias_regularizer": regularizers.serialize,
                     "kernel_constraint": constraints.serialize, "bias_constraint": constraints.serialize}
        own = {name: convert(getattr(self, name)) for name, convert in serialize.items()}
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "use_gate": self.use_gate, "output_shape": None if self._output_shape is None else
                list(self._output_shape), "attention_axes": None if self.attention_axes is None else
                list(self.attention_axes), "sliding_window": self.sliding_window,
                **{name: own[name] for name in ("kernel_initializer", "bias_initializer", "kernel_regularizer",
                                                "bias_regularizer")},
                "activity_regularizer": None, "kernel_constraint": own["kernel_constraint"],
                "bias_constraint": own["bias_constraint"], "seed": self.seed}

    @classmethod
    def _config_arguments(cls, config):
        names = ("num_heads", "key_dim", "value_dim", "dropout", "use_bias", "output_shape", "attention_axes",
                 "sliding_window", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
                 "activity_regularizer", "kernel_constraint", "bias_constraint", "use_gate", "seed")
        defaults = {"dropout": 0.0, "use_bias": True, "kernel_initializer": "glorot_uniform",
                    "bias_initializer": "zeros", "use_gate": False}
        return {**super()._config_arguments(config), "num_heads": config["num_heads"], "key_dim": config["key_dim"],
                **{name: config.get(name, defaults.get(name)) for name in names[2:]}}


def check_sequences(layer, owner, tensors, feature_sizes):
    """ValueError naming ``layer`` unless the (query, value, key) ``tensors`` are sequences (batch, steps,
    features) of the built ``feature_sizes``, of one batch size, the value's steps the key's."""
    for name, tensor, size in zip(("query", "value", "key"), tensors, feature_sizes):
        if tensor.ndim != 3 or tensor.shape[-1] != size:
            raise ValueError(f"Input {name!r} of layer {layer.name!r} is incompatible with the layer: expected "
                             f"shape (batch, steps, {size}), got {tuple(tensor.shape)}")
    query, value, key = tensors
    if value.shape[:2] != key.shape[:2] or query.shape[0] != value.shape[0]:
        raise ValueError(f"{owner}: the query {tuple(query.shape)}, value {tuple(value.shape)} and key "
                         f"{tuple(key.shape)} must have the same batch size, and the value and the key the same "
                         "number of steps")


def _output_shape(owner, value):
    """``output_shape`` as a tuple of sizes, or None (Keras: an int or a sequence; an empty one means None)."""
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return None
    return arguments.shape(owner, "output_shape", value, allow_none=False)


def _attention_axes(owner, value):
    """None, or (1,): attention over the sequence axis of rank-3 inputs (-2 names it too)."""
    if value is None:
        return None
    axes = (value,) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if not isinstance(axes, (list, tuple)) or [int(a) if isinstance(a, (int, np.integer)) else a
                                               for a in axes] not in ([1], [-2]):
        raise ValueError(f"{owner}: attention_axes must be None or the sequence axis, 1 (inputs of shape (batch, "
                         f"steps, features)); attention over other axes is not supported, got {value!r:.60}")
    return (1,)


def _as_mask(owner, name, mask, shape):
    """``mask`` as a bool Tensor of ``shape`` (True, or non-zero, where attention is allowed)."""
    if not isinstance(mask, TensorBase):
        raise TypeError(f"{owner}: {name} must be a Tensor or an array, got {type(mask).__name__}")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{owner}: {name} must have shape {tuple(shape)}, got {tuple(mask.shape)}")
    return mask if mask.dtype == np.bool_ else mask != 0


def band_mask(like, steps, sources, kind, window):
    """A (1, T, S) bool constant: s <= t (causal) or |t - s| < window; uploaded once per device and shape."""
    def make():
        t, s = np.arange(steps)[:, None], np.arange(sources)[None, :]
        allowed = s <= t if kind == "causal" else np.abs(t - s) < window
        return allowed.reshape(1, steps, sources)
    return host_constant(like, ("attention", kind, window, steps, sources), make, np.bool_)
