"""Keras-style layers: Dense, Activation, Dropout, Flatten, Reshape, Embedding, InputLayer (and ``Input``),
TimeDistributed.

The convolution and pooling layers are in conv_layers.py, the normalization layers in
norm_layers.py, MultiHeadAttention in attention_layers.py; every layer class is reachable from here
(``nnengine.layers.Conv2D``). The module is one piece (under 500 lines): the core layers and the
registry of every class a file may name.

A layer holds its weights as Tensors that require grad and computes with the
core ops, so autograd derives its backward pass. Layers build lazily: the
weights are created on the first call (or at construction when an input shape
is given), from the size of the input's last axis.

Shapes follow Keras: a Dense kernel is (in, out) and the layer computes
a = activation(x @ kernel + bias) over the last axis. When the activation is
one the backend fuses (linear, relu, sigmoid, tanh, softmax), the product,
the bias and the activation run as ONE fused op (``nnengine.functional.linear``).
"""
import math

import numpy as np

from . import activations, arguments, constraints, initializers, regularizers
from .attention_layers import MultiHeadAttention
from .conv_layers import (AveragePooling1D, AveragePooling2D, Conv1D, Conv2D, GlobalAveragePooling1D,
                          GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D)
from .conv_transpose import Conv1DTranspose, Conv2DTranspose
from .separable_conv import DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D
from .conv_layers import (AvgPool1D, AvgPool2D, Convolution1D, Convolution2D, GlobalAvgPool1D,  # Keras's aliases
                          GlobalAvgPool2D, GlobalMaxPool1D, GlobalMaxPool2D, MaxPool1D, MaxPool2D)
from .layer_base import (BUILD_LOCK, KernelAndBias, Layer, batch_shape, check_index_values, checked_indices,
                         config_dtype, stored_weights)
from .einsum_dense import EinsumDense
from .merge_layers import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add, average,
                           concatenate, dot, maximum, minimum, multiply, subtract)
from .norm_layers import BatchNormalization, GroupNormalization, LayerNormalization, RMSNormalization
from .preprocessing_layers import CategoryEncoding, Normalization
from .sequence_attention import AdditiveAttention, Attention
from .bidirectional import Bidirectional
from .recurrent_layers import GRU, LSTM, SimpleRNN
from .rnn_cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from .rnn_layer import RNN
from .spatial_layers import Cropping1D, Cropping2D, UpSampling1D, UpSampling2D, ZeroPadding1D, ZeroPadding2D
from .dropout_masks import dropout_mask
from .noise_layers import AlphaDropout, GaussianDropout, GaussianNoise, SpatialDropout1D, SpatialDropout2D
from .image_augmentation import (RandomBrightness, RandomContrast, RandomFlip, RandomRotation, RandomTranslation,
                                 RandomZoom)
from .image_resizing import CenterCrop, RandomCrop, Resizing
from .utility_layers import (ELU, ActivityRegularization, Identity, Lambda, LeakyReLU, Masking, Permute, PReLU,
                             ReLU, RepeatVector, Rescaling, Softmax, UnitNormalization, checked_noise_shape,
                             inverted_dropout, noise_mask_shape)
from .utils import unique_name
from .wrapper_layers import Wrapper, layer_from_entry, serialized_layer

__all__ = ["Layer", "Dense", "Activation", "Dropout", "Flatten", "Reshape", "Embedding", "InputLayer", "Input",
           "Conv1D", "Conv2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
           "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
           "BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization", "ReLU", "LeakyReLU",
           "Softmax", "Rescaling", "Permute",
           "RepeatVector", "Identity", "Masking", "Normalization", "UpSampling1D", "UpSampling2D", "ZeroPadding1D",
           "ZeroPadding2D", "Cropping1D", "Cropping2D", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
           "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot", "MultiHeadAttention",
           "Attention", "AdditiveAttention", "AlphaDropout", "EinsumDense", "RNN", "SimpleRNNCell", "LSTMCell",
           "GRUCell", "StackedRNNCells",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot", "BUILD_LOCK",
           "stored_weights", "Convolution1D", "Convolution2D", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D",
           "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D", "ELU", "PReLU",
           "UnitNormalization", "ActivityRegularization", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise",
           "GaussianDropout", "Conv2DTranspose", "Conv1DTranspose", "Convolution2DTranspose", "Convolution1DTranspose",
           "DepthwiseConv2D", "DepthwiseConv1D", "SeparableConv2D", "SeparableConv1D", "SeparableConvolution2D",
           "SeparableConvolution1D", "Lambda", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
           "RandomContrast", "RandomBrightness", "Resizing", "CenterCrop",
           "RandomCrop", "CategoryEncoding"]


