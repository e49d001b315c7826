"""Keras-style layers: Dense, Activation, Dropout, Flatten, InputLayer (and ``Input``).

A layer holds its weights as Tensors that require grad and computes with the
core ops, so autograd derives its backward pass. Layers build lazily: the
weights are created on the first call (or at construction when an input shape
is given), from the size of the input's last axis.

Shapes follow Keras: a Dense kernel is (in, out) and the layer computes
a = activation(x @ kernel + bias) over the last axis. When the activation is
one the backend fuses (linear, relu, sigmoid, tanh, softmax), the product,
the bias and the activation run as ONE fused op (``nnengine.functional.linear``).
"""
import contextlib
import contextvars
import math
import threading
from abc import ABC, abstractmethod

import numpy as np

from . import activations, arguments, initializers
from . import functional as F
from .device import get_default_device
from .dtypes import is_float_dtype, to_supported_dtype
from .tensor import Tensor
from .utils import global_rng, snake_case, unique_name

__all__ = ["Layer", "Dense", "Activation", "Dropout", "Flatten", "InputLayer", "Input"]

#: held while a layer or model builds lazily, so that threads calling it for the first time build it once
BUILD_LOCK = threading.RLock()

_WEIGHT_SOURCE = contextvars.ContextVar("nnengine_weight_source", default=None)


@contextlib.contextmanager
def stored_weights(source):
    """Inside the block, layers that build take each new weight from ``source(layer, name, shape)``.

    Loading a file uses this: the source compares the shape a layer asks for with the stored one
    before reading or allocating anything, and the layers skip their random initialization.
    """
    token = _WEIGHT_SOURCE.set(source)
    try:
        yield
    finally:
        _WEIGHT_SOURCE.reset(token)


def _batch_shape(owner, name, shape):
    """A batch shape: its first axis a positive int or None (the batch), the rest positive ints or None."""
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list)) or not shape:
        raise TypeError(f"{owner}: {name} must be a tuple (batch, *sizes), got {shape!r}")
    return arguments.shape(owner, name, shape)


