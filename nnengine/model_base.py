"""``Model``: the base of ``Sequential`` (models.py), ``Functional`` (functional_model.py) and the models users
subclass from it (subclassed.py). Their weights, device moves, files and summary are written once, here, over
the model's ``_layers`` (its layers with weights or computation, in Keras's order, each once) and
``_input_layer``; training comes from ``Trainer`` (trainer.py), as Keras 3's Model inherits from its Trainer.

``Model(inputs, outputs)`` makes a ``Functional`` model, as in Keras. A subclass of ``Model`` that defines
``call`` is a subclassed model: ``Model.__init__`` starts tracking its layer attributes, and the methods
marked "(subclassed)" below are its structure; Sequential and Functional define their own.
"""
import json
import os

import numpy as np

from . import arguments, keras_archive, saving, weights_file
from .layer_base import activity_penalties, collecting_activity, compatible_shapes
from .layers import InputLayer
from .subclassed import call_with_training, holds_layers, probe_call, tracked_layers
from .summary import summary_lines
from .symbolic import call_symbolic, is_symbolic
from .tensor import Tensor
from .trainer import Trainer
from .utils import snake_case, unique_name, zeros_sample

__all__ = ["Model"]


#: a subclassed model's own attributes that hold layers, never tracked as its parts
_UNTRACKED = ("_layers", "_parts", "_input_layer")


