"""Keras's image resizing layers: Resizing and CenterCrop (at training and inference alike), RandomCrop.

Images are (batch, height, width, channels) floats. ``Resizing(height, width)`` samples the image (or a
box of it) at the output's pixel centres, as Keras does: output pixel i of n, over a box of m input pixels,
reads the point s = (i + 1/2) m / n - 1/2 of the box:

* ``"bilinear"``: between pixels floor(s) and floor(s) + 1, weighted by the distance, s clamped to
  [0, m - 1] (the edge pixel beyond the image's edge);
* ``"nearest"``: pixel floor((i + 1/2) m / n), the one whose span holds the output pixel's centre (as
  Keras's TensorFlow and JAX backends; Keras's torch backend uses floor(i m / n), which shifts the choice).

``crop_to_aspect_ratio=True`` first cuts the largest centred box of the output's aspect ratio;
``pad_to_aspect_ratio=True`` instead pads the image with ``fill_value`` around, centred, to that ratio (each
as Keras 3 computes the box: int() of the float sizes). ``CenterCrop(height, width)`` cuts the centred box
of that size, or, for an image smaller than it along an axis, resizes it as Keras does
(bilinear, cropped to the aspect ratio first).

``RandomCrop(height, width)`` cuts, in training, a box of that size at a random place, one place for the
whole batch (top uniform in 0 .. image height - height, left likewise), as Keras 3 does when the images are
larger than the box along both axes. Otherwise, and at inference, it cuts the box at the place of the
aspect-ratio crop (as much of it as the image holds) and resizes that to (height, width), bilinear, as
Keras 3.15 does in training (its own inference returns the images uncut, a size the layers after it do not
expect; nnengine keeps the output's size).

The sampling table (input pixels read by each output pixel, with weights) depends on the shapes only: it is
made once per input shape and kept on the host; the device gathers and sums as the augmentation layers do
(``image_augmentation.read_table``), so gradients flow back to the input.
"""
import numpy as np

from . import arguments
from .dropout_masks import host_noise
from .image_augmentation import checked_images, read_table
from .layer_base import Layer
from .tensor import Tensor

__all__ = ["Resizing", "CenterCrop", "RandomCrop", "resize_table"]

_INTERPOLATIONS = ("bilinear", "nearest")


def _axis_nodes(box, size, interpolation):
    """[(positions in the box, weight)] read by each of ``size`` outputs along an axis of a ``box``-pixel box."""
    centres = (np.arange(size, dtype=np.float64) + 0.5) * box / size
    if interpolation == "nearest":
        return [(np.minimum(np.floor(centres), box - 1), np.ones(size))]
    source = np.clip(centres - 0.5, 0, box - 1)
    lower = np.floor(source)
    upper_weight = source - lower
    return [(lower, 1.0 - upper_weight), (np.minimum(lower + 1, box - 1), upper_weight)]


def resize_table(count, height, width, size, interpolation, box):
    """(2, count * out_h * out_w * k): the flat input index each output pixel's k reads take (count * height *
    width: the fill value) and their weights, for images of (height, width) resized to ``size`` = (out_h, out_w)
    from ``box`` = (top, left, box_h, box_w) (a box reaching outside the image is padding)."""
    top, left, box_h, box_w = box
    out_h, out_w = size
    indices, weights = [], []
    for rows, row_weights in _axis_nodes(box_h, out_h, interpolation):
        for cols, col_weights in _axis_nodes(box_w, out_w, interpolation):
            row, col = (top + rows)[:, None], (left + cols)[None, :]
            inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
            pixel = np.where(inside, row * width + col, -1)                 # (out_h, out_w)
            image = (np.arange(count) * height * width)[:, None, None]
            indices.append(np.where(pixel >= 0, image + pixel, count * height * width))
            weights.append(np.broadcast_to(row_weights[:, None] * col_weights[None, :], indices[-1].shape))
    return np.stack([np.stack(indices, axis=-1).reshape(-1), np.stack(weights, axis=-1).reshape(-1)])


def _aspect_box(height, width, size, mode):
    """Keras's box of the output's aspect ratio: (top, left, box_h, box_w); ``mode`` "crop", "pad" or None."""
    target_h, target_w = size
    if mode == "crop":
        box_h = max(min(height, int(float(width * target_h) / target_w)), 1)
        box_w = max(min(width, int(float(height * target_w) / target_h)), 1)
        return int(float(height - box_h) / 2), int(float(width - box_w) / 2), box_h, box_w
    if mode == "pad":                       # Keras pads each side by int((padded - size) / 2)
        pad_top = int(float(max(height, int(float(width * target_h) / target_w)) - height) / 2)
        pad_left = int(float(max(width, int(float(height * target_w) / target_h)) - width) / 2)
        return -pad_top, -pad_left, height + 2 * pad_top, width + 2 * pad_left
    return 0, 0, height, width


