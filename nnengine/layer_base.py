"""The base of every layer: ``Layer`` (naming, lazy building, weights, regularizers, config) and loading hooks.

layers.py holds the concrete layers; this module holds what they share, so that each file stays
readable. ``stored_weights`` lets saving.py build a model with its weights taken from a file. The module is
one piece (about 540 lines): ``Layer`` is the contract every layer and file format reads, and its helpers
are the few context variables it sets.
"""
import contextlib
import contextvars
import inspect
import math
import threading
import weakref
from abc import ABC, abstractmethod

import numpy as np

from . import activations, arguments, composite, constraints, initializers, masks, regularizers
from . import functional as F
from .autograd import no_grad
from .device import get_default_device
from .dtypes import is_float_dtype, to_supported_dtype
from .symbolic import call_symbolic, is_symbolic
from .tensor import Tensor
from .utils import snake_case, unique_name, zeros_sample

__all__ = ["Layer", "KernelAndBias", "BUILD_LOCK", "stored_weights", "weight_source", "batch_shape", "config_dtype",
           "checked_on_host", "is_checked_on_host", "remember_host_values", "host_values", "collecting_activity",
           "activity_penalties", "checked_indices", "check_index_values",
           "holding", "compatible_shapes"]


#: held while a layer or model builds lazily, so that threads calling it for the first time build it once
BUILD_LOCK = threading.RLock()

@contextlib.contextmanager
def holding(variable, value):
    """Inside the block, the context variable ``variable`` holds ``value``; after it, what it held before."""
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)


#: the ids of the input Tensors of the step running in this context whose values the host checked
_CHECKED_ON_HOST = contextvars.ContextVar("nnengine_checked_on_host", default=frozenset())


def checked_on_host(tensors):
    """Inside the block, ``tensors`` count as checked: the trainer checked their values on the host before it
    uploaded them (an Embedding's indices), so a layer need not read them back, and the step can be compiled."""
    return holding(_CHECKED_ON_HOST, frozenset(map(id, tensors)))


def is_checked_on_host(tensor):
    """Whether the running step's trainer checked ``tensor``'s values on the host (``checked_on_host``)."""
    return id(tensor) in _CHECKED_ON_HOST.get()


#: during a step: ({id(input tensor): its position}, the list that unchecked readers of those inputs join)
_STEP_INPUTS = contextvars.ContextVar("nnengine_step_inputs", default=None)


def noting_input_readers(tensors, found):
    """Inside the block, a layer that reads one of ``tensors`` (the step's inputs) back to the host to check its
    values (an Embedding inside a custom layer, which the trainer could not see) appends (the input's position,
    itself) to ``found``: the trainer then checks that input on the host before later steps (``note_host_read``)."""
    return holding(_STEP_INPUTS, ({id(tensor): position for position, tensor in enumerate(tensors)}, found))


def note_host_read(tensor, layer):
    """Tell the running step that ``layer`` reads ``tensor`` back to check it (see ``noting_input_readers``)."""
    state = _STEP_INPUTS.get()
    if state is not None and id(tensor) in state[0]:
        state[1].append((state[0][id(tensor)], layer))


def checked_indices(layer, x, device):
    """x as an int64 Tensor on ``device``, after ``layer.check_indices`` accepted every value (on the host).

    A batch the trainer checked on the host before uploading it (``checked_on_host``), or a Tensor made from
    host values (``host_values``), is not read back; any other input is read back and noted as read by
    ``layer`` (``note_host_read``: the trainer then checks that model input on the host, and the step compiles).
    The layers that take integer indices (Embedding, CategoryEncoding) share this.
    """
    known = host_values(x)
    if is_checked_on_host(x) or known is not None:
        if known is not None:
            layer.check_indices(known)
        return x if x.dtype == np.int64 else x.astype(np.int64)
    note_host_read(x, layer)
    values = x.numpy()
    layer.check_indices(values)
    if values.dtype == np.int64 and x.device == device:
        return x
    return Tensor(values.astype(np.int64), dtype=np.int64, device=device)


def check_index_values(owner, values, size):
    """ValueError (TypeError) naming ``owner`` unless every value of the numpy array ``values`` is an index in
    [0, size) (whole floats are indices, as Keras casts them)."""
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values)):
            raise ValueError(f"{owner}: inputs must be integer indices, got non-integer values such as "
                             f"{values[values != np.round(values)][:3].tolist()}")
    elif values.dtype.kind not in "iu":
        raise TypeError(f"{owner}: inputs must be integer indices, got dtype {values.dtype}")
    if values.size and (values.min() < 0 or values.max() >= size):
        raise ValueError(f"{owner}: indices must be in [0, {size}), got values in [{int(values.min())}, "
                         f"{int(values.max())}]")


