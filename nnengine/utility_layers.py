"""Small Keras layers made of the core's ops: ReLU, LeakyReLU, ELU, PReLU, UnitNormalization, ActivityRegularization,
Lambda, Softmax, Rescaling, Permute, RepeatVector, Identity, Masking.

Each holds no weights (but PReLU, its slopes); its ``call`` is a few differentiable ops (so autograd, the compiled
step and every device work as for any op), and its config has Keras 3's keys and defaults, so files move between
Keras and nnengine. The formulas, as Keras 3.15 computes them (checked against it in tests/test_utility_layers.py):

* ``ReLU(max_value=None, negative_slope=0.0, threshold=0.0)``: activations.relu with those options: x where
  x > threshold (else 0), clipped to [0, max_value], plus negative_slope * (x - threshold) below threshold;
* ``LeakyReLU(negative_slope=0.3)``: x for x > 0, negative_slope * x otherwise;
* ``ELU(alpha=1.0)``: x for x > 0, alpha * (e^x - 1) otherwise;
* ``PReLU(alpha_initializer="zeros", shared_axes=None)``: relu(x) - alpha * relu(-x), alpha a weight of
  shape input_shape[1:] (size 1 along ``shared_axes``);
* ``UnitNormalization(axis=-1)``: x / max(||x||, 1e-12), the L2 norm along ``axis``;
* ``ActivityRegularization(l1=0.0, l2=0.0)``: x, with that activity penalty added to the training loss;
* ``Softmax(axis=-1)``: e^x / sum(e^x) along ``axis``, stably;
* ``Rescaling(scale, offset=0.0)``: x * scale + offset (``Rescaling(1 / 255)`` for 8-bit images);
* ``Permute(dims)``: the sample axes reordered, ``dims`` numbered from 1 (the batch axis stays first);
* ``RepeatVector(n)``: (batch, features) -> (batch, n, features);
* ``Identity()``: x;
* ``Masking(mask_value=0.0)``: x, with zeros and Keras's mask False (nnengine/masks.py) at each step whose
  features all equal ``mask_value``: the steps the recurrent layers downstream skip.
"""
import numpy as np

from . import activations, arguments, constraints, initializers, regularizers
from . import functional as F
from .dropout_masks import dropout_mask
from .autograd import no_grad
from .layer_base import Layer, batch_shape
from .tensor import Tensor

__all__ = ["ReLU", "LeakyReLU", "ELU", "PReLU", "UnitNormalization", "ActivityRegularization", "Lambda", "Softmax",
           "Rescaling", "Permute", "RepeatVector", "Identity", "Masking", "inverted_dropout", "checked_noise_shape",
           "noise_mask_shape"]


def inverted_dropout(x, rate, rng):
    """x * keep / (1 - rate), keep ~ Bernoulli(1 - rate) drawn on the host from ``rng`` (None: nnengine's): each
    entry is zeroed with probability ``rate`` and the rest scaled so that the expectation is x (Dropout,
    attention dropout). The mask comes from dropout_masks.py, which feeds it to a compiled step."""
    if rate == 0:
        return x
    return x * dropout_mask(rng, x.shape, rate, x.dtype, x.device)


def checked_noise_shape(owner, noise_shape):
    """Keras's ``noise_shape``: None, or a tuple of sizes (None for an axis of the input's size)."""
    if noise_shape is None:
        return None
    if isinstance(noise_shape, (str, bytes)) or not isinstance(noise_shape, (list, tuple)):
        raise TypeError(f"{owner}: noise_shape must be a tuple (None for an axis of the input's size), got "
                        f"{noise_shape!r}")
    return tuple(None if size is None else arguments.integer(owner, "noise_shape", size, minimum=1)
                 for size in noise_shape)


def noise_mask_shape(owner, noise_shape, shape):
    """``noise_shape`` with each None replaced by the input's size; each size that or 1 (broadcast)."""
    if len(noise_shape) != len(shape) or any(size not in (None, 1, given) for size, given in zip(noise_shape, shape)):
        raise ValueError(f"{owner}: noise_shape {noise_shape} does not fit inputs of shape {tuple(shape)}: each size "
                         "must be None, 1 or the input's")
    return tuple(given if size is None else size for size, given in zip(noise_shape, shape))


