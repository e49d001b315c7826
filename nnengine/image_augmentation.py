"""Keras's image augmentation layers: RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast,
RandomBrightness.

Each is the identity at inference (evaluate, predict, ``layer(x)``) and, in training (fit, ``training=True``),
draws a new random transform for every image of the batch, with Keras 3's formulas, defaults and configs.
Images are (batch, height, width, channels) floats.

The four geometric layers map each output pixel (x, y) back to a point of the input image (Keras's
affine transform [a0, a1, a2, b0, b1, b2]: the source is (a0 x + a1 y + a2, b0 x + b1 y + b2)), and read
the input there:

* ``interpolation="bilinear"``: from the four pixels around the point, weighted by the opposite areas;
  ``"nearest"``: the nearest pixel (halves round to even, as Keras's torch backend does);
* a pixel outside the image is ``fill_mode``'s: ``"reflect"`` (d c b a | a b c d | d c b a), ``"wrap"``
  (a b c d | a b c d), ``"nearest"`` (a a a a | a b c d | d d d d) or ``"constant"`` (``fill_value``).

The transforms (cx = (width - 1) / 2, cy = (height - 1) / 2, each drawn uniformly per image):

* rotation by θ (``factor`` in turns: θ = 2π u, u in [lower, upper]), about the centre:
  [cos θ, -sin θ, cx - cx cos θ + cy sin θ, sin θ, cos θ, cy - cx sin θ - cy cos θ];
* zoom (z = 1 + u; z > 1 zooms out): [z_w, 0, cx (1 - z_w), 0, z_h, cy (1 - z_h)], z_w = z_h without
  ``width_factor``;
* translation by (t_w, t_h) = (u_w width, u_h height) pixels: [1, 0, -t_w, 0, 1, -t_h];
* flip: x -> width - 1 - x (horizontal) and/or y -> height - 1 - y (vertical), for each image with probability
  1/2 (``"horizontal_and_vertical"`` flips both axes of the chosen images, as Keras 3 does).

The host draws the transforms and turns them into a sampling table: for every output pixel, the flat
indices of the input pixels it reads (the batch's pixels in a row; one past the end for ``fill_value``)
and their weights. The device gathers the pixels (``gather_windows``) and sums them weighted. The table
comes through dropout_masks.py like a dropout mask: a compiled training step receives it as an input,
drawn before each step, so augmentation stays compiled and bitwise equal to the eager step.

``RandomContrast(factor)``: (x - mean) c + mean, per image and channel (mean over the pixels), c uniform in
[1 - lower, 1 + upper] of Keras's factor (lower 0 for a single number: Keras 3.15 only raises contrast then),
clipped to ``value_range``. ``RandomBrightness(factor)``: x + u (high - low) for u uniform in the factor's
range, clipped to ``value_range = (low, high)``.
"""
import math
from abc import abstractmethod

import numpy as np

from . import arguments
from . import functional as F
from .dropout_masks import host_noise
from .layer_functional import gather_windows
from .noise_layers import _RandomLayer

__all__ = ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
           "RandomBrightness", "sampling_table", "read_table", "checked_images"]

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")


# -- the host side: transforms and sampling tables ---------------------------------------------------------------
def _rotations(rng, count, height, width, bounds):
    angle = rng.uniform(bounds[0] * 2 * math.pi, bounds[1] * 2 * math.pi, count)
    cos, sin = np.cos(angle), np.sin(angle)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    return np.stack([cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos], axis=1)


def _zooms(rng, count, height, width, bounds):
    height_bounds, width_bounds = bounds
    zoom_h = rng.uniform(1 + height_bounds[0], 1 + height_bounds[1], count)
    zoom_w = zoom_h if width_bounds is None else rng.uniform(1 + width_bounds[0], 1 + width_bounds[1], count)
    zero = np.zeros(count)
    return np.stack([zoom_w, zero, (width - 1) / 2 * (1 - zoom_w), zero, zoom_h, (height - 1) / 2 * (1 - zoom_h)],
                    axis=1)