class Model(Trainer):
    """Keras's ``Model``: ``Model(inputs, outputs)`` is a functional model (functional_model.Functional);
    ``isinstance(model, Model)`` holds for it and for a ``Sequential``."""

    #: the class name in the model's files ("Sequential", "Functional"); a class that sets it is a kind of model
    keras_class_name = None
    #: {keras_class_name: class}: the kinds of model (Sequential and Functional register as they are defined)
    _kinds = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "keras_class_name" in cls.__dict__:
            Model._kinds[cls.keras_class_name] = cls

    @property
    def trainable(self):
        """Whether training updates the weights. Setting it sets every layer's flag too, the layers of nested
        models included, as Keras 3 does (``base.trainable = False`` freezes a model used as a layer)."""
        return self.__dict__.get("_trainable", True)

    @trainable.setter
    def trainable(self, value):
        self.__dict__["_trainable"] = bool(value)
        for layer in [*getattr(self, "_input_layers", ()), *getattr(self, "_layers", ())]:
            layer.trainable = bool(value)

    def __new__(cls, *args, **kwargs):
        if cls is Model:
            if ("inputs" in kwargs or args) and ("outputs" in kwargs or len(args) > 1):
                # a Functional, on which Python then runs Functional.__init__(*args, **kwargs)
                return super().__new__(Model._kinds["Functional"])
            raise TypeError("keras.Model() needs inputs and outputs (Model(inputs, outputs) of the Functional API), "
                            "or subclass it: class MyModel(keras.Model) with its layers made in __init__ and used "
                            "in call(inputs, training=False)")
        if not issubclass(cls, tuple(Model._kinds.values())) and not callable(getattr(cls, "call", None)):
            raise TypeError(f"keras.Model: subclass {cls.__name__} must define call(inputs, training=False), the "
                            "model's computation on its inputs")
        return super().__new__(cls)

    def __init__(self, *args, name=None, trainable=True, dtype=None, **kwargs):
        """Start a subclassed model (``super().__init__(name=..., trainable=...)`` in the subclass's ``__init__``):
        its layers are then the layers and models its attributes hold."""
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}: keras.Model.__init__ of a subclassed model takes name, "
                            f"trainable and dtype, got {[*map(repr, args), *kwargs]} (Model(inputs, outputs) is "
                            "the functional API)")
        # the attributes that hold layers, in assignment order (any set before this call too)
        object.__setattr__(self, "_tracked", [name for name, value in self.__dict__.items()
                                              if name not in _UNTRACKED and holds_layers(value)])
        self.name = arguments.text(type(self).__name__, "name", name, optional=True) or \
            unique_name(snake_case(type(self).__name__))
        self.trainable = arguments.boolean(type(self).__name__, "trainable", trainable)
        self._float_dtype = dtype if dtype in ("float32", "float64") else "float32"
        self._input_layer = None
        self._layers = []
        self._output_shape = None
        self._init_training_state()

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        tracked = self.__dict__.get("_tracked")
        if tracked is not None and name not in _UNTRACKED:      # a subclassed model: its layer attributes
            was, holds = name in tracked, holds_layers(value)
            if was:
                tracked.remove(name)
            if holds:
                tracked.append(name)
            if was or holds:
                self._track()

    @property
    def _subclassed(self):
        return "_tracked" in self.__dict__

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The model of a config: a functional model's (with 'layers', 'input_layers' and 'output_layers', as Keras
        tells them apart) or a Sequential's; a subclass's own class gets the config as keyword arguments (its
        name and trainable flag, as Keras's default)."""
        if not isinstance(config, dict):
            raise TypeError(f"Model.from_config: expected a dict, got {type(config).__name__}")
        if cls is not Model:
            return cls(**{key: value for key, value in config.items() if key != "dtype"})
        functional = all(key in config for key in ("layers", "input_layers", "output_layers"))
        kind = Model._kinds["Functional" if functional else "Sequential"]
        return kind.from_config(config, custom_objects=custom_objects)

    # -- a subclassed model's structure --------------------------------------------------------------
    @property
    def layers(self):
        """(subclassed) The layers and models its attributes hold, in the order they were assigned."""
        self._track()
        return list(self._parts)

    def _track(self):
        """(subclassed) Read the tracked attributes again: the parts, and ``_layers``, every layer within."""
        parts, layers = tracked_layers(self)
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "_layers", layers)

    @property
    def built(self):
        """(subclassed) True once ``call`` has run (it builds the layers)."""
        return self._output_shape is not None

    def build(self, input_shape):
        """(subclassed) Build the layers by calling the model once on zeros of ``input_shape`` (batch axis first)."""
        if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, (tuple, list)) or len(input_shape) < 2:
            raise TypeError(f"build: input_shape must be a tuple (batch, *sizes), got {input_shape!r}")
        self._build_on(zeros_sample(arguments.shape(f"model {self.name!r}: build", "input_shape", input_shape),
                                    self.dtype))

    def _ensure_built(self, x):
        """(subclassed) Build on the first sample of ``x`` (see ``build``)."""
        self._track()
        if not self.built:
            self._build_on(x[:1])

    def _build_on(self, sample):
        sample = np.asarray(sample)
        dtype = "int64" if sample.dtype.kind in "iu" else self.dtype
        self._input_layer = InputLayer(batch_shape=(None, *sample.shape[1:]), dtype=dtype,
                                       name=f"{self.name}_input")
        self._output_shape = probe_call(self, self._tensor(sample.astype(dtype)))
        self._track()

    @property
    def output_shape(self):
        """(subclassed) The batch output shape, e.g. (None, 10), once built."""
        return self._output_shape

    def _forward(self, x, training=False, return_logits=False, penalties=None):
        """(subclassed) ``call``. A subclassed model's output layer is not known, so the trainer never asks for
        logits (its ``_output_layers`` are [None]). The layers ``call`` runs add their activity regularizers'
        penalties to ``penalties`` (``collecting_activity``)."""
        with collecting_activity(penalties):
            return call_with_training(self, x, training)

    def summary_shapes(self):
        """(subclassed) Each part's output shape: a layer's for the inputs it was built for, a model's own."""
        shapes = []
        for part in self.layers:
            if not isinstance(part, Model):
                built_for = part.input_shape if part.built else None
                shapes.append(None if built_for is None else part.compute_output_shape(built_for))
            else:
                shapes.append(part.output_shape if part.built else None)
        return shapes

    def get_config(self):
        """(subclassed) Keras's base config of a subclassed model: its name and trainable flag (a subclass whose
        ``__init__`` takes more arguments overrides get_config, as in Keras)."""
        return {"name": self.name, "trainable": self.trainable,
                "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": self.dtype},
                          "registered_name": None}}

    # -- structure --------------------------------------------------------------------------------
    @property
    def input_shape(self):
        """The batch input shape, e.g. (None, 10); None before the model knows it (a list, one per input, for a
        model with several inputs)."""
        if len(self._input_layers) > 1:
            return [layer.batch_input_shape for layer in self._input_layers]
        return None if self._input_layer is None else self._input_layer.batch_input_shape

    @property
    def _input_layers(self):
        """The model's InputLayers, in input order (none before a Sequential knows its input shape)."""
        return [] if self._input_layer is None else [self._input_layer]

    def _input_consumers(self):
        """(input position, layer) for each layer called directly on a model input (none known for a subclassed
        model, whose call may do anything first)."""
        return []

    @property
    def _output_layers(self):
        """(subclassed) Per output, the layer that computes it (the trainer may fuse its activation into the loss):
        None for a subclassed model, whose call may compute anything after its last layer."""
        return [None]

    def _output_shapes(self):
        """The batch shape of each output (one)."""
        return [self.output_shape]

    @property
    def output_names(self):
        """(subclassed) The name of each output (one): 'output_0', as in Keras."""
        return ["output_0"]

    @property
    def dtype(self):
        """The model's float dtype: the input layer's when it is a float, else the first layer's (float32 default).

        Float targets are cast to it. Inputs are cast to ``input_dtype``, which may be an integer type.
        """
        if self._input_layer is not None and self._input_layer.dtype.startswith("float"):
            return self._input_layer.dtype
        return self._layers[0].dtype if self._layers else self.__dict__.get("_float_dtype", "float32")

    @property
    def input_dtype(self):
        """The dtype inputs are cast to: the input layer's (int32/int64 allowed), else ``dtype``."""
        return self._input_layer.dtype if self._input_layer is not None else self.dtype

    # -- weights ------------------------------------------------------------------------------
    @property
    def weights(self):
        """Every weight Tensor, layer by layer."""
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self):
        """The weights the optimizer updates."""
        return [w for layer in self._layers for w in layer.trainable_weights] if self.trainable else []

    @property
    def non_trainable_weights(self):
        """The weights the optimizer leaves alone."""
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def get_weights(self):
        """Every weight as a numpy array, layer by layer (kernel before bias)."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """Set every weight from numpy arrays in ``get_weights()`` order and shapes."""
        if not isinstance(weights, (list, tuple)):
            raise TypeError(f"set_weights: expected a list of arrays (as get_weights() returns), got "
                            f"{type(weights).__name__}")
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self._layers)
        if len(weights) != expected:
            raise ValueError(f"model {self.name!r} has {expected} weight arrays, set_weights got {len(weights)}")
        position = 0
        for layer in self._layers:
            count = len(layer.weights)
            layer.set_weights(weights[position:position + count])
            position += count

    def count_params(self):
        """The number of scalars in the weights."""
        return sum(layer.count_params() for layer in self._layers)

    def get_layer(self, name=None, index=None):
        """The layer at ``index`` of ``layers`` (which wins when both are given, as in Keras) or named ``name``."""
        layers = self.layers
        if index is not None:
            index = arguments.integer("get_layer", "index", index)
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"get_layer: was asked for the layer at index {index}, but model {self.name!r} has "
                                 f"{len(layers)} layers")
            return layers[index]
        if name is None:
            raise ValueError("get_layer: give a layer name or a layer index")
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the layers are {[layer.name for layer in layers]}")

    def to_json(self, **kwargs):
        """The model's config as Keras 3's ``to_json`` writes it (the ``config.json`` of a ``.keras`` file, with
        the compile arguments once compiled); ``kwargs`` go to ``json.dumps``. ``model_from_json`` reads it."""
        return json.dumps(keras_archive.native_config(self), **kwargs)

    def to(self, device):
        """Move the weights and the optimizer's state to ``device`` in place; return self."""
        for layer in [*self._input_layers, *self._layers]:
            layer.to(device)
        if self.optimizer is not None:
            for _, _, slot in self.optimizer.slot_variables():
                slot.move_(device)
        return self

    # -- forward ---------------------------------------------------------------------------------
    def _check_input(self, x, method):
        expected = self.input_shape
        if x.ndim != len(expected) or any(e is not None and e != got for e, got in zip(expected[1:], x.shape[1:])):
            first = self._layers[0].name if self._layers else self.name
            raise ValueError(f"{method}: input of shape {x.shape} does not fit layer {first!r}, which expects "
                             f"inputs of shape {expected} (None is the batch axis)")

    @staticmethod
    def _note_activity(layer, output, penalties):
        if penalties is not None and layer.activity_regularizer is not None:
            penalties.append(layer.activity_loss(output))

    def __call__(self, x, training=False):
        """The model's output Tensor for input ``x`` (a Tensor or array; a list of them, one per input, for a
        model with several inputs); differentiable."""
        if is_symbolic(x):                      # a model used as a layer of a functional model
            self.check_nestable(f"model {self.name!r} called on a KerasTensor")
            return call_symbolic(self, x)
        penalties = activity_penalties()        # a model inside a subclassed model's call: its layers' too
        if isinstance(x, (list, tuple)) and x and all(isinstance(part, Tensor) for part in x):
            return self._forward(list(x), training=training, penalties=penalties)
        if not isinstance(x, Tensor):
            x = self._tensor(self._prepare_x(x, "call"))
        else:
            self._ensure_built(x)
        return self._forward(x, training=training, penalties=penalties)

    # -- a model used as a layer of another model (Keras's nested models) ---------------------------------
    #: a model adds no activity penalty of its own (its layers add theirs, run_part)
    activity_regularizer = None

    def check_nestable(self, where):
        """TypeError unless this model can be a layer of another: a Sequential or a functional model with one
        output (a subclassed model's structure is its call's, which a model's config cannot describe)."""
        if self._subclassed:
            raise TypeError(f"{where}: {self.name!r} is a subclassed model, which nnengine cannot use as a layer of "
                            "another model yet; hold it as an attribute of a subclassed model instead")
        if not self.layers or len(self.output_names) > 1:
            raise TypeError(f"{where}: model {self.name!r} has " + ("no layers" if not self.layers else
                            f"{len(self.output_names)} outputs") + "; a model used as a layer needs one output")

    @property
    def takes_list(self):
        """Whether the model, called as a layer, takes a list (one tensor per input)."""
        return len(self._input_layers) > 1

    @property
    def batch_input_shape(self):
        """The input shape a Sequential that starts with this model takes (None before it is known)."""
        return self.input_shape if self._input_layer is not None else None

    def build_for(self, input_shape):
        """Build the model for inputs of ``input_shape`` (as a layer of another model: a Sequential without an
        input shape builds then), or check that a built model takes such inputs."""
        if not self.built:
            self.build(tuple(input_shape))
            return
        expected = self.input_shape
        if not compatible_shapes(expected, input_shape):
            raise ValueError(f"model {self.name!r} takes inputs of shape {expected} and cannot be called on inputs "
                             f"of shape {input_shape}")

    build_once = build_for

    def compute_output_shape(self, input_shape):
        """The output shape for inputs of ``input_shape``: the model's, with their batch size."""
        batch = (input_shape[0] if self.takes_list else input_shape)[0]
        return (batch, *self.output_shape[1:])

    @property
    def weight_names(self):
        """Each weight's name within the model, '<layer>/<weight>' (a nested model's: '<model>/<layer>/...')."""
        return [f"{part.name}/{name}" for part in self.layers if not isinstance(part, InputLayer)
                for name in part.weight_names]

    # -- summary and files -------------------------------------------------------------------------
    def summary(self, print_fn=None):
        """Print the layer table as Keras 3 prints it (layer, output shape, parameter count, totals)."""
        if print_fn is not None and not callable(print_fn):
            raise TypeError(f"summary: print_fn must be a function such as print, got {type(print_fn).__name__}")
        for line in summary_lines(self):
            (print_fn or print)(line)

    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Write the model, atomically, to Keras 3's native file (``.keras``, keras_archive.py) or to its legacy
        HDF5 file (``.h5``)."""
        if isinstance(filepath, (str, os.PathLike)) and os.fspath(filepath).endswith(keras_archive.SUFFIX):
            keras_archive.save_archive(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)
            return
        saving.save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        """Write the weights to a Keras 3 ``.weights.h5`` file, atomically."""
        weights_file.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Read weights written by ``save_weights`` or ``save`` (nnengine's or Keras's)."""
        weights_file.load_weights(self, filepath)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}, layers={[layer.name for layer in self.layers]}>"