class _ElementLayer(Layer):
    """A layer whose output has its input's shape (Keras's mask passes through it)."""

    supports_masking = True

    def compute_output_shape(self, input_shape):
        """The input's shape."""
        return tuple(input_shape)


class ReLU(_ElementLayer):
    """Keras's ReLU layer with its clipping (``max_value``), leak (``negative_slope``) and ``threshold``."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        owner = f"ReLU {self.name!r}"
        self.max_value = None if max_value is None else arguments.number(owner, "max_value", max_value, low=0)
        self.negative_slope = arguments.number(owner, "negative_slope", negative_slope, low=0)
        self.threshold = arguments.number(owner, "threshold", threshold, low=0)          # as Keras refuses < 0

    def call(self, x, training=False):
        """Keras 3's relu(x, negative_slope, max_value, threshold)."""
        return activations.relu(x, self.negative_slope, self.max_value, self.threshold)

    def get_config(self):
        """Keras 3's ReLU config."""
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), **{key: config[key] for key in
                                                        ("max_value", "negative_slope", "threshold") if key in config}}


class LeakyReLU(_ElementLayer):
    """x for x > 0, ``negative_slope`` * x otherwise (Keras 3's default slope 0.3)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = arguments.number(f"LeakyReLU {self.name!r}", "negative_slope", negative_slope, low=0)

    def call(self, x, training=False):
        """where(x > 0, x, negative_slope * x)."""
        return F.where(x > 0, x, x * self.negative_slope)

    def get_config(self):
        """Keras 3's LeakyReLU config."""
        return {**super().get_config(), "negative_slope": self.negative_slope}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "negative_slope": config.get("negative_slope", 0.3)}


class ELU(_ElementLayer):
    """x for x > 0, alpha * (e^x - 1) otherwise (activations.elu)."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = arguments.number(f"ELU {self.name!r}", "alpha", alpha)

    def call(self, x, training=False):
        """elu(x, alpha)."""
        return activations.elu(x, self.alpha)

    def get_config(self):
        """Keras 3's ELU config."""
        return {**super().get_config(), "alpha": self.alpha}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "alpha": config.get("alpha", 1.0)}


class PReLU(_ElementLayer):
    """A leaky ReLU whose slopes are learnt: relu(x) - alpha * relu(-x), one alpha per feature (Keras's weight
    ``alpha`` of shape input_shape[1:], an axis of ``shared_axes`` sharing one value along it)."""

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        owner = f"PReLU {self.name!r}"
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        axes = [shared_axes] if isinstance(shared_axes, int) else list(shared_axes or [])
        self.shared_axes = [arguments.integer(owner, "shared_axes", axis, minimum=1) for axis in axes] or None
        self.alpha = None
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def build(self, input_shape):
        """alpha of shape input_shape[1:], size 1 along the shared axes."""
        input_shape = batch_shape(f"PReLU {self.name!r}", "input_shape", input_shape)
        shape = [1 if axis in (self.shared_axes or ()) else size for axis, size in enumerate(input_shape)][1:]
        if any(size is None for size in shape):
            raise ValueError(f"PReLU {self.name!r}: every axis it does not share needs a known size, got input "
                             f"shape {tuple(input_shape)} (give shared_axes for the unknown ones)")
        self.alpha = self.add_weight(tuple(shape), self.alpha_initializer, regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint, name="alpha")
        super().build(input_shape)

    def call(self, x, training=False):
        """relu(x) - alpha * relu(-x)."""
        return F.relu(x) - self.alpha * F.relu(-x)

    def get_config(self):
        """Keras 3's PReLU config."""
        return {**super().get_config(), "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint), "shared_axes": self.shared_axes}

    @classmethod
    def _config_arguments(cls, config):
        keys = ("alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes")
        return {**super()._config_arguments(config), **{key: config[key] for key in keys if key in config}}


class UnitNormalization(_ElementLayer):
    """Each sample scaled to an L2 norm of 1 along ``axis``: x / sqrt(max(sum(x^2), 1e-24)) (a zero stays 0)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        owner = f"UnitNormalization {self.name!r}"
        self.axis = [arguments.integer(owner, "axis", a) for a in axis] if isinstance(axis, (list, tuple)) else \
            arguments.integer(owner, "axis", axis)

    def call(self, x, training=False):
        """x / max(||x||, 1e-12) along ``axis``, as Keras's normalize (its floor on the squared norm keeps the
        gradient finite at 0)."""
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        return x / F.maximum((x * x).sum(axis=axis, keepdims=True), 1e-24).sqrt()

    def get_config(self):
        """Keras 3's UnitNormalization config."""
        return {**super().get_config(), "axis": self.axis}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "axis": config.get("axis", -1)}