class Layer(ABC):
    """Base class of layers: naming, lazy building, weights and Keras's config round trip.

    Subclasses implement ``build(input_shape)`` (create weights with ``add_weight``),
    ``call(x, training)`` and ``compute_output_shape(input_shape)``.
    """

    #: whether the layer may hold an integer dtype (only inputs: layers with weights compute in floats)
    accepts_integer_dtype = False

    def __init__(self, name=None, dtype=None, trainable=True, input_shape=None, input_dim=None,
                 batch_input_shape=None):
        self.name = arguments.text(type(self).__name__, "name", name, optional=True) or \
            unique_name(snake_case(type(self).__name__))
        self.dtype = to_supported_dtype(dtype or "float32").name
        if not is_float_dtype(self.dtype) and not (self.accepts_integer_dtype and self.dtype in ("int32", "int64")):
            allowed = "float32, float64, int32 or int64" if self.accepts_integer_dtype else "float32 or float64"
            raise TypeError(f"layer {self.name!r}: dtype must be {allowed}, got {self.dtype}")
        self.trainable = arguments.boolean(f"layer {self.name!r}", "trainable", trainable)
        self.built = False
        self.input_shape = None
        self._weights = []
        self._weight_names = []
        self.device = get_default_device()
        self.batch_input_shape = None
        owner = f"layer {self.name!r}"
        if input_dim is not None:
            input_shape = (arguments.integer(owner, "input_dim", input_dim, minimum=1),)
        if input_shape is not None:
            batch_input_shape = (None, *arguments.shape(owner, "input_shape", input_shape))
        if batch_input_shape is not None:
            self.batch_input_shape = _batch_shape(owner, "batch_input_shape", batch_input_shape)

    # -- weights ---------------------------------------------------------------------------
    def add_weight(self, name, shape, initializer, trainable=True):
        """Create a weight Tensor of ``shape`` from ``initializer`` (or a file being loaded) on this layer's device."""
        source = _WEIGHT_SOURCE.get()
        shape = tuple(shape)
        values = initializers.get(initializer)(shape, self.dtype) if source is None else source(self, name, shape)
        weight = Tensor(values, dtype=self.dtype, device=self.device, requires_grad=trainable)
        self._weights.append(weight)
        self._weight_names.append(name)
        return weight

    @property
    def weights(self):
        """Every weight Tensor, in Keras's order (kernel before bias)."""
        return list(self._weights)

    @property
    def trainable_weights(self):
        """The weights an optimizer updates (all of them unless ``trainable`` is False)."""
        return [w for w in self._weights if w.requires_grad] if self.trainable else []

    @property
    def non_trainable_weights(self):
        """The weights an optimizer leaves alone."""
        return [w for w in self._weights if w not in self.trainable_weights]

    @property
    def weight_names(self):
        """Keras's short names of the weights ('kernel', 'bias')."""
        return list(self._weight_names)

    def get_weights(self):
        """The weights as numpy arrays, in Keras's order."""
        return [w.numpy() for w in self._weights]

    def set_weights(self, weights):
        """Overwrite the weights from numpy arrays of exactly the current shapes."""
        if not isinstance(weights, (list, tuple)):
            raise TypeError(f"layer {self.name!r}: set_weights expects a list of arrays, got {type(weights).__name__}")
        weights = list(weights)
        if len(weights) != len(self._weights):
            raise ValueError(f"layer {self.name!r} expects {len(self._weights)} weight arrays, "
                             f"got {len(weights)}")
        for name, current, new in zip(self._weight_names, self._weights, weights):
            new = np.asarray(new)
            if new.shape != current.shape:
                raise ValueError(f"layer {self.name!r}: weight {name!r} has shape {current.shape}, "
                                 f"got an array of shape {new.shape}")
        for current, new in zip(self._weights, weights):
            current.assign_(new)

    def count_params(self):
        """The number of scalars in the weights."""
        return sum(math.prod(w.shape) for w in self._weights)

    def to(self, device):
        """Move the weights to ``device`` in place; return self."""
        for weight in self._weights:
            weight.move_(device)
        self.device = device
        return self

    # -- building and calling ------------------------------------------------------------------
    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        self.input_shape = _batch_shape(f"layer {self.name!r}", "input_shape", input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        """The output shape for ``input_shape``; the identity unless a layer says otherwise."""
        return tuple(input_shape)

    @abstractmethod
    def call(self, x, training=False):
        """The computation on a Tensor ``x``; ``training`` switches dropout-like behaviour."""

    def capture_blocker(self, training):
        """Why a compiled step cannot replay this layer, or None (the default: it can).

        A layer whose call uploads host data that changes from step to step (new random numbers, for
        one) must say so here: a captured plan would replay the first step's data forever.
        """
        return None

    def __call__(self, x, training=False):
        if isinstance(x, InputLayer):
            raise TypeError(f"layer {self.name!r} was called on an Input: that is Keras's Functional API "
                            "(Model(inputs, outputs)), which nnengine does not support; put the layers in a "
                            "Sequential([Input(shape=...), ...]) instead")
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x), dtype=self.dtype, device=self.device)
        if not self.built:
            with BUILD_LOCK:
                if not self.built:
                    self.build((None, *x.shape[1:]))
        return self.call(x, training=training)

    # -- config ------------------------------------------------------------------------------
    def get_config(self):
        """Keras 3's config dict of this layer (what ``model.save`` writes)."""
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": self.dtype},
                            "registered_name": None}}
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuild a layer from its config dict (Keras 3 or tf.keras 2.x)."""
        return cls(**cls._config_arguments(config))

    @classmethod
    def _config_arguments(cls, config):
        """The constructor arguments in a config, ignoring keys nnengine does not use."""
        arguments = {"name": config.get("name"), "trainable": config.get("trainable", True),
                     "dtype": _config_dtype(config.get("dtype"))}
        if config.get("batch_input_shape") is not None:           # tf.keras 2.x
            arguments["batch_input_shape"] = tuple(config["batch_input_shape"])
        if config.get("batch_shape") is not None:
            arguments["batch_input_shape"] = tuple(config["batch_shape"])
        return arguments

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}, built={self.built}>"


def _config_dtype(dtype):
    """The dtype name in a Keras config: a string, or Keras 3's DTypePolicy dict."""
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    if dtype in (None, "mixed_float16", "mixed_bfloat16"):
        return "float32"
    return dtype


