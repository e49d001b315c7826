"""Keras's ``Normalization`` preprocessing layer: features standardized by statistics of the data.

    normalizer = keras.layers.Normalization()      # axis=-1: one mean and variance per feature
    normalizer.adapt(x_train)                      # mean and (population) variance over the other axes
    model = keras.Sequential([keras.Input((13,)), normalizer, keras.layers.Dense(1)])

As Keras 3 computes it: y = (x - mean) / max(sqrt(variance), 1e-7), or with ``invert=True`` the
inverse, y = mean + x * max(sqrt(variance), 1e-7). The statistics are kept per position of the axes in
``axis`` (``axis=None``: one mean and variance over everything) and reduced over every other axis.
They come from ``adapt(data)`` (an array, or an iterable of batches: the batches' statistics are merged
exactly, in float64) or from ``mean=`` and ``variance=`` at construction. Adapted statistics are
non-trainable weights named as Keras names them (mean, variance, count), so they are saved and loaded
with the model and files move between Keras and nnengine; given ones are part of the config.
"""
import numpy as np

from . import arguments
from . import functional as F
from .layer_base import Layer
from .tensor import Tensor

__all__ = ["Normalization"]

#: Keras's backend epsilon: the smallest standard deviation divided by
EPSILON = 1e-7


class Normalization(Layer):
    """Standardizes inputs with a mean and variance from ``adapt`` or given (see the module docstring)."""

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        owner = f"Normalization {self.name!r}"
        axes = () if axis is None else (axis,) if not isinstance(axis, (list, tuple)) else tuple(axis)
        self.axis = tuple(arguments.integer(owner, "axis", a) for a in axes)
        if (mean is None) != (variance is None):
            raise ValueError(f"{owner}: give both mean and variance, or neither (then call adapt)")
        if mean is not None and np.shape(mean) != np.shape(variance):
            raise ValueError(f"{owner}: mean and variance must have one shape, got {np.shape(mean)} and "
                             f"{np.shape(variance)}")
        self.input_mean, self.input_variance = mean, variance
        self.invert = arguments.boolean(owner, "invert", invert)
        self._keep = None

    def _kept_axes(self, input_shape):
        owner, ndim = f"Normalization {self.name!r}", len(input_shape)
        if any(not -ndim <= a < ndim for a in self.axis):
            raise ValueError(f"{owner}: axis {self.axis} is out of range for inputs of rank {ndim}")
        keep = tuple(sorted(a % ndim for a in self.axis))
        if any(input_shape[a] is None for a in keep):
            raise ValueError(f"{owner}: the axes kept, {keep}, need known sizes; inputs have shape {input_shape}")
        return keep

    def build(self, input_shape):
        """The statistics' shape: the input's sizes along ``axis``; weights for them unless they were given."""
        self._keep = self._kept_axes(tuple(input_shape))
        shape = tuple(input_shape[a] for a in self._keep)
        if self.input_mean is None:
            self.add_weight(shape, "zeros", trainable=False, name="mean")
            self.add_weight(shape, "ones", trainable=False, name="variance")
            self.add_weight((), "zeros", trainable=False, name="count")   # Keras keeps it; it is not used

    def _statistics(self, input_shape):
        """(mean, variance) as Tensors shaped to broadcast against inputs of ``input_shape``."""
        target = tuple(input_shape[a] if a in self._keep else 1 for a in range(len(input_shape)))
        if self.input_mean is None:
            return self.weights[0].reshape(*target), self.weights[1].reshape(*target)
        kept = tuple(input_shape[a] for a in self._keep)
        given = [np.broadcast_to(np.asarray(value, np.float64), kept).reshape(target)
                 for value in (self.input_mean, self.input_variance)]
        return tuple(Tensor(value, dtype=self.dtype, device=self.device) for value in given)

    #: Keras's mask passes through
    supports_masking = True

    def call(self, x, training=False):
        """(x - mean) / max(sqrt(variance), 1e-7), or its inverse with ``invert``."""
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        mean, variance = self._statistics(x.shape)
        scale = F.maximum(variance.sqrt(), EPSILON)
        return mean + x * scale if self.invert else (x - mean) / scale

    def compute_output_shape(self, input_shape):
        """The input's shape."""
        return tuple(input_shape)

    def adapt(self, data):
        """Set the mean and variance from ``data``: an array, or an iterable of array batches (merged exactly)."""
        owner = f"Normalization {self.name!r}: adapt"
        if self.input_mean is not None:
            raise ValueError(f"{owner}: this layer was given its mean and variance")
        if isinstance(data, (np.ndarray, Tensor)):
            batches = [data]
        elif hasattr(data, "__iter__") and not isinstance(data, (str, bytes)):
            batches = list(data)
        else:
            raise TypeError(f"{owner}: expected an array or an iterable of array batches, got {type(data).__name__}")
        if not batches:
            raise ValueError(f"{owner}: no data (an empty iterable)")
        total, mean, m2 = 0, None, None
        for batch in batches:
            batch = np.asarray(batch.numpy() if isinstance(batch, Tensor) else batch, dtype=np.float64)
            if batch.ndim == 0 or batch.dtype.kind != "f":
                raise ValueError(f"{owner}: expected arrays of numbers with a batch axis, got shape {batch.shape}")
            if not self.built:
                self.build_once((None, *batch.shape[1:]))
            keep = self._kept_axes(batch.shape)
            reduce = tuple(a for a in range(batch.ndim) if a not in keep)
            count = int(np.prod([batch.shape[a] for a in reduce]))
            batch_mean = batch.mean(axis=reduce)
            batch_m2 = ((batch - batch.mean(axis=reduce, keepdims=True)) ** 2).sum(axis=reduce)
            if mean is None:
                total, mean, m2 = count, batch_mean, batch_m2
                continue
            # Chan et al.'s merge of two (count, mean, sum of squared deviations): exact, order-independent
            delta = batch_mean - mean
            merged = total + count
            mean = mean + delta * count / merged
            m2 = m2 + batch_m2 + delta ** 2 * total * count / merged
            total = merged
        self.set_weights([mean, m2 / max(total, 1), np.asarray(total)])

    def get_config(self):
        """Keras 3's Normalization config."""
        def listed(value):
            return None if value is None else np.asarray(value).tolist()
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                "mean": listed(self.input_mean), "variance": listed(self.input_variance)}

    @classmethod
    def _config_arguments(cls, config):
        axis = config.get("axis", -1)
        return {**super()._config_arguments(config), "axis": axis, "invert": config.get("invert", False),
                "mean": config.get("mean"), "variance": config.get("variance")}

