"""Keras's layers that resize the spatial axes of channels_last inputs: UpSampling1D/2D, ZeroPadding1D/2D,
Cropping1D/2D.

Samples are (steps, channels) for the 1-D layers and (rows, cols, channels) for the 2-D ones. Each is a
few of the core's differentiable ops (reshape and broadcast, concatenate, getitem), so autograd, the
compiled step and every device serve them; configs have Keras 3's keys, so files move between Keras and
nnengine:

* ``UpSampling(size)``: each step (row, column) repeated ``size`` times: nearest-neighbour, Keras's default
  (``interpolation='bilinear'`` is refused);
* ``ZeroPadding(padding)``: zeros before and after each spatial axis, ``padding`` an int, one int per axis
  or a (before, after) pair per axis;
* ``Cropping(cropping)``: the same amounts cut off instead.
"""
from . import arguments
from . import functional as F
from .layer_base import Layer
from .tensor import zeros

__all__ = ["UpSampling1D", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D"]


def _data_format(owner, data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{owner}: data_format must be 'channels_last' (nnengine's only layout), got "
                         f"{data_format!r}")


def _pairs(owner, name, value, rank):
    """((before, after), ...) per spatial axis from an int, one int per axis, or a pair per axis."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * rank
    if rank == 1 and isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        value = (tuple(value),)
    if not isinstance(value, (tuple, list)) or len(value) != rank:
        raise ValueError(f"{owner}: {name} must be an int, {rank} ints or {rank} (before, after) pairs, got {value!r}")
    pairs = []
    for item in value:
        pair = (item, item) if isinstance(item, int) and not isinstance(item, bool) else item
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{owner}: {name} must be an int, {rank} ints or {rank} (before, after) pairs, got "
                             f"{value!r}")
        pairs.append(tuple(arguments.integer(owner, name, v, minimum=0) for v in pair))
    return tuple(pairs)


def _check_rank(layer, x):
    if x.ndim != layer.rank + 2:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: expects inputs of rank {layer.rank + 2} "
                         f"(batch, {'steps' if layer.rank == 1 else 'rows, cols'}, channels), got shape {x.shape}")


class _UpSampling(Layer):
    rank = 2

    def __init__(self, size=2, data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} {self.name!r}"
        _data_format(owner, data_format)
        if interpolation != "nearest":
            raise ValueError(f"{owner}: interpolation must be 'nearest' (bilinear is not supported), got "
                             f"{interpolation!r}")
        sizes = (size,) * self.rank if isinstance(size, int) and not isinstance(size, bool) else tuple(size)
        if len(sizes) != self.rank:
            raise ValueError(f"{owner}: size must be an int or {self.rank} ints, got {size!r}")
        self.size = tuple(arguments.integer(owner, "size", s, minimum=1) for s in sizes)

    def call(self, x, training=False):
        """Each spatial position repeated: (n, a, c) -> (n, a, k, c) broadcast, then merged into (n, a*k, c)."""
        _check_rank(self, x)
        for axis, repeat in enumerate(self.size, start=1):
            if repeat > 1:
                shape = x.shape
                spread = x.reshape(*shape[:axis + 1], 1, *shape[axis + 1:])
                copies = spread + zeros((1,) * (axis + 1) + (repeat,) + (1,) * (len(shape) - axis - 1),
                                        dtype=x.dtype, device=x.device)
                x = copies.reshape(*shape[:axis], shape[axis] * repeat, *shape[axis + 1:])
        return x

    def compute_output_shape(self, input_shape):
        """The spatial sizes multiplied by ``size``."""
        spatial = [None if d is None else d * k for d, k in zip(input_shape[1:-1], self.size)]
        return (input_shape[0], *spatial, input_shape[-1])


class UpSampling2D(_UpSampling):
    """Nearest-neighbour upsampling of images: each pixel repeated ``size`` = (rows, cols) times."""

    def get_config(self):
        """Keras 3's UpSampling2D config."""
        return {**super().get_config(), "size": list(self.size), "data_format": "channels_last",
                "interpolation": "nearest"}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "size": tuple(config.get("size", (2, 2))),
                "interpolation": config.get("interpolation", "nearest")}


class UpSampling1D(_UpSampling):
    """Each step of a sequence repeated ``size`` times."""

    rank = 1

    def get_config(self):
        """Keras 3's UpSampling1D config."""
        return {**super().get_config(), "size": self.size[0]}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "size": config.get("size", 2)}


class _Padding(Layer):
    rank, name_of_amounts, default = 2, "padding", 1

    def __init__(self, amounts=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} {self.name!r}"
        _data_format(owner, data_format)
        self.amounts = _pairs(owner, self.name_of_amounts, self.default if amounts is None else amounts, self.rank)

    def compute_output_shape(self, input_shape):
        """Each spatial size grown (padding) or cut (cropping) by its two amounts."""
        sign = 1 if self.name_of_amounts == "padding" else -1
        spatial = [None if d is None else d + sign * (a + b) for d, (a, b) in zip(input_shape[1:-1], self.amounts)]
        return (input_shape[0], *spatial, input_shape[-1])

    def get_config(self):
        """Keras 3's config: the amounts as (before, after) pairs (one pair for the 1-D layers)."""
        amounts = [list(pair) for pair in self.amounts] if self.rank == 2 else list(self.amounts[0])
        extra = {"data_format": "channels_last"} if self.name_of_amounts == "padding" or self.rank == 2 else {}
        return {**super().get_config(), self.name_of_amounts: amounts, **extra}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config),
                cls.name_of_amounts: config.get(cls.name_of_amounts, cls.default)}


class ZeroPadding2D(_Padding):
    """Zeros around images: ``padding`` rows above and below, columns left and right."""

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)

    def call(self, x, training=False):
        """x between blocks of zeros along each spatial axis."""
        _check_rank(self, x)
        for axis, (before, after) in enumerate(self.amounts, start=1):
            parts = []
            for amount in (before, after):
                shape = list(x.shape)
                shape[axis] = amount
                parts.append(zeros(tuple(shape), dtype=x.dtype, device=x.device) if amount else None)
            x = F.concatenate([p for p in (parts[0], x, parts[1]) if p is not None], axis=axis)
        return x


class ZeroPadding1D(ZeroPadding2D):
    """Zeros before and after each sequence: ``padding`` steps (an int or a (before, after) pair)."""

    rank = 1


class Cropping2D(_Padding):
    """Cuts ``cropping`` rows off the top and bottom of images, columns off the left and right."""

    name_of_amounts, default = "cropping", 0

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)

    def call(self, x, training=False):
        """x without its ``cropping`` border."""
        _check_rank(self, x)
        index = [slice(None)]
        for size, (before, after) in zip(x.shape[1:-1], self.amounts):
            if before + after >= size:
                raise ValueError(f"{type(self).__name__} {self.name!r}: cropping {before} + {after} leaves nothing of "
                                 f"a spatial axis of size {size}")
            index.append(slice(before, size - after))
        return x[tuple(index)]


class Cropping1D(Cropping2D):
    """Cuts ``cropping`` steps (an int or a (before, after) pair) off each sequence."""

    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, **kwargs)
