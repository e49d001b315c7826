"""Keras's EinsumDense: a dense layer whose product is an einsum equation, as Transformer code writes its
projections (``EinsumDense("abc,cde->abde", output_shape=(None, heads, size))``).

The equation has one of Keras's three forms: ``ab,bc->ac`` (every axis named), ``...b,bc->...c`` (the leading
axes elided) or ``ab...,bc->ac...`` (the trailing ones). ``output_shape`` gives the output's sizes after the
batch axis (None: the input's size there). The kernel's shape follows from them, Keras's way: each kernel letter
takes the size of the output's axis of that letter, else the input's. ``bias_axes`` names the output letters
the bias varies along; the bias spans from the first of them to the end of the output (size 1 elsewhere), so it
broadcasts. The output is activation(einsum(equation, x, kernel) + bias), computed by ``einsum.py`` (transposes
and one batched matmul), so autograd, every device and the compiled step apply.

The kernel's fans for the variance-scaling initializers (Glorot, He, LeCun) are those of its input and output
letters (Keras 3.15's input_axes and output_axes), not of its last two axes.
"""
import math
import re

from . import activations, arguments, constraints, initializers, regularizers
from .einsum import einsum
from .layer_base import KernelAndBias, Layer, batch_shape

__all__ = ["EinsumDense"]

