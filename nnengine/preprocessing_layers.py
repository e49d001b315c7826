"""Keras's preprocessing layers: ``Normalization`` (features standardized by statistics of the data) and
``CategoryEncoding`` (integer categories as one-hot, multi-hot or count vectors).

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
from .layer_base import Layer, check_index_values, checked_indices
from .tensor import Tensor

__all__ = ["Normalization", "CategoryEncoding"]

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



class CategoryEncoding(Layer):
    """Integer categories in [0, num_tokens) as vectors of num_tokens, as Keras 3's CategoryEncoding.

    * ``"multi_hot"`` (the default): 1 where a category occurs among the last axis's values, else 0:
      (batch, k) -> (batch, num_tokens); a rank-1 input (k,) is one sample's set -> (num_tokens,);
    * ``"count"``: how often each category occurs there (Keras's ``count_weights`` call argument is not supported);
    * ``"one_hot"``: one vector per value: (batch,) or (batch, 1) -> (batch, num_tokens), (batch, k) ->
      (batch, k, num_tokens).

    A value outside [0, num_tokens) is a ValueError naming the layer (Keras's torch backend drops negative
    ones silently); the check is Embedding's (``layer_base.checked_indices``), on the host.
    """

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        owner = f"CategoryEncoding {self.name!r}"
        if num_tokens is None:
            raise ValueError(f"{owner}: num_tokens must be set (the number of categories), as Keras requires")
        self.num_tokens = arguments.integer(owner, "num_tokens", num_tokens, minimum=1)
        output_mode = "multi_hot" if output_mode == "binary" else output_mode          # Keras's old name
        self.output_mode = arguments.choice(owner, "output_mode", output_mode, ("multi_hot", "count", "one_hot"))
        if arguments.boolean(owner, "sparse", sparse):
            raise ValueError(f"{owner}: sparse=True is not supported (nnengine's tensors are dense)")

    def check_indices(self, values):
        """ValueError naming the layer unless every value is a category in [0, num_tokens)."""
        check_index_values(f"CategoryEncoding {self.name!r}", values, self.num_tokens)

    def call(self, x, training=False):
        """The encoded categories (see the class docstring)."""
        indices = checked_indices(self, x, x.device)
        if indices.ndim == 0:
            indices = indices.reshape(1)
        if self.output_mode == "one_hot" and indices.ndim > 1 and indices.shape[-1] == 1:
            indices = indices.reshape(indices.shape[:-1])
        categories = Tensor(np.arange(self.num_tokens), dtype=np.int64, device=x.device)
        one_hot = F.astype(F.compare("equal", indices.reshape(*indices.shape, 1), categories), self.dtype)
        if self.output_mode == "one_hot":
            return one_hot
        return F.max(one_hot, axis=-2) if self.output_mode == "multi_hot" else F.sum(one_hot, axis=-2)

    def compute_output_shape(self, input_shape):
        """Keras's: (..., num_tokens) in place of the last axis, or after it for a one-hot of k > 1 values."""
        input_shape = tuple(input_shape)
        if not input_shape:
            return (self.num_tokens,)
        if self.output_mode == "one_hot" and (input_shape[-1] != 1 or len(input_shape) == 1):
            return input_shape + (self.num_tokens,)
        return input_shape[:-1] + (self.num_tokens,)

    def get_config(self):
        """Keras 3's config: num_tokens, output_mode (and sparse, always False)."""
        return {**super().get_config(), "num_tokens": self.num_tokens, "output_mode": self.output_mode,
                "sparse": False}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "num_tokens": config.get("num_tokens"),
                "output_mode": config.get("output_mode", "multi_hot"), "sparse": config.get("sparse", False)}
