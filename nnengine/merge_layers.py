"""Keras's merge layers: they take a LIST of tensors and make one, so a functional model can branch and join.

    merged = keras.layers.Add()([a, b])                        # or keras.layers.add([a, b])

* ``Add``, ``Subtract`` (exactly two), ``Multiply``, ``Average``, ``Maximum``, ``Minimum``: elementwise,
  folded left to right as Keras 3 folds them (Average divides the sum by the count). Inputs have one rank;
  a size-1 axis broadcasts against the others' size, as in Keras;
* ``Concatenate(axis=-1)``: the inputs joined along ``axis`` (their other sizes must agree);
* ``Dot(axes, normalize=False)``: per sample, the dot product of the two inputs along ``axes`` (one int for
  both, or one per input); ``normalize`` L2-normalizes each along its axis first (cosine similarity).
  Inputs of rank 2 or 3: (n, d)·(n, d) -> (n, 1); (n, m, k)·(n, k, p) with axes (2, 1) -> (n, m, p).

Each is a few differentiable core ops, so autograd, the compiled step and every device work as for any op.
"""
from . import arguments
from . import functional as F
from .layer_base import Layer
from .masks import concatenated_mask, merged_mask
from .symbolic import call_symbolic, is_symbolic
from .tensor import Tensor

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot"]

#: Keras's epsilon: Dot(normalize=True) divides by max(norm, 1e-7), never by zero
NORM_EPSILON = 1e-7


class Merge(Layer):
    """The base of the merge layers: called on a list of tensors (symbolic or values); subclasses implement
    ``merge(tensors)`` and may override ``compute_output_shape``, which also checks the shapes."""

    #: called on a list (symbolic.call_symbolic checks it)
    takes_list = True
    #: how many inputs the layer takes: (least, most), None for no bound
    input_count = (1, None)

    def __call__(self, inputs, training=False):
        if is_symbolic(inputs):
            return call_symbolic(self, inputs)
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(f"layer {self.name!r} ({type(self).__name__}) must be called on a list of tensors, got "
                            f"{type(inputs).__name__}")
        tensors = [item if isinstance(item, Tensor) else Tensor(item, dtype=self.dtype) for item in inputs]
        if not self.built:
            self.build_once([(None, *tensor.shape[1:]) for tensor in tensors])
        return self.invoke(tensors, training)

    def build(self, input_shape):
        """Check the list of input shapes (each (batch, ...)) by computing the output's; merge layers have no
        weights."""
        self.compute_output_shape(input_shape)

    def _shapes(self, input_shape):
        """``input_shape`` as a list of shape tuples, its length checked."""
        owner = f"{type(self).__name__} {self.name!r}"
        if not isinstance(input_shape, (list, tuple)) or not input_shape or \
                not all(isinstance(shape, (list, tuple)) for shape in input_shape):
            raise ValueError(f"{owner} must be called on a list of tensors, got input shape {input_shape!r}")
        least, most = self.input_count
        if len(input_shape) < least or (most is not None and len(input_shape) > most):
            count = f"exactly {least}" if least == most else f"at least {least}"
            raise ValueError(f"{owner} must be called on {count} inputs, got {len(input_shape)}")
        return [tuple(shape) for shape in input_shape]

    def _broadcast_shape(self, shapes):
        """Elementwise merges: one rank, and per axis equal sizes or 1 (which broadcasts to the others)."""
        owner = f"{type(self).__name__} {self.name!r}"
        if len({len(shape) for shape in shapes}) > 1:
            raise ValueError(f"{owner}: its inputs must have one rank, got shapes {shapes}")
        batch_sizes = {shape[0] for shape in shapes} - {None}
        if len(batch_sizes) > 1:
            raise ValueError(f"{owner}: its inputs have different batch sizes, got shapes {shapes}")
        result = [batch_sizes.pop() if batch_sizes else None]
        for sizes in list(zip(*shapes))[1:]:
            known = {size for size in sizes if size is not None} - {1}
            if len(known) > 1:
                raise ValueError(f"{owner}: inputs of shapes {shapes} cannot be merged elementwise (sizes must "
                                 "agree, or be 1)")
            result.append(None if None in sizes else known.pop() if known else 1)
        return tuple(result)

    def compute_output_shape(self, input_shape):
        """The inputs' common (broadcast) shape."""
        return self._broadcast_shape(self._shapes(input_shape))

    def call(self, inputs, training=False):
        """The merged tensor of the list ``inputs``."""
        return self.merge(list(inputs))

    def compute_mask(self, inputs, mask=None):
        """Keras's mask of an elementwise merge: the OR of the inputs' masks when each has one, else None."""
        return merged_mask(mask)

    def merge(self, tensors):
        """The merge of ``tensors`` (a list of at least ``input_count[0]`` Tensors)."""
        raise NotImplementedError(f"{type(self).__name__} must define merge(tensors)")