def _translations(rng, count, height, width, bounds):
    (height_low, height_high), (width_low, width_high) = bounds
    shift_h = rng.uniform(height_low, height_high, count) * height
    shift_w = rng.uniform(width_low, width_high, count) * width
    one, zero = np.ones(count), np.zeros(count)
    return np.stack([one, zero, -shift_w, zero, one, -shift_h], axis=1)


def _flips(rng, count, height, width, mode):
    flipped = rng.random(count) <= 0.5                        # Keras: uniform <= 0.5
    horizontal = flipped & (mode != "vertical")
    vertical = flipped & (mode != "horizontal")
    zero = np.zeros(count)
    return np.stack([np.where(horizontal, -1.0, 1.0), zero, np.where(horizontal, width - 1.0, 0.0),
                     zero, np.where(vertical, -1.0, 1.0), np.where(vertical, height - 1.0, 0.0)], axis=1)


_TRANSFORMS = {"rotation": _rotations, "zoom": _zooms, "translation": _translations, "flip": _flips}


def _fixed(index, size, fill_mode):
    """Integer pixel indices brought into [0, size) as ``fill_mode`` extends the image (constant: clipped, the
    caller marks them as fill)."""
    if fill_mode == "wrap":
        return index % size
    if fill_mode == "reflect":                # period 2 size: i, then 2 size - 1 - i (each edge pixel twice)
        folded = index % (2 * size)
        return np.where(folded < size, folded, 2 * size - 1 - folded)
    return np.clip(index, 0, size - 1)


def _nodes(coordinate, interpolation):
    """[(integer index, weight)] of the pixels a coordinate reads along one axis."""
    if interpolation == "nearest":
        return [(np.rint(coordinate), 1.0)]
    lower = np.floor(coordinate)
    upper_weight = coordinate - lower
    return [(lower, 1.0 - upper_weight), (lower + 1, upper_weight)]


def sampling_table(transforms, height, width, fill_mode, interpolation):
    """(2, n * height * width * k) float64: row 0 the flat input index each output pixel's k reads take (batch
    pixel order, n * height * width for ``fill_value``), row 1 their weights; k = 4 (bilinear) or 1 (nearest).
    ``transforms``: (n, 6), Keras's [a0, a1, a2, b0, b1, b2] of each image."""
    count = len(transforms)
    rows, cols = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    a0, a1, a2, b0, b1, b2 = (transforms[:, i, None, None] for i in range(6))
    source_x, source_y = a0 * cols + a1 * rows + a2, b0 * cols + b1 * rows + b2          # (n, height, width)
    image_start = (np.arange(count) * height * width)[:, None, None]
    indices, weights = [], []
    for y, weight_y in _nodes(source_y, interpolation):
        for x, weight_x in _nodes(source_x, interpolation):
            index = image_start + _fixed(y, height, fill_mode) * width + _fixed(x, width, fill_mode)
            if fill_mode == "constant":
                outside = (y < 0) | (y >= height) | (x < 0) | (x >= width)
                index = np.where(outside, count * height * width, index)
            indices.append(index)
            weights.append(np.broadcast_to(weight_y * weight_x, index.shape))
    return np.stack([np.stack(indices, axis=-1).reshape(-1), np.stack(weights, axis=-1).reshape(-1)])


def _random_table(rng, shape, kind, parameters, height, width, fill_mode, interpolation):
    """The sampling table of one batch: ``kind``'s transforms drawn from ``rng`` for shape[1] // (height * width *
    k) images (dropout_masks.draw's "sample" law)."""
    reads = 1 if interpolation == "nearest" else 4
    count = shape[1] // (height * width * reads)
    return sampling_table(_TRANSFORMS[kind](rng, count, height, width, parameters), height, width, fill_mode,
                          interpolation)


# -- the layers -------------------------------------------------------------------------------------------------
def _checked_bounds(owner, name, factor, low, high, low_open=False):
    """Keras's (lower, upper) of a factor: a number f gives (-|f|, |f|), a pair is sorted; each end within
    [low, high] (``low_open``: above low)."""
    if isinstance(factor, (list, tuple)):
        if len(factor) != 2:
            raise ValueError(f"{owner}: {name} must be a number or a pair of numbers, got {factor!r}")
        ends = [arguments.number(owner, name, value, low=low, high=high, low_open=low_open) for value in factor]
        return tuple(sorted(ends))
    value = abs(arguments.number(owner, name, factor, low=low, high=high, low_open=low_open))
    return (-value, value)


