"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization and RMSNormalization, with
Keras 3's formulas.

Both normalize x over some axes with a mean m and a biased variance v (the mean of (x - m)^2), then
scale and shift per feature:  y = gamma * (x - m) / sqrt(v + epsilon) + beta. They are written with
the core's ops, so autograd derives the backward pass through m and v as well.

BatchNormalization takes m and v over every axis but ``axis`` (the batch, and space for images) while
training, and updates its moving statistics as Keras does,
    moving = moving * momentum + batch_statistic * (1 - momentum),
with the biased batch variance; at inference (and when the layer is not trainable, as in Keras) it
uses the moving statistics. moving_mean and moving_variance are non-trainable weights: in
``get_weights`` and the ``.h5`` file (after gamma and beta), never touched by the optimizer.
A batch of one sample in training gives v = 0 and y = beta, as in Keras.

LayerNormalization takes m and v over ``axis`` (the features) of each sample, in training and
inference alike. GroupNormalization splits the channels (``axis``) into ``groups`` equal groups and takes
m and v over each sample's group: every position and every channel of the group (groups=1 is a
LayerNormalization over all the sample's values with gamma per channel; groups=-1, one group per channel,
is instance normalization). RMSNormalization only scales: y = scale * x / sqrt(mean(x^2) + epsilon), the mean
over ``axis`` of each sample (Zhang and Sennrich's RMSNorm, Keras 3's layer).

When the normalized axes are the last ones (Keras's default axis=-1, and LayerNormalization over
every axis but the batch), x is viewed as a matrix (samples, features) and the layers run the fused
primitives: ``moments`` (m and v in one pass) and ``normalize`` (one pass; its backward the closed
form of docs/convolution.md). Other axes take the composed ops above, with the same formulas.
"""
import numpy as np

from . import arguments, constraints, initializers, regularizers
from .autograd import no_grad
from .layer_base import Layer, batch_shape
from .layer_functional import moments, normalize

__all__ = ["BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization"]


def _axes(owner, axis, ndim):
    """``axis`` (an int or a list of ints, negative counted from the end) as sorted non-negative ints."""
    values = axis if isinstance(axis, (list, tuple)) else [axis]
    result = []
    for value in values:
        value = arguments.integer(owner, "axis", value)
        if not -ndim <= value < ndim:
            raise ValueError(f"{owner}: axis {value} is out of range for inputs of rank {ndim}")
        result.append(value % ndim)
    if 0 in result:
        raise ValueError(f"{owner}: axis must not include the batch axis 0, got {axis!r}")
    return sorted(set(result))


class _Normalization(Layer):
    """What both layers share: axis, epsilon, center/scale and the gamma/beta weights (and Keras's mask passes
    through both)."""

    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        owner = self._owner()
        if not isinstance(axis, (int, np.integer, list, tuple)) or isinstance(axis, bool):
            raise TypeError(f"{owner}: axis must be an int or a list of ints, got {axis!r}")
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = arguments.number(owner, "epsilon", epsilon, 0, None, low_open=True)
        self.center = arguments.boolean(owner, "center", center)
        self.scale = arguments.boolean(owner, "scale", scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma = self.beta = None
        self._feature_axes = None

    def _owner(self):
        return f"{type(self).__name__} {self.name!r}"

    def _build_scale_and_offset(self, input_shape):
        """gamma then beta (Keras's order), of the size of the normalized feature axes."""
        self._feature_axes = _axes(self._owner(), self.axis, len(input_shape))
        sizes = [input_shape[a] for a in self._feature_axes]
        if any(size is None for size in sizes):
            raise ValueError(f"{self._owner()}: the size of axis {self.axis} must be known, got input shape "
                             f"{tuple(input_shape)}")
        self._param_shape = tuple(sizes)
        if self.scale:
            self.gamma = self.add_weight(self._param_shape, self.gamma_initializer, regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint, name="gamma")
        if self.center:
            self.beta = self.add_weight(self._param_shape, self.beta_initializer, regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint, name="beta")

    def _check_input(self, x):
        expected = self.input_shape
        if x.ndim != len(expected) or any(e is not None and e != s for e, s in zip(expected[1:], x.shape[1:])):
            raise ValueError(f"Input of layer {self.name!r} is incompatible with the layer: expected shape "
                             f"{tuple(expected)}, but received input with shape {x.shape}")

    def _broadcastable(self, tensor, ndim):
        """A per-feature tensor reshaped to broadcast against inputs of rank ``ndim``."""
        shape = [1] * ndim
        for axis, size in zip(self._feature_axes, self._param_shape):
            shape[axis] = size
        return tensor.reshape(*shape)

    def _trailing(self, ndim):
        """Whether the normalized feature axes are the last ones (then the fused primitives apply)."""
        return self._feature_axes == list(range(ndim - len(self._feature_axes), ndim))

    def _flat_scale_and_offset(self):
        """gamma and beta flattened to one value per feature (None where absent)."""
        return tuple(None if w is None else w.reshape(-1) for w in (self.gamma, self.beta))

    def _normalize(self, x, mean, variance):
        """gamma * (x - mean) / sqrt(variance + epsilon) + beta."""
        out = (x - mean) * ((variance + self.epsilon) ** -0.5)
        if self.gamma is not None:
            out = out * self._broadcastable(self.gamma, x.ndim)
        if self.beta is not None:
            out = out + self._broadcastable(self.beta, x.ndim)
        return out

    def compute_output_shape(self, input_shape):
        """The input shape."""
        return tuple(input_shape)

    def get_config(self):
        """Keras 3's config."""
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint)}

    @classmethod
    def _config_arguments(cls, config):
        arguments_ = super()._config_arguments(config)
        for key, default in (("axis", -1), ("epsilon", 1e-3), ("center", True), ("scale", True),
                             ("beta_initializer", "zeros"), ("gamma_initializer", "ones"), ("beta_regularizer", None),
                             ("gamma_regularizer", None), ("beta_constraint", None), ("gamma_constraint", None)):
            arguments_[key] = config.get(key, default)
        return arguments_