#: id(tensor) -> (a weak reference to it, the host array it was made from), for tensors made from host values
#: that nothing writes into (keras.ops.arange): a layer may check those values without reading the device
_HOST_VALUES = {}


def remember_host_values(tensor, values):
    """Note that ``tensor`` holds ``values`` (a host array); forgotten when the tensor is freed. Returns it."""
    key = id(tensor)
    _HOST_VALUES[key] = (weakref.ref(tensor, lambda _: _HOST_VALUES.pop(key, None)), values)
    return tensor


def host_values(tensor):
    """The host array ``tensor`` was made from (``remember_host_values``), or None."""
    entry = _HOST_VALUES.get(id(tensor))
    return entry[1] if entry is not None and entry[0]() is tensor else None


#: the list that collects the activity regularizers' penalties of the layers a subclassed model's call runs
_ACTIVITY_PENALTIES = contextvars.ContextVar("nnengine_activity_penalties", default=None)


def collecting_activity(penalties):
    """Inside the block, each layer called (``layer(x)``) with an activity regularizer appends its penalty to
    ``penalties`` (a list; None collects nothing): a subclassed model's ``call`` runs its layers itself, so the
    step hears of their penalties this way, as Keras's layers add them to the model's losses."""
    return holding(_ACTIVITY_PENALTIES, penalties)


def activity_penalties():
    """The list of the ``collecting_activity`` block running in this context, or None."""
    return _ACTIVITY_PENALTIES.get()


_WEIGHT_SOURCE = contextvars.ContextVar("nnengine_weight_source", default=None)


def stored_weights(source):
    """Inside the block, layers that build take each new weight from ``source(layer, name, shape)``.

    Loading a file uses this: the source compares the shape a layer asks for with the stored one
    before reading or allocating anything, and the layers skip their random initialization.
    """
    return holding(_WEIGHT_SOURCE, source)


def weight_source():
    """The source ``stored_weights`` put in place, or None (a wrapper layer hands it its sublayers' weights)."""
    return _WEIGHT_SOURCE.get()


def batch_shape(owner, name, shape):
    """A batch shape: its first axis a positive int or None (the batch), the rest positive ints or None."""
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list)) or not shape:
        raise TypeError(f"{owner}: {name} must be a tuple (batch, *sizes), got {shape!r}")
    return arguments.shape(owner, name, shape)



