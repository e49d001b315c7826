"""Keras's transposed convolutions, Conv2DTranspose and Conv1DTranspose (channels_last): the upsampling layers of
autoencoders, GAN generators and U-Nets.

A transposed convolution is the gradient of a convolution with respect to its input, run forwards. Take the
convolution C that maps an output-sized Y (n, H, W, filters) to an input-sized X (n, h, w, c) with the same
kernel, strides, padding and dilation: X = im2col(Y) @ K, K the kernel (kh, kw, filters, c) read as
(kh * kw * filters, c). Its transpose is

    Y = col2im(x @ K^T) + b,

so the layer is one product (the fused dense op: x's rows (n * h * w, c) times K^T) followed by one
``scatter_windows`` (the backend's col2im, ``window_scatter``) over C's window table, then the bias and the
activation. Autograd differentiates both: the scatter's backward is the gather (im2col), the product's the
usual dense gradients. Every backend runs it with the primitives it has.

Output sizes are Keras's (``deconv_output_length``): for 'same' h * stride, for 'valid' h * stride +
max(span - stride, 0), span = (kernel - 1) * dilation + 1; with ``output_padding`` (each < stride),
(h - 1) * stride + span - 2 * pad + output_padding with pad = span // 2 for 'same' and 0 for 'valid'.
C's 'same' padding puts (total // 2) before, the rest after, so the result is TensorFlow's and Keras's
conv_transpose (tests/test_conv_transpose.py checks it against Keras 3.15's outputs).
"""
from . import arguments
from . import functional as F
from .conv_layers import Conv2D, _listed, window_positions
from .layer_base import Layer, batch_shape
from .layer_functional import index_constant, scatter_windows

__all__ = ["Conv2DTranspose", "Conv1DTranspose", "transposed_length"]


def transposed_length(size, kernel, stride, dilation, padding, output_padding=None):
    """Keras's output length of one spatial axis of a transposed convolution (see the module docstring)."""
    span = (kernel - 1) * dilation + 1
    if output_padding is None:
        return size * stride if padding == "same" else size * stride + max(span - stride, 0)
    pad = span // 2 if padding == "same" else 0
    return (size - 1) * stride + span - 2 * pad + output_padding


class Conv2DTranspose(Conv2D):
    """The transposed 2-D convolution over (batch, height, width, channels): a = activation(col2im(x @ K^T) + b).

    Keras's arguments and defaults; the kernel is (kh, kw, filters, in_channels), as Keras's.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        self.output_padding = None
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, 1, activation, use_bias,
                         kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         kernel_constraint, bias_constraint, **kwargs)
        owner = self._owner()
        if output_padding is not None:
            self.output_padding = tuple(arguments.integer(owner, "output_padding", value, minimum=0)
                                        for value in _listed_values(owner, output_padding, self.rank))
            if any(pad >= stride for pad, stride in zip(self.output_padding, self.strides)):
                raise ValueError(f"{owner}: output_padding must be smaller than strides, got output_padding="
                                 f"{self.output_padding}, strides={self.strides}")

    def build(self, input_shape):
        """Create the kernel (*kernel_size, filters, in) and the bias (filters,)."""
        input_shape = batch_shape(self._owner(), "input_shape", input_shape)
        self._check_rank(input_shape)
        if input_shape[-1] is None:
            raise ValueError(f"{self._owner()} needs a known number of input channels, got {tuple(input_shape)}")
        self._add_kernel_and_bias((*self.kernel_size, self.filters, input_shape[-1]), self.filters)
        Layer.build(self, input_shape)

    def _output_sizes(self, spatial):
        """The output's spatial sizes for input sizes ``spatial`` (None stays None)."""
        kernel, strides, dilation = self._geometry()
        padding = self.output_padding or (None,) * self.rank
        return [None if size is None else transposed_length(size, kernel[a], strides[a], dilation[a], self.padding,
                                                            padding[a])
                for a, size in enumerate(spatial[:self.rank])]

    def compute_output_shape(self, input_shape):
        """(batch, *output spatial sizes, filters)."""
        input_shape = tuple(input_shape)
        return (input_shape[0], *self._output_sizes(self._spatial(input_shape)), self.filters)

    def call(self, x, training=False, return_logits=False):
        """activation(col2im(x @ K^T) + b) (see the module docstring)."""
        self._check_rank(x.shape, self.kernel.shape[-1])
        if x.dtype != self.kernel.dtype:
            x = x.astype(self.kernel.dtype)
        n, channels = x.shape[0], x.shape[-1]
        height, width = self._spatial(x.shape)
        sizes = self._output_sizes((height, width))
        out_height, out_width = (sizes[0], 1) if self.rank == 1 else sizes
        geometry = (out_height, out_width, *self._geometry(), self.padding)
        rows, columns, positions, _ = window_positions(*geometry)
        if (rows, columns) != (height, width):
            raise ValueError(f"{self._owner()}: output_padding {self.output_padding} with padding "
                             f"{self.padding!r} gives an output of {sizes}, which a convolution does not map back "
                             f"to the input's {(height, width)[:self.rank]} (Keras's conv_transpose refuses it too)")
        index = index_constant(x, ("windows", *geometry), lambda: positions)
        kernel = self.kernel.reshape(-1, channels)           # rows (a, b, filter) of K, one column per channel
        patches = F.matmul(x.reshape(n * height * width, channels), kernel.T).reshape(n, -1, self.filters)
        out = scatter_windows(patches, index, out_height * out_width)
        out = out.reshape(n * out_height * out_width, self.filters)
        if self.bias is not None:
            out = out + self.bias
        if not return_logits:
            out = self.activation(out)
        return out.reshape(n, *sizes, self.filters)

    def get_config(self):
        """Keras 3's config."""
        config = super().get_config()
        config.pop("groups")
        return {**config, "output_padding": None if self.output_padding is None else list(self.output_padding)}

    @classmethod
    def _config_arguments(cls, config):
        arguments_ = super()._config_arguments(config)
        arguments_.pop("groups")
        padding = config.get("output_padding")
        return {**arguments_, "output_padding": None if padding is None else _listed(padding)}


def _listed_values(owner, value, rank):
    """An int or ``rank`` ints, as a tuple."""
    if isinstance(value, (list, tuple)):
        if len(value) != rank:
            raise TypeError(f"{owner}: output_padding must be an int or {rank} ints, got {value!r}")
        return tuple(value)
    return (value,) * rank


class Conv1DTranspose(Conv2DTranspose):
    """The transposed 1-D convolution over (batch, steps, channels); the kernel is (k, filters, in_channels)."""

    rank = 1