class Dense(KernelAndBias, Layer):
    """A densely connected layer: a = activation(x @ kernel + bias), over the last axis of x.

    Args:
        units: the output size.
        activation: a name from ``nnengine.activations`` or a callable; None is linear.
        use_bias: add a bias vector.
        kernel_initializer, bias_initializer: names or Initializer objects (Keras's defaults).
        input_shape / input_dim: the input size, to build the layer at once (as Keras allows).
    """

    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"Dense {self.name!r}"
        self.units = arguments.integer(owner, "units", units, minimum=1)
        self._init_kernel_and_bias(owner, activation, use_bias, kernel_initializer, bias_initializer,
                                   kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint)
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def build(self, input_shape):
        """Create kernel (in, units) and bias (units,) for inputs whose last axis is ``in``."""
        input_shape = batch_shape(f"Dense {self.name!r}", "input_shape", input_shape)
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Dense {self.name!r} needs inputs (batch, ..., features) with a known feature "
                             f"size, got input shape {tuple(input_shape)}")
        self._add_kernel_and_bias((input_shape[-1], self.units), self.units)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        """Input shape with its last axis replaced by ``units``."""
        return (*tuple(input_shape)[:-1], self.units)

    def accepts(self, input_shape):
        """Any inputs of rank 2 or more whose last axis is the kernel's input size (Keras's Dense)."""
        shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else ()
        return len(shape) >= 2 and not isinstance(shape[0], (list, tuple)) and shape[-1] in (None, self.kernel.shape[0])

    def _check_input(self, x):
        expected = self.kernel.shape[0]
        if x.ndim < 2 or x.shape[-1] != expected:
            raise ValueError(f"Input of layer {self.name!r} is incompatible with the layer: expected axis -1 of "
                             f"input shape to have value {expected}, but received input with shape {x.shape}")

    def call(self, x, training=False, return_logits=False):
        """activation(x @ kernel + bias); with ``return_logits`` the logits, x @ kernel + bias."""
        self._check_input(x)
        rows = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        x_cast = rows if rows.dtype == self.kernel.dtype else rows.astype(self.kernel.dtype)
        out = self._activated_product(x_cast, self.kernel, return_logits)
        return out if x.ndim == 2 else out.reshape(*x.shape[:-1], self.units)

    def get_config(self):
        """Keras 3's Dense config."""
        return {**super().get_config(), "units": self.units, **self._kernel_and_bias_config()}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "units": config["units"],
                **cls._kernel_and_bias_arguments(config)}


class Activation(Layer):
    """Applies an activation function: ``Activation('relu')``."""
    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, x, training=False, return_logits=False):
        """activation(x); with ``return_logits`` x itself, the logits of this activation."""
        return x if return_logits else self.activation(x)

    def get_config(self):
        """Keras 3's Activation config."""
        return {**super().get_config(), "activation": activations.serialize(self.activation)}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "activation": config["activation"]}


class Dropout(Layer):
    """Sets a fraction ``rate`` of inputs to zero during training and scales the rest by 1 / (1 - rate).

    At inference (``training=False``: evaluate, predict) it passes inputs through unchanged.
    """
    supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"Dropout {self.name!r}"
        rate = arguments.number(owner, "rate", rate, 0, 1, high_open=True)
        noise_shape = checked_noise_shape(owner, noise_shape)
        seed = None if seed is None else arguments.integer(owner, "seed", seed, minimum=0)
        self.rate, self.seed, self.noise_shape = rate, seed, noise_shape
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def draws_dropout_masks(self, training):
        """In training, each step draws a new mask on the host (fed to a compiled step: dropout_masks.py)."""
        return training and self.rate > 0

    def call(self, x, training=False):
        """Inverted dropout: x * mask / (1 - rate) with mask ~ Bernoulli(1 - rate), in training only."""
        if not training or self.rate == 0:
            return x
        if self.noise_shape is None:
            return inverted_dropout(x, self.rate, self._rng)
        shape = noise_mask_shape(f"Dropout {self.name!r}", self.noise_shape, x.shape)
        return x * dropout_mask(self._rng, shape, self.rate, x.dtype, x.device)

    def get_config(self):
        """Keras 3's Dropout config."""
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "rate": config["rate"], "seed": config.get("seed"),
                "noise_shape": config.get("noise_shape")}


