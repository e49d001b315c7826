"""Keras's depthwise and separable convolutions (channels_last): DepthwiseConv2D/1D and SeparableConv2D/1D, the
building blocks of MobileNet- and Xception-style networks.

A depthwise convolution filters each input channel on its own: with the windows' patches P (n * oh * ow
windows of k = kh * kw positions and c channels, ``gather_windows`` as for Conv2D) and the kernel D (kh, kw,
c, m) read as (k, c, m),

    out[w, ch * m + j] = sum over positions a of P[w, a, ch] * D[a, ch, j],

one broadcast product and one sum over the window's positions, so each of the c channels gives m outputs
(``depth_multiplier``). A separable convolution follows it with a pointwise (1 x 1) convolution, the fused
dense op with the kernel (1, 1, c * m, filters) read as (c * m, filters), bias and activation included.
Autograd differentiates the product and the sum, and the gather's backward is col2im: nothing new to derive,
and every backend runs it. Weights, configs and output sizes are Keras 3's (checked against Keras 3.15 in
tests/test_separable_conv.py).
"""
import math

from . import activations, arguments, constraints, initializers, regularizers
from . import functional as F
from .conv_layers import _listed, _Windows
from .layer_base import Layer, batch_shape
from .layer_functional import gather_windows

__all__ = ["DepthwiseConv2D", "DepthwiseConv1D", "SeparableConv2D", "SeparableConv1D"]


class _Depthwise(_Windows):
    """What the depthwise and separable convolutions share: the depthwise kernel, its arguments and config."""

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        owner = self._owner()
        self._init_windows(kernel_size, strides, padding, dilation_rate, data_format)
        self.depth_multiplier = arguments.integer(owner, "depth_multiplier", depth_multiplier, minimum=1)
        self.activation = activations.get(activation)
        self._fused_activation = activations.fused_name(self.activation)
        self.use_bias = arguments.boolean(owner, "use_bias", use_bias)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.bias = None

    def _check_channels(self, input_shape):
        input_shape = batch_shape(self._owner(), "input_shape", input_shape)
        self._check_input(input_shape)
        if input_shape[-1] is None:
            raise ValueError(f"{self._owner()} needs a known number of input channels, got {tuple(input_shape)}")
        return input_shape

    def _add_depthwise(self, channels, name):
        return self.add_weight((*self.kernel_size, channels, self.depth_multiplier), self.depthwise_initializer,
                               regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint,
                               name=name)

    def _add_bias(self, size):
        if self.use_bias:
            self.bias = self.add_weight((size,), self.bias_initializer, regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, name="bias")

    def _depthwise_rows(self, x, kernel):
        """The depthwise convolution of x as rows (n * oh * ow, c * m), and (oh, ow)."""
        self._check_input(x.shape, kernel.shape[-2])
        if x.dtype != kernel.dtype:
            x = x.astype(kernel.dtype)
        rows, index, oh, ow = self._windows(x)
        windows, channels = x.shape[0] * oh * ow, x.shape[-1]
        size = math.prod(self.kernel_size)
        patches = gather_windows(rows, index, 0.0).reshape(windows, size, channels, 1)
        filtered = (patches * kernel.reshape(1, size, channels, self.depth_multiplier)).sum(axis=1)
        return filtered.reshape(windows, channels * self.depth_multiplier), oh, ow

    def _shaped(self, rows, n, oh, ow):
        return rows.reshape(n, oh, ow, -1) if self.rank == 2 else rows.reshape(n, oh, -1)

    def _activated(self, out, return_logits):
        return out if return_logits else self.activation(out)

    def get_config(self):
        """The depthwise part of Keras 3's config."""
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier, **self._window_config(),
                "dilation_rate": list(self.dilation_rate), "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}

    _OWN_KEYS = ("depth_multiplier", "activation", "use_bias", "depthwise_initializer", "bias_initializer",
                 "depthwise_regularizer", "bias_regularizer", "depthwise_constraint", "bias_constraint")

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), **{k: config[k] for k in cls._OWN_KEYS if k in config},
                "kernel_size": _listed(config["kernel_size"]), "strides": _listed(config.get("strides", 1)),
                "padding": config.get("padding", "valid"), "dilation_rate": _listed(config.get("dilation_rate", 1)),
                "data_format": config.get("data_format")}