class ActivityRegularization(_ElementLayer):
    """The identity, with an activity penalty l1 * sum(|x|) + l2 * sum(x^2) (divided by the batch size, as every
    activity regularizer) added to the training loss."""

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=regularizers.L1L2(l1, l2), **kwargs)
        self.l1, self.l2 = self.activity_regularizer.l1, self.activity_regularizer.l2

    def call(self, x, training=False):
        """x."""
        return x

    def get_config(self):
        """Keras 3's ActivityRegularization config."""
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "l1": config.get("l1", 0.0), "l2": config.get("l2", 0.0)}


class Lambda(Layer):
    """Keras's Lambda: a layer that computes ``function(x, **arguments)``, a function of Tensors (``keras.ops``,
    the Tensor methods), for the small steps that need no weights: ``Lambda(lambda t: ops.mean(t, axis=1))``.

    ``output_shape``: the output's shape without the batch axis, or a function of the input shape; by default
    the function runs once on a small zero batch to find it (an axis of unknown size is tried at two sizes,
    and stays unknown where the output follows it). ``mask``: Keras's mask of the output (a function of
    (inputs, mask), or a fixed one); by default none. A Lambda holds Python code, so a model with one is
    saved with ``save_weights`` only: nnengine neither writes code into a file nor runs code from one.
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda {self.name!r}: function must be callable, got {type(function).__name__}")
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(f"Lambda {self.name!r}: arguments must be a dict, got {type(arguments).__name__}")
        self.function, self.arguments, self.mask = function, dict(arguments or {}), mask
        self._output_shape = output_shape

    def call(self, x, training=False):
        """``function(x, **arguments)``, checked to be a Tensor."""
        out = self.function(x, **self.arguments)
        if not isinstance(out, Tensor):
            raise TypeError(f"Lambda {self.name!r}: the function must return a Tensor (compute with "
                            f"nnengine.keras.ops or Tensor methods), got {type(out).__name__}")
        return out

    def compute_mask(self, inputs, mask=None):
        """``mask(inputs, mask)`` when ``mask`` is a function, else ``mask`` itself (None by default)."""
        return self.mask(inputs, mask) if callable(self.mask) else self.mask

    def compute_output_shape(self, input_shape):
        """``output_shape`` as given, else traced on zero batches (see the class docstring)."""
        input_shape = tuple(input_shape)
        if callable(self._output_shape):
            return tuple(self._output_shape(input_shape))
        if self._output_shape is not None:
            return (input_shape[0], *self._output_shape)
        first, second = (self._traced(input_shape, size) for size in (1, 2))
        if len(first) != len(second):
            raise ValueError(f"Lambda {self.name!r}: its output's rank depends on the input's sizes; give "
                             "output_shape")
        return (input_shape[0], *[a if a == b else None for a, b in zip(first, second)])

    def _traced(self, input_shape, unknown):
        """The output shape (without the batch axis) for a zero batch, unknown axes of size ``unknown``."""
        sizes = [unknown if size is None else size for size in input_shape[1:]]
        with no_grad():
            probe = Tensor(np.zeros((1, *sizes)), dtype=self.dtype, device=self.device)
            return tuple(self.call(probe).shape[1:])

    def get_config(self):
        """ValueError: a Lambda's function is Python code, which nnengine does not write into files."""
        raise ValueError(f"Lambda {self.name!r} holds Python code, which nnengine does not write into a model "
                         "file (loading it would run code): save the weights with save_weights(), or write the "
                         "computation as a custom layer class and pass it to load_model in custom_objects")