class Dense(Layer):
    """A densely connected layer: a = activation(x @ kernel + bias), over the last axis of x.

    Args:
        units: the output size.
        activation: a name from ``nnengine.activations`` or a callable; None is linear.
        use_bias: add a bias vector.
        kernel_initializer, bias_initializer: names or Initializer objects (Keras's defaults).
        input_shape / input_dim: the input size, to build the layer at once (as Keras allows).
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.units = arguments.integer(f"Dense {self.name!r}", "units", units, minimum=1)
        self.activation = activations.get(activation)
        # the backend's fused name for this activation, or None when it runs after the fused product
        self._fused_activation = activations.fused_name(self.activation)
        self.use_bias = arguments.boolean(f"Dense {self.name!r}", "use_bias", use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel = self.bias = None
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def build(self, input_shape):
        """Create kernel (in, units) and bias (units,) for inputs whose last axis is ``in``."""
        input_shape = _batch_shape(f"Dense {self.name!r}", "input_shape", input_shape)
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Dense {self.name!r} needs inputs (batch, ..., features) with a known feature "
                             f"size, got input shape {tuple(input_shape)}")
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        """Input shape with its last axis replaced by ``units``."""
        return (*tuple(input_shape)[:-1], self.units)

    def _check_input(self, x):
        expected = self.kernel.shape[0]
        if x.ndim < 2 or x.shape[-1] != expected:
            raise ValueError(f"Input of layer {self.name!r} is incompatible with the layer: expected axis -1 of "
                             f"input shape to have value {expected}, but received input with shape {x.shape}")

    def call(self, x, training=False, return_logits=False):
        """activation(x @ kernel + bias); with ``return_logits`` the logits, x @ kernel + bias."""
        self._check_input(x)
        fused = "none" if return_logits else self._fused_activation
        rows = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        x_cast = rows if rows.dtype == self.kernel.dtype else rows.astype(self.kernel.dtype)
        out = F.linear(x_cast, self.kernel, self.bias, fused if fused is not None else "none")
        if fused is None:
            out = self.activation(out)
        return out if x.ndim == 2 else out.reshape(*x.shape[:-1], self.units)

    def get_config(self):
        """Keras 3's Dense config."""
        config = super().get_config()
        config.update({
            "units": self.units, "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None,
            "bias_constraint": None})
        return config

    @classmethod
    def _config_arguments(cls, config):
        arguments = super()._config_arguments(config)
        arguments.update(units=config["units"], activation=config.get("activation", "linear"),
                         use_bias=config.get("use_bias", True),
                         kernel_initializer=config.get("kernel_initializer", "glorot_uniform"),
                         bias_initializer=config.get("bias_initializer", "zeros"))
        for key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                    "bias_constraint"):
            if config.get(key) is not None:
                raise ValueError(f"Dense {config.get('name')!r}: {key} is not supported by nnengine")
        return arguments


class Activation(Layer):
    """Applies an activation function: ``Activation('relu')``."""

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

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"Dropout {self.name!r}"
        rate = arguments.number(owner, "rate", rate, 0, 1, high_open=True)
        if noise_shape is not None:
            raise ValueError(f"{owner}: noise_shape is not supported")
        seed = None if seed is None else arguments.integer(owner, "seed", seed, minimum=0)
        self.rate, self.seed = rate, seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def capture_blocker(self, training):
        """In training, each step draws a new mask on the host, which a captured plan would freeze."""
        if training and self.rate > 0:
            return f"Dropout {self.name!r} draws a new random mask on the host every training step"
        return None

    def call(self, x, training=False):
        """Inverted dropout: x * mask / (1 - rate) with mask ~ Bernoulli(1 - rate), in training only."""
        if not training or self.rate == 0:
            return x
        rng = self._rng or global_rng()
        keep = rng.random(x.shape) >= self.rate
        mask = Tensor(keep / (1.0 - self.rate), dtype=x.dtype, device=x.device)
        return x * mask

    def get_config(self):
        """Keras 3's Dropout config."""
        return {**super().get_config(), "rate": self.rate, "seed": self.seed, "noise_shape": None}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "rate": config["rate"], "seed": config.get("seed")}


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


class InputLayer(Layer):
    """Declares the input shape of a Sequential model (no computation).

    Args:
        shape: the shape of one sample, e.g. (10,); the batch axis is implied.
        batch_size: a fixed batch size, or None.
        dtype: what inputs are cast to: float32 (the default), float64, or int32/int64 for integer
            inputs, as Keras allows (a Dense layer after it casts them to its own float dtype).
    """

    accepts_integer_dtype = True

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
        return {"batch_shape": tuple(shape), "dtype": _config_dtype(config.get("dtype")), "name": config.get("name")}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None):
    """The input of a Sequential model, as ``keras.Input(shape=(10,))``; returns an InputLayer."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape)


LAYER_CLASSES = {cls.__name__: cls for cls in (Dense, Activation, Dropout, Flatten, InputLayer)}