def checked_images(owner, x):
    """x, when it is a batch of images (batch, height, width, channels); else a ValueError naming ``owner``."""
    if x.ndim != 4:
        raise ValueError(f"{owner} expects images (batch, height, width, channels), got shape {x.shape}")
    return x


def read_table(x, positions, weights, size, fill_value=0.0):
    """Images x (n, h, w, c) read through a sampling table: (n, *size, c), each output pixel the sum of its k reads,
    x's flat pixel ``positions[p k + j]`` (n h w: ``fill_value``) times ``weights[p k + j]`` (a float Tensor; with
    k = 1 the weights are 1 and not read)."""
    count, height, width, channels = x.shape
    pixels = count * size[0] * size[1]
    reads = positions.shape[0] // pixels
    gathered = gather_windows(x.reshape(1, count * height * width, channels), positions, fill=fill_value)
    if reads > 1:
        weights = weights if weights.dtype == x.dtype else weights.astype(x.dtype)
        gathered = F.sum(gathered.reshape(pixels, reads, channels) * weights.reshape(pixels, reads, 1), axis=1)
    return gathered.reshape(count, *size, channels)


class _ImageLayer(_RandomLayer):
    """What the augmentation layers share: a seed, training-only randomness, channels_last images."""

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(seed, **kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{self._owner()}: data_format must be 'channels_last' (nnengine's layout), got "
                             f"{data_format!r}")

    def _active(self):
        return True

    def get_config(self):
        """Keras 3's config: the base keys, the seed and data_format."""
        return {**super().get_config(), "data_format": "channels_last"}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "data_format": config.get("data_format")}


def _resample(owner, rng, x, kind, parameters, fill_mode, interpolation, fill_value):
    """Every image of x read through its own random transform of ``kind`` (drawn from ``parameters``)."""
    count, height, width, _ = checked_images(owner, x).shape
    reads = 1 if interpolation == "nearest" else 4
    law = ("sample", _random_table, kind, parameters, height, width, fill_mode, interpolation)
    table = host_noise(rng, (2, count * height * width * reads), law, np.float64, x.device)
    return read_table(x, table[0].astype(np.int64), table[1], (height, width), fill_value)


class _GeometricLayer(_ImageLayer):
    """A layer that resamples each image through a random transform of ``kind`` (see the module docstring)."""

    kind = None

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(seed, **kwargs)
        owner = self._owner()
        self.fill_mode = arguments.choice(owner, "fill_mode", fill_mode, FILL_MODES)
        self.interpolation = arguments.choice(owner, "interpolation", interpolation, INTERPOLATIONS)
        self.fill_value = arguments.number(owner, "fill_value", fill_value)

    @abstractmethod
    def _parameters(self):
        """What the transforms of ``kind`` are drawn from (hashable: it is part of the sampling law)."""

    def randomize(self, x):
        """Every image of x read through its own random transform."""
        return _resample(self._owner(), self._rng, x, self.kind, self._parameters(), self.fill_mode,
                         self.interpolation, self.fill_value)

    def get_config(self):
        """Keras 3's config keys of the resampling layers."""
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), **{key: config[key] for key in (
            "fill_mode", "interpolation", "fill_value") if key in config}}


class RandomRotation(_GeometricLayer):
    """Rotates each image by a random angle in [lower, upper] turns (``factor=0.1``: up to ±36°), as Keras's."""

    kind = "rotation"

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = _checked_bounds(self._owner(), "factor", factor, -1, 1)

    def _parameters(self):
        return self.factor

    def get_config(self):
        """Keras 3's config: factor as its (lower, upper)."""
        return {**super().get_config(), "factor": list(self.factor)}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "factor": config["factor"]}