class Flatten(Layer):
    """Flattens every axis but the batch axis: (n, d1, d2, ...) -> (n, d1 * d2 * ...).

    ``data_format`` may be None or 'channels_last' (Keras's default, the only layout nnengine uses).
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"Flatten {self.name!r}: data_format must be None or 'channels_last' (nnengine is "
                             f"channels_last only), got {data_format!r}")

    def call(self, x, training=False):
        """x reshaped to (n, -1)."""
        return x.reshape(x.shape[0], -1) if x.ndim != 2 else x

    def compute_output_shape(self, input_shape):
        """(batch, product of the other axes)."""
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)

    def get_config(self):
        """Keras 3's Flatten config."""
        return {**super().get_config(), "data_format": "channels_last"}


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1: whatever the size leaves)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        owner = f"Reshape {self.name!r}"
        if not isinstance(target_shape, (tuple, list)) or not target_shape:
            raise TypeError(f"{owner}: target_shape must be a non-empty tuple of ints, got {target_shape!r}")
        shape = tuple(-1 if d == -1 else arguments.integer(owner, "target_shape", d, minimum=1) for d in target_shape)
        if shape.count(-1) > 1:
            raise ValueError(f"{owner}: target_shape may hold one -1, got {target_shape!r}")
        self.target_shape = shape

    def _resolved(self, sample_shape):
        """target_shape with its -1 worked out for samples of ``sample_shape``; ValueError if sizes differ."""
        size = math.prod(sample_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        if (-1 in self.target_shape and (known == 0 or size % known)) or \
                (-1 not in self.target_shape and known != size):
            raise ValueError(f"Reshape {self.name!r}: a sample of shape {tuple(sample_shape)} ({size} values) "
                             f"cannot be reshaped to {self.target_shape}")
        return tuple(size // known if d == -1 else d for d in self.target_shape)

    def call(self, x, training=False):
        """x reshaped to (batch, *target_shape)."""
        return x.reshape(x.shape[0], *self._resolved(x.shape[1:]))

    def compute_output_shape(self, input_shape):
        """(batch, *target_shape), the -1 resolved when the input's size is known."""
        rest = tuple(input_shape)[1:]
        if any(d is None for d in rest):
            return (input_shape[0], *(None if d == -1 else d for d in self.target_shape))
        return (input_shape[0], *self._resolved(rest))

    def get_config(self):
        """Keras 3's config."""
        return {**super().get_config(), "target_shape": list(self.target_shape)}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "target_shape": tuple(config["target_shape"])}


class Embedding(Layer):
    """Maps integer indices in [0, input_dim) to rows of an (input_dim, output_dim) matrix: x -> embeddings[x].

    Inputs of any shape; the output adds an axis of output_dim. Float inputs are taken as indices
    when every value is a whole number (Keras casts them); any other value, or an index outside
    [0, input_dim), is a ValueError naming the layer. The check reads the indices on the host (on
    a GPU that is one copy back per call). The gradient adds each output row's gradient into the
    row it came from (the gather's backward, ``index_add``).
    With ``mask_zero`` index 0 is padding: the output carries Keras's mask x != 0 (masks.py), which the layers
    downstream use to skip padded steps; index 0 keeps its row, so ``input_dim`` counts it (vocabulary + 1).
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, input_length=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"Embedding {self.name!r}"
        self.input_dim = arguments.integer(owner, "input_dim", input_dim, minimum=1)
        self.output_dim = arguments.integer(owner, "output_dim", output_dim, minimum=1)
        self.mask_zero = arguments.boolean(owner, "mask_zero", mask_zero)
        if input_length is not None and self.batch_input_shape is None:     # tf.keras 2.x's argument
            self.batch_input_shape = (None, arguments.integer(owner, "input_length", input_length, minimum=1))
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.embeddings = None
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def build(self, input_shape):
        """Create embeddings (input_dim, output_dim)."""
        self.embeddings = self.add_weight((self.input_dim, self.output_dim), self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint, name="embeddings")
        super().build(batch_shape(f"Embedding {self.name!r}", "input_shape", input_shape))

    def check_indices(self, values):
        """ValueError (TypeError) naming the layer unless every value of the numpy array ``values`` is an index in
        [0, input_dim) (whole floats are indices, as Keras casts them)."""
        check_index_values(f"Embedding {self.name!r}", values, self.input_dim)

    def call(self, x, training=False):
        """embeddings[x]: shape (*x.shape, output_dim)."""
        return self.embeddings[checked_indices(self, x, self.embeddings.device)]

    def accepts(self, input_shape):
        """Index arrays of any shape (its weights fix none of their axes): a shared Embedding may read a query of 7
        tokens and a document of 5, as in Keras."""
        return isinstance(input_shape, (list, tuple)) and all(
            size is None or isinstance(size, int) for size in input_shape)

    def compute_mask(self, inputs, mask=None):
        """With ``mask_zero``, Keras's mask ``inputs != 0`` (True where an index is not padding), else None."""
        if not self.mask_zero:
            return None
        return inputs != 0

    def compute_output_shape(self, input_shape):
        """(*input_shape, output_dim)."""
        return (*tuple(input_shape), self.output_dim)

    def get_config(self):
        """Keras 3's config."""
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
                "mask_zero": self.mask_zero}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "input_dim": config["input_dim"],
                "output_dim": config["output_dim"],
                "embeddings_initializer": config.get("embeddings_initializer", "uniform"),
                "embeddings_regularizer": config.get("embeddings_regularizer"),
                "activity_regularizer": config.get("activity_regularizer"),
                "embeddings_constraint": config.get("embeddings_constraint"),
                "mask_zero": config.get("mask_zero", False), "input_length": config.get("input_length")}