class BatchNormalization(_Normalization):
    """Normalizes each feature with the batch's statistics in training and moving statistics in
    inference (see the module docstring for the formulas and Keras's update rule)."""

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 synchronized=False, **kwargs):
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        self.momentum = arguments.number(self._owner(), "momentum", momentum, 0, 1)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        if synchronized:
            raise ValueError(f"{self._owner()}: synchronized=True is not supported (under nnengine.distributed "
                             "each process keeps its own batch statistics, as Horovod does)")
        self.moving_mean = self.moving_variance = None
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def build(self, input_shape):
        """gamma, beta, then the non-trainable moving_mean and moving_variance (Keras's order)."""
        input_shape = batch_shape(self._owner(), "input_shape", input_shape)
        self._build_scale_and_offset(input_shape)
        self.moving_mean = self.add_weight(self._param_shape, self.moving_mean_initializer, trainable=False,
                                           name="moving_mean")
        self.moving_variance = self.add_weight(self._param_shape, self.moving_variance_initializer,
                                               trainable=False, name="moving_variance")
        super().build(input_shape)

    def call(self, x, training=False, mask=None):
        """Normalized x: batch statistics (and a moving-statistics update) in training, moving ones otherwise.
        Keras takes the statistics of a masked batch over its kept steps only, which is not supported here: a mask
        in training is a ValueError (at inference, which uses the moving statistics, the mask just passes on)."""
        if mask is not None and training and self.trainable:
            raise ValueError(f"BatchNormalization {self.name!r}: training on a masked input (Embedding(mask_zero="
                             "True) or Masking upstream) is not supported: Keras would take the batch statistics "
                             "over the kept steps only")
        self._check_input(x)
        if x.dtype != self.moving_mean.dtype:
            x = x.astype(self.moving_mean.dtype)
        batch_statistics = training and self.trainable
        if self._trailing(x.ndim):
            return self._fused(x, batch_statistics)
        if not batch_statistics:
            return self._normalize(x, self._broadcastable(self.moving_mean, x.ndim),
                                   self._broadcastable(self.moving_variance, x.ndim))
        reduced = tuple(a for a in range(x.ndim) if a not in self._feature_axes)
        mean = x.mean(axis=reduced, keepdims=True)
        centred = x - mean
        variance = (centred * centred).mean(axis=reduced, keepdims=True)
        self._update_moving(self.moving_mean, mean)
        self._update_moving(self.moving_variance, variance)
        return self._normalize(x, mean, variance)

    def _fused(self, x, batch_statistics):
        """The fused path (features last): x as (samples, features), statistics per column."""
        rows = x.reshape(-1, int(np.prod(self._param_shape)))
        if batch_statistics:
            mean, variance = moments(rows, 0)
            self._update_moving(self.moving_mean, mean)
            self._update_moving(self.moving_variance, variance)
        else:
            mean, variance = self.moving_mean.reshape(-1), self.moving_variance.reshape(-1)
        return normalize(rows, mean, variance, *self._flat_scale_and_offset(), self.epsilon, 0,
                         batch_statistics).reshape(*x.shape)

    def _update_moving(self, moving, batch_value):
        """moving = moving * momentum + batch_value * (1 - momentum), in place on the device (no graph)."""
        with no_grad():
            new = moving * self.momentum + batch_value.detach().reshape(*moving.shape) * (1.0 - self.momentum)
            moving._backend.assign(moving._data, new._data)

    def get_config(self):
        """Keras 3's config."""
        return {**super().get_config(), "momentum": self.momentum,
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
                "synchronized": False}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "momentum": config.get("momentum", 0.99),
                "moving_mean_initializer": config.get("moving_mean_initializer", "zeros"),
                "moving_variance_initializer": config.get("moving_variance_initializer", "ones")}


