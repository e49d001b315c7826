"""Convolution and pooling layers, channels_last as Keras: Conv1D, Conv2D, MaxPooling1D/2D,
AveragePooling1D/2D and the global poolings.

How a convolution is computed (docs/convolution.md derives it): each output position reads a window
of the input. ``window_positions`` lists, once per input shape, the flat input position of every
element of every window (a padded position points one past the end). Gathering those
(``gather_windows``, one backend primitive: im2col) gives the patch matrix P of shape
(n * oh * ow, kh * kw * c), and the convolution is then ONE fused dense op, act(P @ K + b), with the
Keras kernel K (kh, kw, c, filters) read as (kh * kw * c, filters): the same GEMM, bias and activation
kernels as Dense, on every backend. Backward: autograd's matmul gives dK = P^T dZ and dP = dZ K^T,
and the gather's backward (``window_scatter``, col2im) adds each dP element back onto the input
position it was read from.

Grouped convolutions (``groups=g``, Keras's kernel (kh, kw, c / g, filters)) use the same single product with a
block-diagonal kernel: group j's channels reach group j's filters only, zeros elsewhere (g times the work of
separate products, and no new kernel).

Pooling reads the same windows in one fused primitive each way, without a patch matrix: the maximum
of each window's real elements (the gradient goes to the first one holding it, as in Keras), or their
mean (padding left out of the count, as Keras does).
"""
import functools

import numpy as np

from . import arguments
from . import functional as F
from .layer_base import KernelAndBias, Layer, batch_shape
from .layer_functional import average_pool, gather_windows, host_constant, index_constant, max_pool
from .masks import step_mask

__all__ = ["Conv1D", "Conv2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
           "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
           "Convolution1D", "Convolution2D", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D", "GlobalAvgPool1D",
           "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D", "window_positions", "output_length"]

PADDINGS = ("valid", "same")