class _ResamplingLayer(Layer):
    """A layer that resamples images to a fixed (height, width) through a table kept per input shape."""

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = self._owner()
        self.height = arguments.integer(owner, "height", height, minimum=1)
        self.width = arguments.integer(owner, "width", width, minimum=1)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{owner}: data_format must be 'channels_last' (nnengine's layout), got {data_format!r}")
        self._tables = {}

    def _owner(self):
        return f"{type(self).__name__} {self.name!r}"

    def _resized(self, x, interpolation, aspect, fill_value=0.0):
        """x resized to (height, width), from the box ``aspect`` ("crop", "pad" or None) says, or from ``aspect``
        itself when it is a box (top, left, box_h, box_w)."""
        count, height, width, _ = x.shape
        size = (self.height, self.width)
        key = (x.shape, interpolation, aspect)
        if key not in self._tables:                   # host arrays: the Tensors are made in the step (a compiled
            if len(self._tables) >= 8:                # step keeps them as constants of its plan)
                self._tables.clear()
            box = aspect if isinstance(aspect, tuple) else _aspect_box(height, width, size, aspect)
            table = resize_table(count, height, width, size, interpolation, box)
            self._tables[key] = (table[0].astype(np.int64), table[1])
        positions, weights = (Tensor(part, dtype=dtype, device=x.device)
                              for part, dtype in zip(self._tables[key], (np.int64, x.dtype)))
        return read_table(x, positions, weights, size, fill_value)

    def compute_output_shape(self, input_shape):
        """(batch, height, width, channels)."""
        return (input_shape[0], self.height, self.width, *input_shape[3:])

    def get_config(self):
        """Keras 3's config keys: height, width, data_format."""
        return {**super().get_config(), "height": self.height, "width": self.width, "data_format": "channels_last"}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "height": config["height"], "width": config["width"],
                "data_format": config.get("data_format")}


class Resizing(_ResamplingLayer):
    """Resizes images to (height, width), bilinear or nearest, optionally cropped or padded to the aspect ratio
    first (see the module docstring)."""

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, antialias=False, data_format=None,
                 **kwargs):
        super().__init__(height, width, data_format, **kwargs)
        owner = self._owner()
        self.interpolation = arguments.choice(owner, "interpolation", interpolation, _INTERPOLATIONS)
        self.crop_to_aspect_ratio = arguments.boolean(owner, "crop_to_aspect_ratio", crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = arguments.boolean(owner, "pad_to_aspect_ratio", pad_to_aspect_ratio)
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError(f"{owner}: give crop_to_aspect_ratio or pad_to_aspect_ratio, not both (as Keras)")
        self.fill_mode = arguments.choice(owner, "fill_mode", fill_mode, ("constant",))
        self.fill_value = arguments.number(owner, "fill_value", fill_value)
        if arguments.boolean(owner, "antialias", antialias):
            raise ValueError(f"{owner}: antialias=True is not supported (nnengine resizes without an antialiasing "
                             "filter, Keras's default)")

    def call(self, x, training=False):
        """The images resized to (height, width)."""
        aspect = "crop" if self.crop_to_aspect_ratio else "pad" if self.pad_to_aspect_ratio else None
        return self._resized(checked_images(self._owner(), x), self.interpolation, aspect, self.fill_value)

    def get_config(self):
        """Keras 3's Resizing config."""
        return {**super().get_config(), "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio, "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
                "fill_mode": self.fill_mode, "fill_value": self.fill_value, "antialias": False}

    @classmethod
    def _config_arguments(cls, config):
        keys = ("interpolation", "crop_to_aspect_ratio", "pad_to_aspect_ratio", "fill_mode", "fill_value", "antialias")
        return {**super()._config_arguments(config), **{key: config[key] for key in keys if key in config}}


class CenterCrop(_ResamplingLayer):
    """The centred (height, width) box of each image; an image smaller than that is resized as Keras does
    (bilinear, cropped to the aspect ratio)."""

    def call(self, x, training=False):
        """The centred box (or the resized image)."""
        _, height, width, _ = checked_images(self._owner(), x).shape
        if height >= self.height and width >= self.width:
            top, left = (height - self.height) // 2, (width - self.width) // 2
            return x[:, top:top + self.height, left:left + self.width, :]
        return self._resized(x, "bilinear", "crop")


def _random_crop_table(rng, shape, height, width, size):
    """The sampling table of one batch's random crop (dropout_masks.draw's "sample" law): one (top, left) for
    every image, each uniform over the places a ``size`` box fits (Keras: int(uniform(0, room + 1)))."""
    count = shape[1] // (size[0] * size[1])
    top = int(rng.uniform(0, height - size[0] + 1))
    left = int(rng.uniform(0, width - size[1] + 1))
    return resize_table(count, height, width, size, "nearest", (top, left, *size))


class RandomCrop(_ResamplingLayer):
    """A random (height, width) box of the images in training, the same place for the batch; the images resized
    to it (cropped to its aspect ratio) otherwise. See the module docstring."""

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(height, width, data_format, **kwargs)
        self.seed = None if seed is None else arguments.integer(self._owner(), "seed", seed, minimum=0)
        self._rng = np.random.default_rng(self.seed) if self.seed is not None else None

    def draws_dropout_masks(self, training):
        """In training, a new place every step (fed to a compiled step: dropout_masks.py)."""
        return training

    def call(self, x, training=False):
        """A random box in training (for images larger than it), else the images resized to it."""
        count, height, width, _ = checked_images(self._owner(), x).shape
        if not (training and height > self.height and width > self.width):
            # Keras: a (height, width) box at the place of the aspect-ratio crop, cut by the image, resized
            top, left, _, _ = _aspect_box(height, width, (self.height, self.width), "crop")
            box = (top, left, min(self.height, height - top), min(self.width, width - left))
            return self._resized(x, "bilinear", box)
        size = (self.height, self.width)
        table = host_noise(self._rng, (2, count * self.height * self.width),
                           ("sample", _random_crop_table, height, width, size), np.float64, x.device)
        return read_table(x, table[0].astype(np.int64), table[1], size)

    def get_config(self):
        """Keras 3's config: height, width, seed, data_format."""
        return {**super().get_config(), "seed": self.seed}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "seed": config.get("seed")}