def _fold(function, tensors):
    """function(...function(function(t0, t1), t2)..., tn): Keras's left-to-right fold."""
    result = tensors[0]
    for tensor in tensors[1:]:
        result = function(result, tensor)
    return result


class Add(Merge):
    """The elementwise sum of its inputs."""

    def merge(self, tensors):
        """t0 + t1 + ... (left to right)."""
        return _fold(F.add, tensors)


class Subtract(Merge):
    """The elementwise difference of its two inputs: inputs[0] - inputs[1]."""

    input_count = (2, 2)

    def merge(self, tensors):
        """t0 - t1."""
        return F.sub(tensors[0], tensors[1])


class Multiply(Merge):
    """The elementwise product of its inputs."""

    def merge(self, tensors):
        """t0 * t1 * ... (left to right)."""
        return _fold(F.mul, tensors)


class Average(Merge):
    """The elementwise mean of its inputs: (t0 + t1 + ...) / n, as Keras computes it."""

    def merge(self, tensors):
        """The sum, divided by the number of inputs."""
        return _fold(F.add, tensors) / len(tensors)


class Maximum(Merge):
    """The elementwise maximum of its inputs."""

    def merge(self, tensors):
        """max(t0, t1, ...)."""
        return _fold(F.maximum, tensors)


class Minimum(Merge):
    """The elementwise minimum of its inputs."""

    def merge(self, tensors):
        """min(t0, t1, ...)."""
        return _fold(F.minimum, tensors)


class Concatenate(Merge):
    """Its inputs joined along ``axis`` (default -1, the features); their other sizes must agree."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = arguments.integer(f"Concatenate {self.name!r}", "axis", axis)

    def _axis(self, rank):
        owner = f"Concatenate {self.name!r}"
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(f"{owner}: axis {self.axis} is not a sample axis of inputs of rank {rank}")
        return self.axis % rank

    def compute_output_shape(self, input_shape):
        """The shared shape, the axis's sizes summed (None when one is unknown)."""
        shapes = self._shapes(input_shape)
        if len({len(shape) for shape in shapes}) > 1:
            raise ValueError(f"Concatenate {self.name!r}: its inputs must have one rank, got shapes {shapes}")
        axis = self._axis(len(shapes[0]))
        result = list(shapes[0])
        for position in range(1, len(result)):
            sizes = [shape[position] for shape in shapes]
            if position == axis:
                result[position] = None if None in sizes else sum(sizes)
            elif len(set(sizes) - {None}) > 1:
                raise ValueError(f"Concatenate {self.name!r} needs inputs whose shapes agree except on the "
                                 f"concatenation axis {self.axis}, got shapes {shapes}")
        return tuple(result)

    def merge(self, tensors):
        """The tensors joined along the axis."""
        return F.concatenate(tensors, axis=self._axis(tensors[0].ndim))

    def compute_mask(self, inputs, mask=None):
        """Keras's: the masks OR-ed along the last axis, joined along another (an input without one is kept)."""
        return concatenated_mask(list(inputs), mask, self._axis(inputs[0].ndim))

    def get_config(self):
        """Keras 3's Concatenate config."""
        return {**super().get_config(), "axis": self.axis}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "axis": config.get("axis", -1)}