class InputLayer(Layer):
    """Declares the input shape of a model (no computation); calling layers on it builds a functional model.

    Args:
        shape: the shape of one sample, e.g. (10,); the batch axis is implied.
        batch_size: a fixed batch size, or None.
        dtype: what inputs are cast to: float32 (the default), float64, or int32/int64 for integer
            inputs, as Keras allows (a Dense layer after it casts them to its own float dtype).
    """

    accepts_integer_dtype = True
    #: layers called on it start a functional model (symbolic.py)
    starts_chain = True

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, input_shape=None,
                 **kwargs):
        shape = input_shape if shape is None else shape
        if batch_shape is None:
            if shape is None:
                raise ValueError("InputLayer needs a shape, e.g. InputLayer(shape=(10,))")
            if batch_size is not None:
                batch_size = arguments.integer("InputLayer", "batch_size", batch_size, minimum=1)
            batch_shape = (batch_size, *arguments.shape("InputLayer", "shape", shape))
        super().__init__(name=name if name is not None else unique_name("input_layer"), dtype=dtype,
                         batch_input_shape=batch_shape, **kwargs)
        self.built = True
        self.input_shape = self.batch_input_shape

    @property
    def shape(self):
        """The batch shape, None for the batch axis (as a Keras input tensor shows it)."""
        return self.batch_input_shape

    def call(self, x, training=False):
        """The input itself."""
        return x

    def get_config(self):
        """Keras 3's InputLayer config."""
        return {"batch_shape": list(self.batch_input_shape), "dtype": self.dtype, "sparse": False,
                "ragged": False, "name": self.name, "optional": False}

    @classmethod
    def _config_arguments(cls, config):
        shape = config.get("batch_shape") or config.get("batch_input_shape")
        if shape is None:
            raise ValueError("InputLayer config has no batch_shape")
        return {"batch_shape": tuple(shape), "dtype": config_dtype(config.get("dtype")), "name": config.get("name")}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None):
    """A model's input, as ``keras.Input(shape=(10,))``: an InputLayer, which starts a Sequential or is called on
    by layers to build a functional model (symbolic.py)."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape)


class TimeDistributed(Wrapper):
    """Applies ``layer`` to every step of a sequence, with the same weights: (n, T, ...) -> (n, T, ...its output).

    The steps are folded into the batch, (n * T, ...), for one call of the layer. Keras's names and files: the
    layer keeps its own name (``time_distributed/dense/kernel``), its variables in the group ``layer``.
    """

    supports_masking = True

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed {self.name!r}: layer must be a Layer, got {type(layer).__name__}")
        self.layer = layer
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def sublayers(self):
        """The wrapped layer (Keras's group ``layer``)."""
        return [("layer", self.layer)]

    def build(self, input_shape):
        """Build the layer for one step's shape (batch, *the axes after time)."""
        input_shape = batch_shape(f"TimeDistributed {self.name!r}", "input_shape", input_shape)
        if len(input_shape) < 3:
            raise ValueError(f"TimeDistributed {self.name!r} expects inputs (batch, steps, ...) of rank 3 or more, "
                             f"got input shape {tuple(input_shape)}")
        self._build_sublayers([(None, *input_shape[2:])])
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        """(batch, steps, *the layer's output shape for one step)."""
        step = self.layer.compute_output_shape((None, *tuple(input_shape)[2:]))
        return (input_shape[0], input_shape[1], *step[1:])

    def call(self, x, training=False):
        """The layer on (n * T, ...), reshaped back to (n, T, ...)."""
        if x.ndim < 3:
            raise ValueError(f"TimeDistributed {self.name!r} expects inputs (batch, steps, ...), got shape {x.shape}")
        samples, steps = x.shape[:2]
        out = self.layer.invoke(x.reshape(samples * steps, *x.shape[2:]), training)
        return out.reshape(samples, steps, *out.shape[1:])

    def get_config(self):
        """Keras 3's TimeDistributed config: the layer serialized inside it."""
        return {**super().get_config(), "layer": serialized_layer(self.layer)}

    @classmethod
    def from_config(cls, config):
        """Rebuild the wrapper and its layer (one of nnengine's layer classes) from Keras's config."""
        layer = layer_from_entry("TimeDistributed", "layer", config.get("layer"), LAYER_CLASSES,
                                 "one of nnengine's layers")
        return cls(layer, **super()._config_arguments(config))


LAYER_CLASSES = {cls.__name__: cls for cls in (
    Dense, Activation, Dropout, Flatten, Reshape, Embedding, InputLayer, Conv1D, Conv2D, MaxPooling1D, MaxPooling2D,
    AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D,
    GlobalMaxPooling2D, BatchNormalization, LayerNormalization, ReLU, LeakyReLU, Softmax, Rescaling, Permute,
    RepeatVector, Identity, Masking, Normalization, UpSampling1D, UpSampling2D, ZeroPadding1D, ZeroPadding2D,
    Cropping1D, Cropping2D, SimpleRNN, LSTM, GRU, Bidirectional, TimeDistributed, Add, Subtract, Multiply, Average,
    Maximum, Minimum, Concatenate, Dot, MultiHeadAttention, ELU, PReLU, UnitNormalization, ActivityRegularization,
    SpatialDropout1D, SpatialDropout2D, GaussianNoise, GaussianDropout, Conv2DTranspose, Conv1DTranspose,
    DepthwiseConv2D, DepthwiseConv1D, SeparableConv2D, SeparableConv1D, RandomFlip, RandomRotation, RandomZoom,
    RandomTranslation, RandomContrast, RandomBrightness, Resizing, CenterCrop, RandomCrop, CategoryEncoding,
    GroupNormalization, RMSNormalization, Attention, AdditiveAttention, AlphaDropout, EinsumDense, RNN, SimpleRNNCell,
    LSTMCell, GRUCell, StackedRNNCells)}
Convolution2DTranspose, Convolution1DTranspose = Conv2DTranspose, Conv1DTranspose       # Keras's other names
SeparableConvolution2D, SeparableConvolution1D = SeparableConv2D, SeparableConv1D