class Softmax(_ElementLayer):
    """The softmax along ``axis`` (the last by default)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = arguments.integer(f"Softmax {self.name!r}", "axis", axis)

    def call(self, x, training=False):
        """e^x / sum(e^x) along ``axis``."""
        return F.softmax(x, self.axis)

    def get_config(self):
        """Keras 3's Softmax config."""
        return {**super().get_config(), "axis": self.axis}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "axis": config.get("axis", -1)}


class Rescaling(_ElementLayer):
    """x * scale + offset, in the layer's float dtype (integer images become floats)."""

    accepts_integer_dtype = False

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        owner = f"Rescaling {self.name!r}"
        self.scale = arguments.number(owner, "scale", scale)
        self.offset = arguments.number(owner, "offset", offset)

    def call(self, x, training=False):
        """x * scale + offset."""
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        return x * self.scale + self.offset

    def get_config(self):
        """Keras 3's Rescaling config."""
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "scale": config["scale"], "offset": config.get("offset", 0.0)}


class Permute(Layer):
    """Reorders the sample axes: ``Permute((2, 1))`` swaps the two axes of (batch, a, b) samples."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        owner = f"Permute {self.name!r}"
        rank = len(dims) if isinstance(dims, (tuple, list)) else None
        if rank is None or sorted(dims) != list(range(1, rank + 1)):
            raise ValueError(f"{owner}: dims must be a permutation of 1..{rank or 'n'} (the batch axis 0 stays "
                             f"first), got {dims!r}")
        self.dims = tuple(int(d) for d in dims)

    def call(self, x, training=False):
        """x transposed to (0, *dims)."""
        if x.ndim != len(self.dims) + 1:
            raise ValueError(f"Permute {self.name!r}: dims {self.dims} need inputs of rank {len(self.dims) + 1}, got "
                             f"shape {x.shape}")
        return F.transpose(x, (0, *self.dims))

    def compute_output_shape(self, input_shape):
        """(batch, the sample axes in ``dims`` order)."""
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def get_config(self):
        """Keras 3's Permute config."""
        return {**super().get_config(), "dims": list(self.dims)}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "dims": tuple(config["dims"])}


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features): each sample repeated ``n`` times."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = arguments.integer(f"RepeatVector {self.name!r}", "n", n, minimum=1)

    def call(self, x, training=False):
        """n copies of each row, stacked on a new axis 1."""
        if x.ndim != 2:
            raise ValueError(f"RepeatVector {self.name!r}: expects (batch, features) inputs, got shape {x.shape}")
        return F.concatenate([x.reshape(x.shape[0], 1, x.shape[1])] * self.n, axis=1)

    def compute_output_shape(self, input_shape):
        """(batch, n, features)."""
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        """Keras 3's RepeatVector config."""
        return {**super().get_config(), "n": self.n}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "n": config["n"]}


class Identity(_ElementLayer):
    """Returns its input unchanged (a placeholder, as in Keras)."""

    def call(self, x, training=False):
        """x."""
        return x


class Masking(_ElementLayer):
    """Keras's Masking: a step (the last axis's vector) whose every feature equals ``mask_value`` is padding. The
    output is x with such steps zeroed, and carries Keras's mask (True where a step is kept), which SimpleRNN,
    LSTM, GRU and GlobalAveragePooling1D downstream use to skip the padding."""

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = arguments.number(f"Masking {self.name!r}", "mask_value", mask_value)

    def compute_mask(self, inputs, mask=None):
        """True where some feature of the step differs from mask_value: any(x != mask_value, axis=-1), as a count
        of the differing features above 0 (a sum, which a compiled plan lowers)."""
        return (inputs != self.mask_value).astype(inputs.dtype).sum(axis=-1) > 0

    def call(self, x, training=False):
        """where(kept, x, 0), its mask attached, computed as x * kept, which a compiled plan lowers: a padded step's
        features all equal mask_value, a finite number (``arguments.number`` refuses others), so the product is 0."""
        kept = self.compute_mask(x)
        out = x * kept.reshape(*kept.shape, 1).astype(x.dtype)
        out._keras_mask = kept
        return out

    def get_config(self):
        """Keras 3's Masking config."""
        return {**super().get_config(), "mask_value": self.mask_value}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "mask_value": config.get("mask_value", 0.0)}