class Layer(ABC):
    """Base class of layers: naming, lazy building, weights and Keras's config round trip.

    Subclasses implement ``build(input_shape)`` (create weights with ``add_weight``),
    ``call(x, training)`` and ``compute_output_shape(input_shape)``.
    """

    #: whether the layer may hold an integer dtype (only inputs: layers with weights compute in floats)
    accepts_integer_dtype = False
    #: whether the layer passes Keras's mask on (``compute_mask``); a layer that defines compute_mask does (masks.py)
    supports_masking = False

    def __init__(self, name=None, dtype=None, trainable=True, input_shape=None, input_dim=None,
                 batch_input_shape=None, activity_regularizer=None):
        self.name = arguments.text(type(self).__name__, "name", name, optional=True) or \
            unique_name(snake_case(type(self).__name__))
        self.dtype = to_supported_dtype(config_dtype(dtype) or "float32").name    # a name or Keras's DTypePolicy
        if not is_float_dtype(self.dtype) and not (self.accepts_integer_dtype and self.dtype in ("int32", "int64")):
            allowed = "float32, float64, int32 or int64" if self.accepts_integer_dtype else "float32 or float64"
            raise TypeError(f"layer {self.name!r}: dtype must be {allowed}, got {self.dtype}")
        self.trainable = arguments.boolean(f"layer {self.name!r}", "trainable", trainable)
        self.built = False
        self.input_shape = None
        self._weights = []
        self._weight_names = []
        self._weight_regularizers = []
        self._weight_constraints = []
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.device = get_default_device()
        self.batch_input_shape = None
        owner = f"layer {self.name!r}"
        if input_dim is not None:
            input_shape = (arguments.integer(owner, "input_dim", input_dim, minimum=1),)
        if input_shape is not None:
            batch_input_shape = (None, *arguments.shape(owner, "input_shape", input_shape))
        if batch_input_shape is not None:
            self.batch_input_shape = batch_shape(owner, "batch_input_shape", batch_input_shape)

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        if not type(self).__module__.startswith("nnengine."):     # a custom layer tracks its parts (composite.py)
            composite.track(self, name, value)

    def _entries(self, trainable_only=False):
        """(weight, name) of every weight: the layer's own, then its parts' (a custom layer made of layers)."""
        if not self.__dict__.get("_tracked"):
            pairs = list(zip(self._weights, self._weight_names))
            return [(w, n) for w, n in pairs if w.requires_grad] if trainable_only else pairs
        return composite.weights_within(self, trainable_only)

    def _inner_layers(self, trainable_only=False):
        """The layers inside this one (its parts', for a custom layer made of layers), itself first; with
        ``trainable_only``, none below a part whose ``trainable`` is False."""
        return composite.layers_within(self, trainable_only) if self.__dict__.get("_tracked") else [self]

    # -- weights ---------------------------------------------------------------------------
    def add_weight(self, shape=None, initializer="glorot_uniform", dtype=None, trainable=True, regularizer=None,
                   constraint=None, name=None):
        """Create a weight Tensor of ``shape`` from ``initializer`` (or a file being loaded), Keras 3's signature.

        ``name`` defaults to 'variable', 'variable_1', ... within the layer. A ``regularizer`` adds its
        penalty of this weight to the training loss (``regularization_losses``). ``dtype`` must be the
        layer's own (nnengine keeps one dtype per layer). A ``constraint`` projects the weight after each
        optimizer step of fit (``apply_constraints``).
        """
        owner = f"layer {self.name!r}: add_weight"
        if dtype is not None and to_supported_dtype(config_dtype(dtype)).name != self.dtype:
            raise ValueError(f"{owner}: dtype {dtype!r} differs from the layer's {self.dtype}")
        shape = () if shape is None else arguments.shape(owner, "shape", shape, allow_none=False)
        if name is None:
            taken = sum(1 for existing in self._weight_names if existing.startswith("variable"))
            name = "variable" if taken == 0 else f"variable_{taken}"
        name = arguments.text(owner, "name", name)
        if name in self._weight_names:
            raise ValueError(f"{owner}: the layer already has a weight named {name!r}")
        source = _WEIGHT_SOURCE.get()
        values = initializers.get(initializer)(shape, self.dtype) if source is None else source(self, name, shape)
        weight = Tensor(values, dtype=self.dtype, device=self.device, requires_grad=trainable)
        self._weights.append(weight)
        self._weight_names.append(name)
        self._weight_regularizers.append(regularizers.get(regularizer))
        self._weight_constraints.append(constraints.get(constraint))
        return weight

    def apply_constraints(self):
        """Project each constrained weight in place (after an optimizer step), as Keras's optimizer does."""
        for layer in self._inner_layers():
            for weight, constraint in zip(layer._weights, layer._weight_constraints):
                if constraint is not None:
                    projected = constraint(weight)
                    weight._backend.assign(weight._data, projected._data)

    def regularization_losses(self):
        """The penalties of the regularized trainable weights (0-d Tensors), as Keras adds them to the loss."""
        if not self.trainable:
            return []
        return [regularizer(weight) for layer in self._inner_layers(trainable_only=True)
                for weight, regularizer in zip(layer._weights, layer._weight_regularizers)
                if regularizer is not None and weight.requires_grad]

    def activity_loss(self, output):
        """The activity regularizer's penalty of this layer's ``output``, divided by the batch size, or None."""
        if self.activity_regularizer is None:
            return None
        return self.activity_regularizer(output) * (1.0 / max(1, output.shape[0]))

    @property
    def output(self):
        """The KerasTensor this layer's first call on symbolic inputs gave (a functional model's layer, or a built
        Sequential's): what ``keras.Model(model.input, model.get_layer("hidden").output)`` reads to make a feature
        extractor. A layer called more than once gives its first call's, as in Keras."""
        return self._first_call("output").output

    @property
    def input(self):
        """The KerasTensor (or list of them, for a merge layer or named inputs) of this layer's first symbolic
        call."""
        node = self._first_call("input")
        return list(node.inputs) if node.as_list or node.names else node.inputs[0]

    def _first_call(self, what):
        owner = self.__dict__.get("_sequential")
        if not self.__dict__.get("_symbolic_nodes") and owner is not None and owner() is not None:
            owner().symbolic_stack()            # a built Sequential's layer: its stack is made when first asked for
        calls = [node for node in self.__dict__.get("_symbolic_nodes", []) if node.inputs or what == "output"]
        if not calls:
            raise AttributeError(f"layer {self.name!r} has never been called on symbolic inputs, so it has no "
                                 f"{what}: call it on a keras.Input, or put it in a model with an input shape")
        return calls[0]

    @property
    def weights(self):
        """Every weight Tensor, in Keras's order (kernel before bias; a custom layer's own, then its parts')."""
        return [w for w, _ in self._entries()]

    @property
    def trainable_weights(self):
        """The weights an optimizer updates (all of them unless ``trainable`` is False)."""
        return [w for w, _ in self._entries(trainable_only=True)] if self.trainable else []

    @property
    def non_trainable_weights(self):
        """The weights an optimizer leaves alone."""
        trainable = {id(w) for w in self.trainable_weights}       # by identity: == on tensors is elementwise
        return [w for w in self.weights if id(w) not in trainable]

    @property
    def weight_names(self):
        """Keras's short names of the weights ('kernel', 'bias'; a part's '<part name>/kernel')."""
        return [n for _, n in self._entries()]

    def get_weights(self):
        """The weights as numpy arrays, in Keras's order."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """Overwrite the weights from numpy arrays of exactly the current shapes."""
        if not isinstance(weights, (list, tuple)):
            raise TypeError(f"layer {self.name!r}: set_weights expects a list of arrays, got {type(weights).__name__}")
        weights, entries = list(weights), self._entries()
        if len(weights) != len(entries):
            raise ValueError(f"layer {self.name!r} expects {len(entries)} weight arrays, "
                             f"got {len(weights)}")
        for (current, name), new in zip(entries, weights):
            new = np.asarray(new)
            if new.shape != current.shape:
                raise ValueError(f"layer {self.name!r}: weight {name!r} has shape {current.shape}, "
                                 f"got an array of shape {new.shape}")
        for (current, _), new in zip(entries, weights):
            current.assign_(new)

    def count_params(self):
        """The number of scalars in the weights."""
        return sum(math.prod(w.shape) for w in self.weights)

    def to(self, device):
        """Move the weights (a custom layer's parts' too) to ``device`` in place; return self."""
        for part in composite.tracked_parts(self):
            part.to(device)
        for weight in self._weights:
            weight.move_(device)
        self.device = device
        return self

    # -- building and calling ------------------------------------------------------------------
    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        self.input_shape = batch_shape(f"layer {self.name!r}", "input_shape", input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        """The output shape for ``input_shape``.

        nnengine's layers say it; for a custom layer that does not, the built layer runs once on a zero
        batch of one sample and the shape is read off (Keras traces the layer symbolically instead).
        """
        input_shape = tuple(input_shape)
        if type(self).__module__.startswith("nnengine.") or not self.built or \
                any(d is None for d in input_shape[1:]):
            return input_shape
        traced = self.__dict__.setdefault("_traced_output_shapes", {})    # fit asks once per batch: trace once
        if input_shape[1:] not in traced:
            with no_grad():
                probe = Tensor(np.zeros((1, *input_shape[1:])), dtype=self.dtype, device=self.device)
                traced[input_shape[1:]] = tuple(self.invoke(probe, False).shape[1:])
        return (input_shape[0], *traced[input_shape[1:]])

    @abstractmethod
    def call(self, x, training=False):
        """The computation on a Tensor ``x``; ``training`` switches dropout-like behaviour."""

    def capture_blocker(self, training):
        """Why a compiled step cannot replay this layer, or None (the default: it can).

        A layer whose call uploads host data that changes from step to step (new random numbers, for
        one) must say so here: a captured plan would replay the first step's data forever. A custom layer made
        of layers gives its parts' first reason.
        """
        for layer in self._inner_layers()[1:]:
            reason = layer.capture_blocker(training)
            if reason:
                return reason
        return None

    def draws_dropout_masks(self, training):
        """Whether a step of this layer draws inverted-dropout masks on the host (``dropout_masks.dropout_mask``),
        which the trainer then draws before each step and feeds to its compiled plan. The default: whether one
        of the layers it is made of does."""
        return any(layer.draws_dropout_masks(training) for layer in self._inner_layers()[1:])

    def __call__(self, x, training=False, mask=None):
        if is_symbolic(x):                # Keras's Functional API: see symbolic.py
            if mask is not None:
                raise TypeError(f"layer {self.name!r}: a functional model does not record mask=; let a layer make "
                                "the mask (Embedding(mask_zero=True) or Masking) and the layers pass it on")
            return call_symbolic(self, x)
        if isinstance(x, Layer):
            raise TypeError(f"layer {self.name!r} was called on layer {x.name!r}: call it on an Input(shape=...), "
                            "on what calling layers on one gave, or on data")
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x), dtype=self.dtype, device=self.device)
        if not self.built:
            self.build_for((None, *x.shape[1:]))
        out = self.invoke(x, training, mask)
        penalties = _ACTIVITY_PENALTIES.get()
        if penalties is not None and self.activity_regularizer is not None:
            penalties.append(self.activity_loss(out))
        return out

    def build_for(self, input_shape):
        """Build the layer for inputs of ``input_shape`` (once, whichever thread asks first); a built layer checks
        that it was built for such inputs (a layer called again shares its weights, so the shapes must agree)."""
        if not self.built:
            with BUILD_LOCK:
                if not self.built:
                    self.build_once(input_shape)
            return
        if self.input_shape is not None and not self.accepts(input_shape):
            raise ValueError(f"layer {self.name!r} was built for inputs {_shown(self.input_shape)} and cannot be "
                             f"called on inputs of shape {_shown(input_shape)}")

    def accepts(self, input_shape):
        """Whether this built layer can be called again (sharing its weights) on inputs of ``input_shape``: by
        default when the shape fits the one it was built for (``compatible_shapes``); a layer whose weights fix
        fewer axes (Embedding: none, Dense: the last) accepts more, as Keras does."""
        return compatible_shapes(self.input_shape, input_shape)

    def build_once(self, input_shape):
        """``build(input_shape)``, then mark the layer built (a custom ``build`` need not call super().build)."""
        input_shape = input_shape if isinstance(input_shape, dict) else tuple(input_shape)   # dict: named inputs
        self.build(input_shape)
        if self.input_shape is None:
            self.input_shape = input_shape
        self.built = True
        source = weight_source()
        if source is not None and self.__dict__.get("_tracked"):
            self._load_parts(source, input_shape)

    def _load_parts(self, source, input_shape):
        """While a file loads: build a custom layer's parts by a call on a probe batch of zeros (they take fresh
        weights then, since they are asked for in the order of the call, not of the file), then read every
        weight after the layer's own from ``source``, in Keras's order."""
        own = len(self._weights)
        with stored_weights(None), no_grad():
            self.invoke(Tensor(zeros_sample(input_shape, self.dtype), device=self.device), False)
        for weight, name in self._entries()[own:]:
            weight.assign_(source(self, name, weight.shape))

    def invoke(self, x, training=False, mask=None):
        """``call(x, training=..., mask=...)`` as the call takes them (a custom layer's call may take neither),
        then the output's Keras mask (masks.py). The mask is the one ``x`` carries, unless ``mask`` is given."""
        takes_training = type(self).__dict__.get("_call_takes_training")
        if takes_training is None:
            parameters = inspect.signature(self.call).parameters
            takes_training = "training" in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())
            type(self)._call_takes_training = takes_training
        mask = masks.mask_of(x) if mask is None else mask
        extra = masks.call_arguments(self, mask)
        out = self.call(x, training=training, **extra) if takes_training else self.call(x, **extra)
        return self.pass_mask(x, out, mask)

    def pass_mask(self, x, out, mask):
        """``out`` with its Keras mask set from ``compute_mask(x, mask)`` when the layer supports masking."""
        masks.propagate(self, x, out, mask, self.supports_masking or type(self).compute_mask is not Layer.compute_mask)
        return out

    def compute_mask(self, inputs, mask=None):
        """Keras's mask of the output, used when the layer supports masking: the input's, unchanged."""
        return mask

    # -- config ------------------------------------------------------------------------------
    def get_config(self):
        """Keras 3's config dict of this layer (what ``model.save`` writes)."""
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": self.dtype},
                            "registered_name": None}}
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuild a layer from its config dict (Keras 3 or tf.keras 2.x).

        nnengine's layers read the keys they know; a custom layer gets the whole config as keyword
        arguments, as Keras's default ``from_config`` passes it (with the dtype policy and batch shape
        translated).
        """
        if cls.__module__.startswith("nnengine."):
            return cls(**cls._config_arguments(config))
        base = cls._config_arguments(config)
        own = {k: v for k, v in config.items() if k not in ("name", "trainable", "dtype", "batch_shape",
                                                            "batch_input_shape")}
        return cls(**own, **base)

    @classmethod
    def _config_arguments(cls, config):
        """The constructor arguments in a config, ignoring keys nnengine does not use."""
        arguments = {"name": config.get("name"), "trainable": config.get("trainable", True),
                     "dtype": config_dtype(config.get("dtype"))}
        if config.get("batch_input_shape") is not None:           # tf.keras 2.x
            arguments["batch_input_shape"] = tuple(config["batch_input_shape"])
        if config.get("batch_shape") is not None:
            arguments["batch_input_shape"] = tuple(config["batch_shape"])
        return arguments

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}, built={self.built}>"


def _shown(shape):
    return shape if isinstance(shape, dict) else tuple(shape)


def compatible_shapes(built_for, shape):
    """Whether inputs of ``shape`` fit a layer built for ``built_for`` (shapes, lists of shapes for a merge
    layer, or {argument name: shape} for named inputs such as attention's query and value): as many inputs, the
    same ranks, and equal sizes after the batch axis wherever both are known."""
    if isinstance(built_for, dict) or isinstance(shape, dict):
        return isinstance(built_for, dict) and isinstance(shape, dict) and set(built_for) == set(shape) and \
            all(compatible_shapes(built_for[name], shape[name]) for name in shape)
    listed = bool(built_for) and isinstance(built_for[0], (list, tuple))
    olds, news = (list(built_for), list(shape)) if listed else ([built_for], [shape])
    return len(olds) == len(news) and all(
        len(old) == len(new) and all(a is None or b is None or a == b for a, b in zip(old[1:], new[1:]))
        for old, new in zip(olds, news))


#: the arguments KernelAndBias layers share, with Keras's defaults, in Keras's config order
KERNEL_AND_BIAS_DEFAULTS = (
    ("activation", "linear"), ("use_bias", True), ("kernel_initializer", "glorot_uniform"),
    ("bias_initializer", "zeros"), ("kernel_regularizer", None), ("bias_regularizer", None),
    ("activity_regularizer", None), ("kernel_constraint", None), ("bias_constraint", None))


class KernelAndBias:
    """What Dense and the convolutions share (mixed into a Layer): a kernel, an optional bias, and an
    activation that runs inside the fused product where the backend fuses it (linear, relu, sigmoid,
    tanh, softmax), with their Keras arguments and config."""

    def _init_kernel_and_bias(self, owner, activation, use_bias, kernel_initializer, bias_initializer,
                              kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint):
        self.activation = activations.get(activation)
        # the backend's fused name for this activation, or None when it runs after the fused product
        self._fused_activation = activations.fused_name(self.activation)
        self.use_bias = arguments.boolean(owner, "use_bias", use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.kernel = self.bias = None

    def _add_kernel_and_bias(self, kernel_shape, units):
        """Create the kernel of ``kernel_shape`` and (with use_bias) the bias (units,), in Keras's order."""
        self.kernel = self.add_weight(kernel_shape, self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        if self.use_bias:
            self.bias = self.add_weight((units,), self.bias_initializer, regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, name="bias")

    def _activated_product(self, rows, kernel, return_logits):
        """activation(rows @ kernel + bias) as ONE fused op where the backend fuses the activation, else the
        fused product and then the activation; with ``return_logits`` the logits, rows @ kernel + bias."""
        fused = "none" if return_logits else self._fused_activation
        out = F.linear(rows, kernel, self.bias, "none" if fused is None else fused)
        return self.activation(out) if fused is None else out

    def _kernel_and_bias_config(self):
        """The shared part of the config, serialized as Keras writes it."""
        serialize = {"activation": activations.serialize, "kernel_initializer": initializers.serialize,
                     "bias_initializer": initializers.serialize, "kernel_regularizer": regularizers.serialize,
                     "bias_regularizer": regularizers.serialize, "activity_regularizer": regularizers.serialize,
                     "kernel_constraint": constraints.serialize, "bias_constraint": constraints.serialize}
        return {key: serialize.get(key, lambda value: value)(getattr(self, key)) for key, _ in KERNEL_AND_BIAS_DEFAULTS}

    @staticmethod
    def _kernel_and_bias_arguments(config):
        """The shared constructor arguments in a config, Keras's defaults for the missing ones."""
        return {key: config.get(key, default) for key, default in KERNEL_AND_BIAS_DEFAULTS}


def config_dtype(dtype):
    """The dtype name in a Keras config: a string, or Keras 3's DTypePolicy dict."""
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    if dtype in (None, "mixed_float16", "mixed_bfloat16"):
        return "float32"
    return dtype