def output_length(size, kernel, stride, dilation, padding):
    """Keras's output length of one spatial axis: floor((size - span) / stride) + 1 for 'valid',
    ceil(size / stride) for 'same' and 'causal' (Conv1D's: the input padded with span - 1 before it), where
    span = (kernel - 1) * dilation + 1 (0 when nothing fits)."""
    span = (kernel - 1) * dilation + 1
    if padding in ("same", "causal"):
        return -(-size // stride)
    return max((size - span) // stride + 1, 0)


def _axis_windows(size, kernel, stride, dilation, padding):
    """(positions (out, kernel), valid (out, kernel)) along one axis; 'same' pads (total // 2) before,
    the rest after, as TensorFlow and Keras do; 'causal' pads span - 1 before, so output i reads inputs
    up to i * stride and never one after it."""
    out = output_length(size, kernel, stride, dilation, padding)
    span = (kernel - 1) * dilation + 1
    before = {"same": max((out - 1) * stride + span - size, 0) // 2, "causal": span - 1}.get(padding, 0)
    positions = (np.arange(out) * stride - before)[:, None] + np.arange(kernel) * dilation
    return positions, (positions >= 0) & (positions < size)


@functools.lru_cache(maxsize=64)
def window_positions(height, width, kernel, strides, dilation, padding):
    """For an (height, width) input: (oh, ow, flat positions (oh * ow * kh * kw,), any padding?).

    Entry [((i * ow + j) * kh + a) * kw + b] is the flat input position (row * width + column) of
    element (a, b) of output (i, j)'s window, or height * width (the extra zero row) where it falls in
    the padding. Read-only (cached per shape).
    """
    rows, rows_ok = _axis_windows(height, kernel[0], strides[0], dilation[0], padding)
    cols, cols_ok = _axis_windows(width, kernel[1], strides[1], dilation[1], padding)
    flat = rows[:, None, :, None] * width + cols[None, :, None, :]            # (oh, ow, kh, kw)
    valid = rows_ok[:, None, :, None] & cols_ok[None, :, None, :]
    positions = np.where(valid, flat, height * width).reshape(-1).astype(np.int64)
    positions.flags.writeable = False
    return len(rows), len(cols), positions, not valid.all()


def _pair(owner, name, value, rank):
    """An int or a tuple of ``rank`` positive ints, as a tuple (Keras's kernel_size, strides, ...)."""
    values = (value,) * rank if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if not isinstance(values, (tuple, list)) or len(values) != rank:
        raise TypeError(f"{owner}: {name} must be an int or a tuple of {rank} ints, got {value!r}")
    return tuple(arguments.integer(owner, name, v, minimum=1) for v in values)


def _padding(owner, padding, allowed=PADDINGS):
    return arguments.choice(owner, "padding", padding.lower() if isinstance(padding, str) else padding, allowed)


def _data_format(owner, data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{owner}: data_format must be None or 'channels_last' (nnengine is channels_last "
                         f"only), got {data_format!r}")


class _Windows(Layer):
    """What convolutions and poolings share: the spatial rank, window geometry, input checks, gathering."""

    rank = 2

    def _init_windows(self, kernel, strides, padding, dilation, data_format):
        owner = self._owner()
        _data_format(owner, data_format)
        self.kernel_size = _pair(owner, self._kernel_argument, kernel, self.rank)
        self.strides = _pair(owner, "strides", strides, self.rank)
        self.padding = _padding(owner, padding, self._paddings)
        self.dilation_rate = _pair(owner, "dilation_rate", dilation, self.rank)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{owner}: strides > 1 together with dilation_rate > 1 is not supported "
                             f"(Keras refuses it too), got strides={self.strides}, dilation_rate={self.dilation_rate}")

    _kernel_argument = "kernel_size"
    _paddings = PADDINGS

    def _owner(self):
        return f"{type(self).__name__} {self.name!r}"

    def _spatial(self, shape):
        """(height, width) of an input shape (batch, *spatial, channels); width 1 for the 1-D layers."""
        return (shape[1], 1) if self.rank == 1 else (shape[1], shape[2])

    def _geometry(self):
        """kernel, strides and dilation as 2-D tuples (the 1-D layers use width 1)."""
        if self.rank == 1:
            return (self.kernel_size[0], 1), (self.strides[0], 1), (self.dilation_rate[0], 1)
        return self.kernel_size, self.strides, self.dilation_rate

    def _check_rank(self, shape, channels=None):
        """ValueError unless ``shape`` is (batch, *spatial, channels) of the layer's rank, with ``channels``."""
        if len(shape) != self.rank + 2:
            names = "(batch, steps, channels)" if self.rank == 1 else "(batch, height, width, channels)"
            raise ValueError(f"Input of layer {self.name!r} is incompatible with the layer: expected "
                             f"ndim={self.rank + 2} {names}, found ndim={len(shape)}, full shape received: "
                             f"{tuple(shape)}")
        if channels is not None and shape[-1] != channels:
            raise ValueError(f"Input of layer {self.name!r} is incompatible with the layer: expected axis -1 of "
                             f"input shape to have value {channels}, but received input with shape {tuple(shape)}")

    def _check_input(self, shape, channels=None):
        owner = self._owner()
        self._check_rank(shape, channels)
        kernel, strides, dilation = self._geometry()
        for axis, size in enumerate(self._spatial(shape)):
            if size is not None and output_length(size, kernel[axis], strides[axis], dilation[axis],
                                                  self.padding) < 1:
                span = (kernel[axis] - 1) * dilation[axis] + 1
                raise ValueError(f"{owner}: the window spans {span} along spatial axis {axis + 1} but the input "
                                 f"{tuple(shape)} has {size} there; with padding='valid' the output would be "
                                 "empty (use a smaller kernel or padding='same')")

    def compute_output_shape(self, input_shape):
        """(batch, *output spatial sizes, channels out)."""
        input_shape = tuple(input_shape)
        kernel, strides, dilation = self._geometry()
        sizes = [None if size is None else output_length(size, kernel[a], strides[a], dilation[a], self.padding)
                 for a, size in enumerate(self._spatial(input_shape))]
        return (input_shape[0], *sizes[:self.rank], self._output_channels(input_shape[-1]))

    def _output_channels(self, channels):
        return channels

    def _windows(self, x):
        """x (n, *spatial, c) as rows (n, height * width, c), the window positions as a shared int64 Tensor
        (uploaded once per input size and device), and the output's (oh, ow)."""
        n, c = x.shape[0], x.shape[-1]
        height, width = self._spatial(x.shape)
        geometry = (height, width, *self._geometry(), self.padding)
        oh, ow, positions, _ = window_positions(*geometry)
        index = index_constant(x, ("windows", *geometry), lambda: positions)
        return x.reshape(n, height * width, c), index, oh, ow

    def _window_config(self):
        return {self._kernel_argument: list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": "channels_last"}


class Conv2D(KernelAndBias, _Windows):
    """2-D convolution over (batch, height, width, channels) inputs: a = activation(conv(x, kernel) + bias).

    Keras's arguments and defaults; the kernel is (kh, kw, in, filters). 'same' padding gives
    ceil(size / stride) outputs per axis and pads (total // 2) before, the rest after, as Keras does.
    """

    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        owner = self._owner()
        self.filters = arguments.integer(owner, "filters", filters, minimum=1)
        self.groups = arguments.integer(owner, "groups", groups, minimum=1)
        if self.filters % self.groups:
            raise ValueError(f"{owner}: filters ({self.filters}) must be a multiple of groups ({self.groups})")
        self._init_windows(kernel_size, strides, padding, dilation_rate, data_format)
        self._init_kernel_and_bias(owner, activation, use_bias, kernel_initializer, bias_initializer,
                                   kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint)
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def build(self, input_shape):
        """Create the kernel (*kernel_size, in, filters) and the bias (filters,)."""
        input_shape = batch_shape(self._owner(), "input_shape", input_shape)
        self._check_input(input_shape)
        if input_shape[-1] is None:
            raise ValueError(f"{self._owner()} needs a known number of input channels, got {tuple(input_shape)}")
        if input_shape[-1] % self.groups:
            raise ValueError(f"{self._owner()}: the input's {input_shape[-1]} channels must be a multiple of groups "
                             f"({self.groups})")
        self._add_kernel_and_bias((*self.kernel_size, input_shape[-1] // self.groups, self.filters), self.filters)
        super().build(input_shape)

    def _output_channels(self, channels):
        return self.filters

    def call(self, x, training=False, return_logits=False):
        """activation(P @ K + b) over the patch matrix P (see the module docstring)."""
        self._check_input(x.shape, self.kernel.shape[-2] * self.groups)
        if x.dtype != self.kernel.dtype:
            x = x.astype(self.kernel.dtype)
        rows, index, oh, ow = self._windows(x)
        n = x.shape[0]
        rows = gather_windows(rows, index, 0.0).reshape(n * oh * ow, -1)
        out = self._activated_product(rows, self._kernel_matrix(), return_logits)
        return out.reshape(n, oh, ow, self.filters) if self.rank == 2 else out.reshape(n, oh, self.filters)

    def _kernel_matrix(self):
        """The kernel as the (window * in, filters) matrix of the patch product. With groups, the block-diagonal
        matrix that connects group j's input channels to group j's filters only (zeros elsewhere), so one fused
        product serves every group (at ``groups`` times the work of separate products)."""
        if self.groups == 1:
            return self.kernel.reshape(-1, self.filters)
        per_group, window = self.kernel.shape[-2], int(np.prod(self.kernel_size))
        kernel = self.kernel.reshape(window, per_group, self.filters)
        share = self.filters // self.groups
        columns = []
        for group in range(self.groups):
            block = kernel[:, :, group * share:(group + 1) * share]
            parts = [block]
            if group:
                parts.insert(0, _zeros(block, (window, group * per_group, share)))
            if group < self.groups - 1:
                parts.append(_zeros(block, (window, (self.groups - 1 - group) * per_group, share)))
            columns.append(F.concatenate(parts, axis=1) if len(parts) > 1 else block)
        return F.concatenate(columns, axis=2).reshape(window * per_group * self.groups, self.filters)

    def get_config(self):
        """Keras 3's config."""
        return {**super().get_config(), "filters": self.filters, **self._window_config(),
                "dilation_rate": list(self.dilation_rate), "groups": self.groups, **self._kernel_and_bias_config()}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), **cls._kernel_and_bias_arguments(config),
                "filters": config["filters"], "kernel_size": _listed(config["kernel_size"]),
                "strides": _listed(config.get("strides", 1)), "padding": config.get("padding", "valid"),
                "dilation_rate": _listed(config.get("dilation_rate", 1)), "groups": config.get("groups", 1),
                "data_format": config.get("data_format")}


class Conv1D(Conv2D):
    """1-D convolution over (batch, steps, channels): Conv2D's computation with a width of one.

    The kernel is (kernel_size, in, filters), as Keras's. padding='causal' (Keras's, for sequences) pads
    (kernel_size - 1) * dilation_rate steps before the input only, so step t of the output reads input
    steps up to t, never after it.
    """

    rank = 1
    _paddings = PADDINGS + ("causal",)


def _zeros(like, shape):
    """A zero Tensor of ``shape`` in ``like``'s dtype and device, uploaded once per shape (a constant)."""
    return host_constant(like, ("zeros", shape, np.dtype(like.dtype).name), lambda: np.zeros(shape), like.dtype)


def _listed(value):
    """A config's list as the tuple a constructor takes (an int stays an int)."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


class _Pooling(_Windows):
    """Max or average over windows of ``pool_size`` (strides default to pool_size, as Keras)."""

    _kernel_argument = "pool_size"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._init_windows(pool_size, pool_size if strides is None else strides, padding, 1, data_format)

    @property
    def pool_size(self):
        """The window's size per spatial axis."""
        return self.kernel_size

    def call(self, x, training=False):
        """The pooled windows, (batch, *output sizes, channels)."""
        self._check_input(x.shape)
        n, c = x.shape[0], x.shape[-1]
        rows, index, oh, ow = self._windows(x)
        window = self.kernel_size[0] * (self.kernel_size[1] if self.rank == 2 else 1)
        out = (max_pool if self.maximum else average_pool)(rows, index, window)
        return out.reshape(n, oh, ow, c) if self.rank == 2 else out.reshape(n, oh, c)

    def get_config(self):
        """Keras 3's config."""
        return {**super().get_config(), **self._window_config()}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "pool_size": _listed(config.get("pool_size", 2)),
                "strides": _listed(config.get("strides")), "padding": config.get("padding", "valid"),
                "data_format": config.get("data_format")}


class MaxPooling2D(_Pooling):
    """The maximum of each pool_size window of (batch, height, width, channels); a tied maximum's gradient goes
    to the first element holding it (row-major), as in Keras."""

    rank, maximum = 2, True


class AveragePooling2D(_Pooling):
    """The mean of each pool_size window; with padding='same' the padding is left out of the mean (as Keras)."""

    rank, maximum = 2, False


class MaxPooling1D(_Pooling):
    """The maximum of each pool_size window of (batch, steps, channels)."""

    rank, maximum = 1, True


class AveragePooling1D(_Pooling):
    """The mean of each pool_size window of (batch, steps, channels)."""

    rank, maximum = 1, False


class _GlobalPooling(Layer):
    """Mean or max over every spatial axis: (batch, *spatial, channels) -> (batch, channels)."""

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        _data_format(f"{type(self).__name__} {self.name!r}", data_format)
        self.keepdims = arguments.boolean(f"{type(self).__name__} {self.name!r}", "keepdims", keepdims)

    def call(self, x, training=False):
        """The pooled tensor."""
        if x.ndim != self.rank + 2:
            raise ValueError(f"Input of layer {self.name!r} is incompatible with the layer: expected "
                             f"ndim={self.rank + 2}, found ndim={x.ndim}, full shape received: {x.shape}")
        axes = tuple(range(1, self.rank + 1))
        return x.max(axis=axes, keepdims=self.keepdims) if self.maximum else x.mean(axis=axes, keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        """(batch, channels), or with keepdims ones for the spatial axes."""
        input_shape = tuple(input_shape)
        if self.keepdims:
            return (input_shape[0], *(1,) * self.rank, input_shape[-1])
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        """Keras 3's config."""
        return {**super().get_config(), "data_format": "channels_last", "keepdims": self.keepdims}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "keepdims": config.get("keepdims", False),
                "data_format": config.get("data_format")}


class GlobalAveragePooling2D(_GlobalPooling):
    """The mean over height and width."""

    rank, maximum = 2, False


class GlobalMaxPooling2D(_GlobalPooling):
    """The maximum over height and width."""

    rank, maximum = 2, True


class GlobalAveragePooling1D(_GlobalPooling):
    """The mean over the steps; with Keras's mask (Embedding(mask_zero=True) or Masking upstream), the mean over
    the kept steps only, sum(x * m) / sum(m), which consumes the mask. A sequence with no kept step gives zeros
    (Keras divides 0 by 0 there)."""

    rank, maximum = 1, False
    supports_masking = True

    def call(self, x, training=False, mask=None):
        """The (masked) mean over the steps."""
        if mask is None:
            return super().call(x, training)
        kept = step_mask(self.name, mask, x).reshape(x.shape[0], x.shape[1], 1)
        total = F.where(kept, x, 0.0).sum(axis=1, keepdims=self.keepdims)
        count = F.maximum(kept.astype(x.dtype).sum(axis=1, keepdims=self.keepdims), 1.0)
        return total / count

    def compute_mask(self, inputs, mask=None):
        """None: the steps are pooled away."""
        return None


class GlobalMaxPooling1D(_GlobalPooling):
    """The maximum over the steps."""

    rank, maximum = 1, True


# Keras's other names for the same classes (``layers.MaxPool2D`` is ``MaxPooling2D``; files name the latter)
Convolution1D, Convolution2D = Conv1D, Conv2D
MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D = MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