class LayerNormalization(_Normalization):
    """Normalizes each sample over ``axis`` (the features by default), in training and inference alike."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        if kwargs.pop("rms_scaling", False):
            raise ValueError("LayerNormalization: rms_scaling=True is deprecated in Keras and not supported")
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def build(self, input_shape):
        """gamma and beta over the normalized axes."""
        input_shape = batch_shape(self._owner(), "input_shape", input_shape)
        self._build_scale_and_offset(input_shape)
        super().build(input_shape)

    def call(self, x, training=False):
        """Each sample normalized over the feature axes."""
        self._check_input(x)
        if x.dtype != np.dtype(self.dtype):
            x = x.astype(self.dtype)
        if self._trailing(x.ndim):        # the fused path: x as (samples, features), statistics per row
            rows = x.reshape(-1, int(np.prod(self._param_shape)))
            mean, variance = moments(rows, 1)
            return normalize(rows, mean, variance, *self._flat_scale_and_offset(), self.epsilon, 1,
                             True).reshape(*x.shape)
        axes = tuple(self._feature_axes)
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        variance = (centred * centred).mean(axis=axes, keepdims=True)
        return self._normalize(x, mean, variance)


class GroupNormalization(_Normalization):
    """Normalizes each sample over groups of channels: ``groups`` equal groups along ``axis`` (-1: one group per
    channel, instance normalization), each group's mean and variance taken over all its positions and channels;
    gamma and beta per channel, as Keras 3."""

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        if isinstance(axis, (list, tuple)) or isinstance(axis, bool):
            raise TypeError(f"GroupNormalization: axis must be one int (the channels), got {axis!r}")
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        self.groups = arguments.integer(self._owner(), "groups", groups)
        if self.groups <= 0 and self.groups != -1:
            raise ValueError(f"{self._owner()}: groups must be a positive number of groups, or -1 for one group "
                             f"per channel, got {groups!r}")
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def build(self, input_shape):
        """gamma and beta, one per channel; the channels must split into ``groups`` equal groups."""
        input_shape = batch_shape(self._owner(), "input_shape", input_shape)
        self._build_scale_and_offset(input_shape)
        channels = self._param_shape[0]
        if self.groups == -1:
            self.groups = channels            # Keras's config then says the number
        if channels % self.groups:
            raise ValueError(f"{self._owner()}: {channels} channels (axis {self.axis}) cannot be split into "
                             f"{self.groups} equal groups; groups must divide the number of channels")
        super().build(input_shape)

    def call(self, x, training=False):
        """Each sample's groups normalized: x viewed with the channel axis split in (groups, channels/groups)."""
        self._check_input(x)
        if x.dtype != np.dtype(self.dtype):
            x = x.astype(self.dtype)
        axis = self._feature_axes[0]
        channels = x.shape[axis]
        grouped = x.reshape(*x.shape[:axis], self.groups, channels // self.groups, *x.shape[axis + 1:])
        reduced = tuple(a for a in range(1, grouped.ndim) if a != axis)     # all but the batch and the group
        mean = grouped.mean(axis=reduced, keepdims=True)
        centred = grouped - mean
        variance = (centred * centred).mean(axis=reduced, keepdims=True)
        out = (centred * ((variance + self.epsilon) ** -0.5)).reshape(*x.shape)
        if self.gamma is not None:
            out = out * self._broadcastable(self.gamma, x.ndim)
        if self.beta is not None:
            out = out + self._broadcastable(self.beta, x.ndim)
        return out

    def get_config(self):
        """Keras 3's config."""
        return {**super().get_config(), "groups": self.groups}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "groups": config.get("groups", 32)}