class Dot(Merge):
    """Per sample, the dot product of two inputs along ``axes``; ``normalize`` makes it the cosine similarity.

    ``axes``: one int for both inputs, or a pair (one per input), counted with the batch axis as 0.
    """

    input_count = (2, 2)

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        owner = f"Dot {self.name!r}"
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2:
                raise ValueError(f"{owner}: axes must be an int or a pair of ints, got {axes!r}")
            self.axes = tuple(arguments.integer(owner, "axes", axis) for axis in axes)
        else:
            self.axes = arguments.integer(owner, "axes", axes)
        self.normalize = arguments.boolean(owner, "normalize", normalize)

    def compute_mask(self, inputs, mask=None):
        """None: Keras's Dot takes masks in and gives none out."""
        return None

    def _resolved_axes(self, ranks):
        owner = f"Dot {self.name!r}"
        pair = self.axes if isinstance(self.axes, tuple) else (self.axes, self.axes)
        resolved = []
        for axis, rank in zip(pair, ranks):
            if rank not in (2, 3):
                raise ValueError(f"{owner}: nnengine's Dot takes inputs of rank 2 or 3, got rank {rank}")
            if not -rank <= axis < rank or axis % rank == 0:
                raise ValueError(f"{owner}: axis {axis} is not a sample axis of an input of rank {rank}")
            resolved.append(axis % rank)
        return resolved

    def compute_output_shape(self, input_shape):
        """Each input's shape without its axis, the second's batch axis dropped; (batch, 1) when nothing is left."""
        first, second = self._shapes(input_shape)
        axis1, axis2 = self._resolved_axes((len(first), len(second)))
        if first[axis1] is not None and second[axis2] is not None and first[axis1] != second[axis2]:
            raise ValueError(f"Dot {self.name!r}: the inputs' sizes along axes {(axis1, axis2)} differ: shapes "
                             f"{first} and {second}")
        shape = [size for i, size in enumerate(first) if i != axis1] + \
            [size for i, size in enumerate(second) if i not in (0, axis2)]
        return tuple(shape + [1] if len(shape) == 1 else shape)

    def merge(self, tensors):
        """Both inputs as (n, rows, k) and (n, k, columns), one batched product, reshaped to the output shape."""
        x, y = tensors
        axis1, axis2 = self._resolved_axes((x.ndim, y.ndim))
        if self.normalize:
            x, y = _l2_normalized(x, axis1), _l2_normalized(y, axis2)
        left = x.reshape((x.shape[0], 1, x.shape[1])) if x.ndim == 2 else \
            (x if axis1 == 2 else F.transpose(x, (0, 2, 1)))
        right = y.reshape((y.shape[0], y.shape[1], 1)) if y.ndim == 2 else \
            (y if axis2 == 1 else F.transpose(y, (0, 2, 1)))
        product = F.matmul(left, right)
        shape = self.compute_output_shape([(None, *x.shape[1:]), (None, *y.shape[1:])])
        return product.reshape((x.shape[0], *shape[1:]))

    def get_config(self):
        """Keras 3's Dot config."""
        return {**super().get_config(), "axes": list(self.axes) if isinstance(self.axes, tuple) else self.axes,
                "normalize": self.normalize}

    @classmethod
    def _config_arguments(cls, config):
        return {**super()._config_arguments(config), "axes": config["axes"],
                "normalize": config.get("normalize", False)}


def _l2_normalized(x, axis):
    """x / max(||x||, epsilon) along ``axis``: x * 1/sqrt(max(sum(x^2), epsilon^2)), finite where x is 0."""
    square_sum = F.sum(x * x, axis=axis, keepdims=True)
    return x / F.sqrt(F.maximum(square_sum, NORM_EPSILON ** 2))


def _functional_form(layer_class):
    def merge(inputs, **kwargs):
        return layer_class(**kwargs)(inputs)
    merge.__name__ = layer_class.__name__.lower()
    merge.__doc__ = f"``{layer_class.__name__}(**kwargs)(inputs)``: Keras's functional form of the layer."
    return merge


add, subtract, multiply, average, maximum, minimum = (
    _functional_form(cls) for cls in (Add, Subtract, Multiply, Average, Maximum, Minimum))


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis, **kwargs)(inputs)``: Keras's functional form of the layer."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes, normalize=False, **kwargs):
    """``Dot(axes, normalize, **kwargs)(inputs)``: Keras's functional form of the layer."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