class RandomZoom(_GeometricLayer):
    """Zooms each image by 1 + u (u in the factor's range; u > 0 zooms out), as Keras's RandomZoom."""

    kind = "zoom"

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        owner = self._owner()
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height_bounds = _checked_bounds(owner, "height_factor", height_factor, -1, 1, low_open=True)
        self._width_bounds = None if width_factor is None else \
            _checked_bounds(owner, "width_factor", width_factor, -1, 1, low_open=True)

    def _parameters(self):
        return self._height_bounds, self._width_bounds

    def get_config(self):
        """Keras 3's config: the factors as given."""
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "height_factor": config["height_factor"],
                "width_factor": config.get("width_factor")}


class RandomTranslation(_GeometricLayer):
    """Shifts each image by u_h height and u_w width pixels (each u in its factor's range), as Keras's."""

    kind = "translation"

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        owner = self._owner()
        self.height_factor, self.width_factor = height_factor, width_factor
        self._bounds = (_checked_bounds(owner, "height_factor", height_factor, -1, 1),
                        _checked_bounds(owner, "width_factor", width_factor, -1, 1))

    def _parameters(self):
        return self._bounds

    def get_config(self):
        """Keras 3's config: the factors as given."""
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "height_factor": config["height_factor"],
                "width_factor": config["width_factor"]}


class RandomFlip(_ImageLayer):
    """Flips each image with probability 1/2: ``mode`` "horizontal", "vertical" or "horizontal_and_vertical"."""

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.mode = arguments.choice(self._owner(), "mode", mode, ("horizontal", "vertical", "horizontal_and_vertical"))

    def randomize(self, x):
        """Each image flipped or not (a transform that reads exactly one pixel per output pixel)."""
        return _resample(self._owner(), self._rng, x, "flip", self.mode, "nearest", "nearest", 0.0)

    def get_config(self):
        """Keras 3's config: mode, seed and data_format."""
        return {**super().get_config(), "mode": self.mode}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "mode": config.get("mode", "horizontal_and_vertical")}


def _value_range(owner, value_range):
    if not isinstance(value_range, (list, tuple)) or len(value_range) != 2:
        raise ValueError(f"{owner}: value_range must be a pair of numbers (low, high), got {value_range!r}")
    low, high = sorted(arguments.number(owner, "value_range", value) for value in value_range)
    return low, high


class _ColorLayer(_ImageLayer):
    """A layer that changes each image's values by a per-image uniform draw, clipped to ``value_range``."""

    #: the lowest end the factor may have (a single number f gives (max(-f, factor_low), f), as in Keras)
    factor_low = -1.0

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        owner = self._owner()
        low, high = _checked_bounds(owner, "factor", factor, self.factor_low, 1)
        self.factor = (max(low, self.factor_low), high)
        self.value_range = _value_range(owner, value_range)

    def _per_image(self, x, low, high):
        """One uniform draw in [low, high] per image, shaped (batch, 1, 1, 1) to broadcast over x."""
        count = checked_images(self._owner(), x).shape[0]
        return host_noise(self._rng, (count, 1, 1, 1), ("uniform", low, high), x.dtype, x.device)

    def get_config(self):
        """Keras 3's config: factor (its lower and upper ends), value_range, seed."""
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range)}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "factor": config["factor"],
                "value_range": config.get("value_range", (0, 255))}


class RandomContrast(_ColorLayer):
    """(x - mean) c + mean per image and channel, c uniform in [1 - lower, 1 + upper], clipped to value_range."""

    factor_low = 0.0             # Keras 3.15: RandomContrast(f) has the range (0, f), so c in [1, 1 + f]

    def randomize(self, x):
        """The contrast of each image scaled about its per-channel mean."""
        scale = self._per_image(x, 1.0 - self.factor[0], 1.0 + self.factor[1])
        mean = F.mean(x, axis=(1, 2), keepdims=True)
        return F.clip((x - mean) * scale + mean, *self.value_range)


class RandomBrightness(_ColorLayer):
    """x + u (high - low), u uniform in the factor's range per image, clipped to value_range = (low, high)."""

    def randomize(self, x):
        """Each image brightened or darkened by its own amount."""
        low, high = self.value_range
        return F.clip(x + self._per_image(x, *self.factor) * (high - low), low, high)
