"""Keras's regularization layers that add randomness in training: SpatialDropout1D/2D, GaussianNoise, GaussianDropout,
AlphaDropout.

Each is the identity at inference (evaluate, predict, ``layer(x)``) and, in training (fit, ``training=True``):

* ``SpatialDropout1D(rate)``: inverted dropout of whole channels: one mask of shape (batch, 1, channels) for
  inputs (batch, steps, channels), so a channel is dropped at every step at once (Keras's rule);
* ``SpatialDropout2D(rate)``: the same over images (batch, rows, cols, channels), mask (batch, 1, 1, channels);
* ``GaussianNoise(stddev)``: x + n, n ~ N(0, stddev^2);
* ``GaussianDropout(rate)``: x * n, n ~ N(1, rate / (1 - rate)) (the variance of inverted dropout's mask);
* ``AlphaDropout(rate)``: dropout for SELU networks (Klambauer et al.): a dropped entry becomes SELU's negative
  saturation alpha' = -scale * alpha, then a (x) + b with a = ((1 - rate)(1 + rate alpha'^2))^-1/2 and
  b = -a alpha' rate, which keeps a zero-mean, unit-variance input so (Keras's formula).

The random numbers come from dropout_masks.py, drawn from the layer's ``seed`` or nnengine's generator: a
compiled training step gets them as inputs, drawn before each step, so it stays compiled and bitwise equal to
the eager step. Configs have Keras 3's keys, so files move both ways.
"""
import math
from abc import abstractmethod

import numpy as np

from . import arguments
from .dropout_masks import dropout_mask, gaussian_noise, host_noise
from .utility_layers import _ElementLayer, checked_noise_shape, noise_mask_shape

__all__ = ["SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout"]

#: SELU's constants (Klambauer et al.), as Keras writes them
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


class _RandomLayer(_ElementLayer):
    """What the four layers share: a seed (a generator of the layer's own) and a training-only call."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = None if seed is None else arguments.integer(self._owner(), "seed", seed, minimum=0)
        self._rng = np.random.default_rng(self.seed) if self.seed is not None else None

    def _owner(self):
        return f"{type(self).__name__} {self.name!r}"

    @abstractmethod
    def _active(self):
        """Whether training draws anything (a rate or stddev of 0 does not)."""

    @abstractmethod
    def randomize(self, x):
        """The training transform of x."""

    def draws_dropout_masks(self, training):
        """In training, new random numbers every step (fed to a compiled step: dropout_masks.py)."""
        return training and self._active()

    def call(self, x, training=False):
        """x at inference; the layer's random transform of x in training."""
        return self.randomize(x) if training and self._active() else x

    def get_config(self):
        """Keras 3's config: the base keys and the seed."""
        return {**super().get_config(), "seed": self.seed}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "seed": config.get("seed")}


class _RateLayer(_RandomLayer):
    """A random layer with a dropout ``rate`` in [0, 1), in its config too."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.rate = arguments.number(self._owner(), "rate", rate, 0, 1, high_open=True)

    def _active(self):
        return self.rate > 0

    def get_config(self):
        """Keras 3's config: rate and seed."""
        return {**super().get_config(), "rate": self.rate}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "rate": config["rate"]}


class _SpatialDropout(_RateLayer):
    """Dropout of whole channels: one mask value per sample and channel, the same at every position."""

    rank = None                              # the inputs' rank, the batch axis included

    def randomize(self, x):
        """x * m, m of shape (batch, 1, ..., channels): 0 or 1 / (1 - rate) per sample and channel."""
        if x.ndim != self.rank:
            raise ValueError(f"{self._owner()} expects inputs of rank {self.rank} (batch, ..., channels), got shape "
                             f"{x.shape}")
        shape = (x.shape[0], *[1] * (self.rank - 2), x.shape[-1])
        return x * dropout_mask(self._rng, shape, self.rate, x.dtype, x.device)


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of sequences (batch, steps, channels) in training, as Keras's SpatialDropout1D."""

    rank = 3


class SpatialDropout2D(_SpatialDropout):
    """Drops whole channels of images (batch, rows, cols, channels) in training, as Keras's SpatialDropout2D
    (``data_format`` must be channels_last, nnengine's one layout)."""

    rank = 4

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{self._owner()}: data_format must be 'channels_last' (nnengine's layout), got "
                             f"{data_format!r}")

    def get_config(self):
        """Keras 3's config: rate, seed and data_format."""
        return {**super().get_config(), "data_format": "channels_last"}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "data_format": config.get("data_format")}


class GaussianNoise(_RandomLayer):
    """Adds N(0, stddev^2) noise in training: x + n."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.stddev = arguments.number(self._owner(), "stddev", stddev, low=0)

    def _active(self):
        return self.stddev > 0

    def randomize(self, x):
        """x + n, n ~ N(0, stddev^2) of x's shape."""
        return x + gaussian_noise(self._rng, x.shape, 0.0, self.stddev, x.dtype, x.device)

    def get_config(self):
        """Keras 3's config: stddev and seed."""
        return {**super().get_config(), "stddev": self.stddev}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "stddev": config["stddev"]}


class GaussianDropout(_RateLayer):
    """Multiplies by N(1, rate / (1 - rate)) noise in training: dropout's mean and variance, without zeros."""

    def randomize(self, x):
        """x * n, n ~ N(1, s^2), s = sqrt(rate / (1 - rate))."""
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        return x * gaussian_noise(self._rng, x.shape, 1.0, stddev, x.dtype, x.device)


def kept_entries(rng, shape, rate):
    """1 where an entry is kept (a uniform draw >= rate, as Keras draws it), else 0: AlphaDropout's mask."""
    return (rng.uniform(0.0, 1.0, shape) >= rate).astype(np.float64)


class AlphaDropout(_RateLayer):
    """Dropout that keeps SELU's self-normalization (see the module's formula), in training only."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        self.noise_shape = checked_noise_shape(self._owner(), noise_shape)

    def randomize(self, x):
        """a (x kept + alpha' (1 - kept)) + b."""
        shape = x.shape if self.noise_shape is None else noise_mask_shape(self._owner(), self.noise_shape, x.shape)
        kept = host_noise(self._rng, shape, ("sample", kept_entries, self.rate), x.dtype, x.device)
        saturation = -SELU_ALPHA * SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * saturation ** 2)) ** -0.5
        b = -a * saturation * self.rate
        return (x * kept + saturation * (1.0 - kept)) * a + b

    def get_config(self):
        """Keras 3's config: rate, noise_shape and seed."""
        return {**super().get_config(), "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "noise_shape": config.get("noise_shape")}