#: Keras's three forms of equation: (pattern, which side of the input "..." elides)
_FORMS = ((r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", None),
          (r"\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)", "left"),
          (r"([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]+)\.\.\.", "right"))


def _split(owner, equation):
    """(input letters, kernel letters, output letters, which side is elided or None)."""
    if isinstance(equation, str):
        for pattern, elided in _FORMS:
            found = re.fullmatch(pattern, equation.replace(" ", ""))
            if found:
                return (*found.groups(), elided)
    raise ValueError(f"{owner}: equation must be of the form 'ab,bc->ac', '...b,bc->...c' or 'ab...,bc->ac...', "
                     f"got {equation!r:.60}")


class _KernelFans(initializers.Initializer):
    """A variance-scaling initializer with the fans of the kernel's input and output letters."""

    def __init__(self, initializer, input_axes, output_axes):
        super().__init__(initializer.seed)
        self.initializer, self.input_axes, self.output_axes = initializer, input_axes, output_axes

    def sample(self, shape, rng):
        """The initializer's draws for fan_in = the input letters' sizes, fan_out = the output letters'."""
        fan_in = math.prod(shape[a] for a in self.input_axes)
        fan_out = math.prod(shape[a] for a in self.output_axes)
        return self.initializer.sample_with_fans(shape, rng, fan_in, fan_out)


class EinsumDense(KernelAndBias, Layer):
    """activation(einsum(equation, x, kernel) + bias) (see the module's docstring)."""

    def __init__(self, equation, output_shape, activation=None, bias_axes=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lora_rank=None, lora_alpha=None, gptq_unpacked_column_size=None,
                 quantization_config=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"EinsumDense {self.name!r}"
        self.equation = equation
        self._letters = _split(owner, equation)
        sizes = [output_shape] if isinstance(output_shape, int) or output_shape is None else list(output_shape)
        self.partial_output_shape = tuple(None if s is None else arguments.integer(owner, "output_shape", s, minimum=1)
                                          for s in sizes)
        self.bias_axes = bias_axes
        if bias_axes is not None and (not isinstance(bias_axes, str) or
                                      any(letter not in self._letters[2] for letter in bias_axes)):
            raise ValueError(f"{owner}: bias_axes must be letters of the output {self._letters[2]!r}, got "
                             f"{bias_axes!r}")
        if lora_rank or quantization_config is not None:
            raise ValueError(f"{owner}: LoRA and quantization are not supported")
        self._init_kernel_and_bias(owner, activation, bias_axes is not None, kernel_initializer, bias_initializer,
                                   kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint)
        if self.batch_input_shape is not None:
            self.build(self.batch_input_shape)

    def _owner(self):
        return f"EinsumDense {self.name!r}"

    def _shapes(self, input_shape):
        """(kernel shape, bias shape or None, full output shape, kernel input axes, kernel output axes): Keras's
        analysis of the equation for inputs of ``input_shape`` (the elided axes' sizes come from the input)."""
        owner = self._owner()
        inputs, weights, outputs, elided_side = self._letters
        input_shape = tuple(input_shape)
        elided = len(input_shape) - len(inputs)
        if elided < 0 or (elided_side is None and elided) or (elided_side == "left" and elided < 1):
            raise ValueError(f"{owner}: inputs of shape {input_shape} do not fit the equation {self.equation!r}")
        output_shape = [input_shape[0], *self.partial_output_shape]
        if elided_side == "left":                     # the batch and the other elided axes lead the output
            output_shape[1:1] = input_shape[1:elided]
            input_axis = {letter: i + elided for i, letter in enumerate(inputs)}
            output_axis = {letter: i + elided for i, letter in enumerate(outputs)}
        else:                                         # the elided axes (if any) end the output
            given, tail = output_shape[len(outputs):], list(input_shape[len(input_shape) - elided:])
            if given and (len(given) != elided or any(g not in (None, t) for g, t in zip(given, tail))):
                raise ValueError(f"{owner}: output_shape {self.partial_output_shape} does not fit the equation "
                                 f"{self.equation!r}: its elided axes must be None or the input's {tuple(tail)}")
            output_shape = output_shape[:len(outputs)] + tail      # Keras accepts them given (as None) or not
            input_axis = {letter: i for i, letter in enumerate(inputs)}
            output_axis = {letter: i for i, letter in enumerate(outputs)}
        if len(output_shape) != len(outputs) + elided:
            raise ValueError(f"{owner}: output_shape {self.partial_output_shape} does not fit the equation "
                             f"{self.equation!r} (the output {outputs!r} after the batch axis)")
        for letter, axis in output_axis.items():
            if letter not in input_axis:
                continue
            size = input_shape[input_axis[letter]]
            if output_shape[axis] is None:
                output_shape[axis] = size
            elif size is not None and size != output_shape[axis]:
                raise ValueError(f"{owner}: the input's axis {letter!r} has size {size}, the output_shape says "
                                 f"{output_shape[axis]}")
        kernel_shape, input_axes, output_axes = [], [], []
        for i, letter in enumerate(weights):
            if letter in output_axis:
                kernel_shape.append(output_shape[output_axis[letter]])
                output_axes.append(i)
            elif letter in input_axis:
                kernel_shape.append(input_shape[input_axis[letter]])
                input_axes.append(i)
            else:
                raise ValueError(f"{owner}: the kernel's axis {letter!r} is in neither the input nor the output")
        if any(size is None for size in kernel_shape):
            raise ValueError(f"{owner}: the kernel's shape {tuple(kernel_shape)} needs every size known")
        bias_shape = None
        if self.bias_axes is not None:
            first = min(outputs.index(letter) for letter in self.bias_axes)
            bias_shape = [output_shape[output_axis[letter]] if letter in self.bias_axes else 1
                          for letter in outputs[first:]]
            bias_shape += [1] * (elided if elided_side != "left" else 0)
        return (tuple(kernel_shape), None if bias_shape is None else tuple(bias_shape), tuple(output_shape),
                input_axes, output_axes)

    def build(self, input_shape):
        """The kernel (and the bias) of the shapes the equation gives for inputs of ``input_shape``."""
        input_shape = batch_shape(self._owner(), "input_shape", input_shape)
        kernel_shape, bias_shape, _, input_axes, output_axes = self._shapes(input_shape)
        initializer = self.kernel_initializer
        if isinstance(initializer, initializers.VarianceScaling):
            initializer = _KernelFans(initializer, input_axes, output_axes)
        self.kernel = self.add_weight(kernel_shape, initializer, name="kernel", regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        if bias_shape is not None:
            self.bias = self.add_weight(bias_shape, self.bias_initializer, name="bias",
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        """The full output shape (the batch axis, then output_shape with the input's sizes for its Nones)."""
        return self._shapes(tuple(input_shape))[2]

    def call(self, x, training=False):
        """activation(einsum(equation, x, kernel) + bias)."""
        expected = tuple(self.input_shape)
        if x.ndim != len(expected) or any(e is not None and e != s for e, s in zip(expected[1:], x.shape[1:])):
            raise ValueError(f"Input of layer {self.name!r} is incompatible with the layer: expected shape "
                             f"{expected}, but received input with shape {x.shape}")
        if x.dtype != self.kernel.dtype:
            x = x.astype(self.kernel.dtype)
        out = einsum(self.equation, x, self.kernel)
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def get_config(self):
        """Keras 3's config."""
        return {**super().get_config(), "output_shape": list(self.partial_output_shape), "equation": self.equation,
                "activation": activations.serialize(self.activation), "bias_axes": self.bias_axes,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint), "quantization_config": None}

    _CONFIG_KEYS = ("activation", "bias_axes", "kernel_initializer", "bias_initializer", "kernel_regularizer",
                    "bias_regularizer", "kernel_constraint", "bias_constraint", "lora_rank")

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "equation": config.get("equation"),
                "output_shape": config.get("output_shape"),
                **{key: config[key] for key in cls._CONFIG_KEYS if key in config}}