class DepthwiseConv2D(_Depthwise):
    """Each input channel convolved on its own with ``depth_multiplier`` filters: (n, h, w, c) -> (n, oh, ow, c * m),
    kernel (kh, kw, c, m), bias (c * m,)."""

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         depthwise_constraint, bias_constraint, **kwargs)
        self.kernel = None
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def build(self, input_shape):
        """The kernel (*kernel_size, c, m) and the bias (c * m,)."""
        input_shape = self._check_channels(input_shape)
        self.kernel = self._add_depthwise(input_shape[-1], "kernel")
        self._add_bias(input_shape[-1] * self.depth_multiplier)
        Layer.build(self, input_shape)

    def _output_channels(self, channels):
        return None if channels is None else channels * self.depth_multiplier

    def call(self, x, training=False, return_logits=False):
        """activation(depthwise(x) + bias)."""
        rows, oh, ow = self._depthwise_rows(x, self.kernel)
        if self.bias is not None:
            rows = rows + self.bias
        return self._shaped(self._activated(rows, return_logits), x.shape[0], oh, ow)


class SeparableConv2D(_Depthwise):
    """A depthwise convolution, then a pointwise (1 x 1) one to ``filters`` channels, bias and activation:
    kernels depthwise_kernel (kh, kw, c, m) and pointwise_kernel (1, 1, c * m, filters), bias (filters,)."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         depthwise_constraint, bias_constraint, **kwargs)
        self.filters = arguments.integer(self._owner(), "filters", filters, minimum=1)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.pointwise_constraint = constraints.get(pointwise_constraint)
        self.depthwise_kernel = self.pointwise_kernel = None
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def build(self, input_shape):
        """depthwise_kernel, pointwise_kernel and bias, in Keras's order."""
        input_shape = self._check_channels(input_shape)
        self.depthwise_kernel = self._add_depthwise(input_shape[-1], "depthwise_kernel")
        self.pointwise_kernel = self.add_weight(
            (*(1,) * self.rank, input_shape[-1] * self.depth_multiplier, self.filters), self.pointwise_initializer,
            regularizer=self.pointwise_regularizer, constraint=self.pointwise_constraint, name="pointwise_kernel")
        self._add_bias(self.filters)
        Layer.build(self, input_shape)

    def _output_channels(self, channels):
        return self.filters

    def call(self, x, training=False, return_logits=False):
        """activation(depthwise(x) @ pointwise + bias), the pointwise product fused with bias and activation."""
        rows, oh, ow = self._depthwise_rows(x, self.depthwise_kernel)
        fused = "none" if return_logits else self._fused_activation
        out = F.linear(rows, self.pointwise_kernel.reshape(-1, self.filters), self.bias,
                       "none" if fused is None else fused)
        out = out if fused is not None else self.activation(out)
        return self._shaped(out, x.shape[0], oh, ow)

    def get_config(self):
        """Keras 3's config."""
        return {**super().get_config(), "filters": self.filters,
                "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
                "pointwise_constraint": constraints.serialize(self.pointwise_constraint)}

    @classmethod
    def _config_arguments(cls, config):
        keys = ("filters", "pointwise_initializer", "pointwise_regularizer", "pointwise_constraint")
        return {**super()._config_arguments(config), **{k: config[k] for k in keys if k in config}}


class DepthwiseConv1D(DepthwiseConv2D):
    """The depthwise convolution over (batch, steps, channels); kernel (k, c, m)."""

    rank = 1


class SeparableConv1D(SeparableConv2D):
    """The separable convolution over (batch, steps, channels); kernels (k, c, m) and (1, c * m, filters)."""

    rank = 1