class RMSNormalization(Layer):
    """y = scale * x / sqrt(mean(x^2) + epsilon), the mean over ``axis`` of each sample; ``scale`` one weight per
    normalized feature, initialised to ones (Keras 3's layer; it has no offset and no mean subtraction)."""

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        owner = f"RMSNormalization {self.name!r}"
        if not isinstance(axis, (int, np.integer, list, tuple)) or isinstance(axis, bool):
            raise TypeError(f"{owner}: axis must be an int or a list of ints, got {axis!r}")
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = arguments.number(owner, "epsilon", epsilon, 0, None, low_open=True)
        self.scale = None
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def build(self, input_shape):
        """``scale``, of the size of the normalized axes."""
        owner = f"RMSNormalization {self.name!r}"
        input_shape = batch_shape(owner, "input_shape", input_shape)
        self._feature_axes = _axes(owner, self.axis, len(input_shape))
        sizes = tuple(input_shape[a] for a in self._feature_axes)
        if any(size is None for size in sizes):
            raise ValueError(f"{owner}: the size of axis {self.axis} must be known, got input shape "
                             f"{tuple(input_shape)}")
        self.scale = self.add_weight(sizes, initializers.get("ones"), name="scale")
        super().build(input_shape)

    def call(self, x, training=False):
        """x scaled by 1 / sqrt(mean(x^2) + epsilon) over the normalized axes, times ``scale``."""
        expected = self.input_shape
        if x.ndim != len(expected) or any(e is not None and e != s for e, s in zip(expected[1:], x.shape[1:])):
            raise ValueError(f"Input of layer {self.name!r} is incompatible with the layer: expected shape "
                             f"{tuple(expected)}, but received input with shape {x.shape}")
        if x.dtype != np.dtype(self.dtype):
            x = x.astype(self.dtype)
        axes = tuple(self._feature_axes)
        mean_square = (x * x).mean(axis=axes, keepdims=True)
        shape = [1] * x.ndim
        for axis in axes:
            shape[axis] = x.shape[axis]
        return x * ((mean_square + self.epsilon) ** -0.5) * self.scale.reshape(*shape)

    def compute_output_shape(self, input_shape):
        """The input shape."""
        return tuple(input_shape)

    def get_config(self):
        """Keras 3's config (the axis becomes a list once built, as in Keras)."""
        axis = self.axis if not self.built or isinstance(self.axis, list) else [self.axis]
        return {**super().get_config(), "axis": axis, "epsilon": self.epsilon}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "axis": config.get("axis", -1),
                "epsilon": config.get("epsilon", 1e-6)}
