"""The Keras-style ``Sequential`` model (its structure and config), and the functions that load models.

What every model shares (weights, files, summary) is model_base.py's ``Model``; training (compile, fit,
evaluate, predict, *_on_batch) is inherited from ``Trainer`` (trainer.py), as Keras 3's Model inherits it;
file formats are saving.py's and keras_archive.py's. ``Model(inputs, outputs)`` is functional_model.py's.
"""
import json
import os
import weakref

from . import arguments, keras_archive, saving
from .functional_model import Functional
from .h5io import ModelFileError
from .layers import BUILD_LOCK, LAYER_CLASSES, InputLayer, Layer
from .model_base import Model
from .model_parts import holds, layer_entry, layer_from_config, leaves_of, output_layer_of, run_part
from .symbolic import call_symbolic, keras_tensor
from .utils import unique_name

__all__ = ["Sequential", "Model", "Functional", "load_model", "save_model", "model_from_json", "clone_model",
           "ModelFileError"]


class Sequential(Model):
    """A linear stack of layers, trained with Keras's compile / fit / evaluate / predict.

    Args:
        layers: a list of layers; the first may be ``Input(shape=...)`` or carry ``input_shape``.
        name: the model's name ('sequential', 'sequential_1', ... by default).
    """

    keras_class_name = "Sequential"

    def __init__(self, layers=None, name=None, trainable=True):
        self.name = arguments.text("Sequential", "name", name, optional=True) or unique_name("sequential")
        self._input_layer = None
        self._parts = []                        # the stack: layers, and models used as layers
        self._nests = False                     # whether a model is among them
        self.trainable = arguments.boolean("Sequential", "trainable", trainable)
        self._symbolic = None                   # the KerasTensors of the built stack, made when first asked for
        self._init_training_state()
        for layer in arguments.sequence_of("Sequential", "layers", layers, (Layer, Model), "layer",
                                           "Sequential([Dense(3)])"):
            self.add(layer)

    # -- structure ----------------------------------------------------------------------------
    @property
    def layers(self):
        """The layers, without the InputLayer (as Keras lists them); a model used as a layer is one of them."""
        return list(self._parts)

    @property
    def _layers(self):
        """Every layer with weights or computation: the stack's, a nested model's layers in its place."""
        return leaves_of(self._parts) if self._nests else self._parts      # (read on every step: kept cheap)

    def add(self, layer):
        """Append a layer, or a model used as a layer (a Sequential or a functional model with one output); it is
        built at once when the model's input shape is known."""
        if not isinstance(layer, (Layer, Model)):
            raise TypeError(f"Sequential.add: expected a layer, got {type(layer).__name__}")
        if isinstance(layer, Model):
            layer.check_nestable("Sequential.add")
        if getattr(layer, "return_state", False):
            raise ValueError(f"Sequential.add: layer {layer.name!r} has return_state=True and gives several outputs, "
                             "which a Sequential cannot pass on: use the functional API (keras.Model(inputs, "
                             "outputs))")
        if isinstance(layer, InputLayer):
            if self._parts or self._input_layer is not None:
                raise ValueError("Sequential.add: an InputLayer can only be the first layer")
            self._input_layer = layer
            return
        if any(existing is layer for existing in self._parts):
            raise ValueError(f"Sequential.add: layer {layer.name!r} is already in the model")
        if isinstance(layer, Model) and holds(layer, self):
            raise ValueError(f"Sequential.add: model {layer.name!r} is this model or holds it: a model cannot be "
                             "a layer of itself")
        if not self._parts and self._input_layer is None and layer.batch_input_shape is not None:
            self._input_layer = InputLayer(batch_shape=layer.batch_input_shape, dtype=layer.input_dtype
                                           if isinstance(layer, Model) else layer.dtype)
        self._parts.append(layer)
        self._nests = any(isinstance(part, Model) for part in self._parts)
        if isinstance(layer, Layer):
            layer._sequential = weakref.ref(self)   # its .output asks this model for the symbolic stack
        self._symbolic = None
        if self._input_layer is not None:
            self._build_from(len(self._parts) - 1)

    def pop(self):
        """Remove the last layer and return it (Keras's ``Sequential.pop``); TypeError when there is none."""
        if not self._parts:
            raise TypeError(f"Sequential.pop: model {self.name!r} has no layers to remove")
        layer = self._parts.pop()
        self._nests = any(isinstance(part, Model) for part in self._parts)
        self._forget_metrics()                  # the output shape changed: 'accuracy' is resolved again
        self._symbolic = None
        return layer

    # -- the symbolic stack (Keras's Sequential is a functional model once built) ------------------------
    def symbolic_stack(self):
        """The KerasTensors of the built model: its input's, then each layer's output, from one symbolic call of
        each layer (made once per structure). What ``inputs``, ``outputs`` and each layer's ``output`` read."""
        if not self.built or self._input_layer is None:
            raise AttributeError(f"model {self.name!r} is not built yet: it has no symbolic inputs and outputs "
                                 "(give it an input shape, or call it on data)")
        if self._symbolic is None:
            tensors = [keras_tensor(self._input_layer, f"model {self.name!r}")]
            for layer in self._parts:
                tensors.append(call_symbolic(layer, tensors[-1]))
            self._symbolic = tensors
        return self._symbolic

    @property
    def inputs(self):
        """The model's input KerasTensor, in a list (as Keras's built Sequential has it)."""
        return self.symbolic_stack()[:1]

    @property
    def outputs(self):
        """The model's output KerasTensor, in a list."""
        return self.symbolic_stack()[-1:]

    @property
    def input(self):
        """The model's input KerasTensor: ``keras.Model(model.input, model.layers[-2].output)``."""
        return self.symbolic_stack()[0]

    @property
    def output(self):
        """The model's output KerasTensor."""
        return self.symbolic_stack()[-1]

    def _build_from(self, index):
        """Build layers[index:] from the output shape of the layer before them."""
        shape = self._input_layer.batch_input_shape
        for position, layer in enumerate(self._parts):
            if position >= index and not layer.built:
                layer.build_once(shape)
            elif position >= index and layer.input_shape is not None and \
                    tuple(layer.input_shape[1:]) != tuple(shape[1:]):
                raise ValueError(f"layer {layer.name!r} was built for inputs {layer.input_shape} but receives "
                                 f"{shape} in this model")
            shape = layer.compute_output_shape(shape)

    @property
    def built(self):
        """True once every layer has its weights."""
        return bool(self._parts) and all(layer.built for layer in self._parts)

    def build(self, input_shape=None):
        """Build every layer for inputs of ``input_shape`` (batch axis first, may be None)."""
        if input_shape is not None:
            if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, (tuple, list)) or \
                    len(input_shape) < 2:
                raise TypeError(f"build: input_shape must be a tuple (batch, *sizes), got {input_shape!r}")
            input_shape = arguments.shape(f"model {self.name!r}: build", "input_shape", input_shape)
            if self._input_layer is None:
                self._input_layer = InputLayer(batch_shape=input_shape, dtype=self.dtype)
            elif tuple(self._input_layer.batch_input_shape[1:]) != input_shape[1:]:
                raise ValueError(f"model {self.name!r} expects inputs {self._input_layer.batch_input_shape}, "
                                 f"build() got {input_shape}")
        if self._input_layer is None:
            raise ValueError(f"model {self.name!r} has no input shape: pass build(input_shape), start it with "
                             "Input(shape=...), or give the first layer input_shape=...")
        self._build_from(0)

    def _input_consumers(self):
        """The first layer reads the input (a nested model first: the layers that read its input)."""
        if not self._parts:
            return []
        first = self._parts[0]
        return first._input_consumers() if isinstance(first, Model) else [(0, first)]

    @property
    def _output_layers(self):
        """The layer that computes the output (the trainer may fuse its activation into the loss): the last
        layer, or a nested last model's output layer."""
        return [output_layer_of(self._parts[-1]) if self._parts else None]

    @property
    def output_names(self):
        """The name of the output (one): the last layer's (a nested last model's name), as in Keras."""
        return [self._parts[-1].name] if self._parts else ["output_0"]

    def summary_shapes(self):
        """Each layer's output shape, walking the stack from the input shape (None where it is not known yet)."""
        shapes, shape = [], self.input_shape
        for layer in self._parts:
            shape = layer.compute_output_shape(shape) if shape is not None and layer.built else None
            shapes.append(shape)
        return shapes

    @property
    def output_shape(self):
        """The batch output shape, e.g. (None, 10)."""
        stack = (self._input_layer, len(self._parts), self._parts[-1] if self._parts else None)
        known = self.__dict__.get("_output_shape_of")           # (each step asks: walk the layers once per stack)
        if known is not None and known[0][0] is stack[0] and known[0][1] == stack[1] and known[0][2] is stack[2]:
            return known[1]
        shape = self.input_shape
        for layer in self._parts:
            shape = layer.compute_output_shape(shape)
        if stack[0] is not None:
            self._output_shape_of = (stack, shape)
        return shape

    # -- forward --------------------------------------------------------------------------------
    def _ensure_built(self, x):
        if self.built:
            return
        with BUILD_LOCK:                # two threads meeting an unbuilt model build it once
            if self._input_layer is None:
                self.build((None, *x.shape[1:]))
            elif not self.built:
                self._build_from(0)

    def _forward(self, x, training=False, return_logits=False, penalties=None):
        """Run the layers on Tensor ``x``; with ``return_logits`` the last one stops at its logits.

        ``penalties``, a list, receives each layer's activity-regularizer penalty of its output.
        """
        for layer in self._parts[:-1]:
            x = run_part(layer, x, training, penalties)
        return run_part(self._parts[-1], x, training, penalties, return_logits)

    # -- summary, config and files ---------------------------------------------------------------------
    def get_config(self):
        """Keras 3's Sequential config: name, layers (InputLayer first) and build_input_shape."""
        layers = []
        if self._input_layer is not None:
            layers.append({"class_name": "InputLayer", "config": self._input_layer.get_config()})
        layers.extend(layer_entry(layer) for layer in self._parts)
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": self.dtype},
                            "registered_name": None},
                  "layers": layers}
        if self.input_shape is not None:
            config["build_input_shape"] = list(self.input_shape)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild a model from its config (Keras 3 or tf.keras 2.x).

        Layer classes come from nnengine's own, from ``custom_objects`` ({name: class}) and from classes
        registered with ``saving.register_keras_serializable``: a name in the config is looked up, never
        imported. Raises TypeError or ValueError naming the layer (by position and class) whose config is wrong.
        """
        if not isinstance(config, dict):
            raise TypeError(f"Sequential.from_config: expected a dict, got {type(config).__name__}")
        entries = config.get("layers", [])
        if not isinstance(entries, list):
            raise TypeError(f"Sequential.from_config: 'layers' must be a list, got {type(entries).__name__}")
        model = cls(name=config.get("name"))
        known = saving.layer_classes(LAYER_CLASSES, custom_objects)
        for position, entry in enumerate(entries):
            model.add(layer_from_config(f"Sequential.from_config: layers[{position}]", entry, known))
        build_shape = config.get("build_input_shape")
        if not model.built and build_shape:
            model.build(build_shape)
        return model


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Read a model saved with ``model.save('*.keras')`` or ``model.save('*.h5')`` by nnengine or by Keras (a
    Sequential or a functional model).

    ``custom_objects`` ({name: class or function}) supplies custom layers (and losses or metrics to
    compile with); nothing named in the file is ever imported. ``safe_mode`` is Keras's flag: nnengine
    never runs code from a file either way.
    """
    if isinstance(filepath, (str, os.PathLike)) and os.fspath(filepath).endswith(keras_archive.SUFFIX):
        return keras_archive.load_archive(filepath, Model, compile=compile, custom_objects=custom_objects)
    return saving.load_model(filepath, Model, compile=compile, custom_objects=custom_objects)


def save_model(model, filepath, overwrite=True, include_optimizer=True):
    """``model.save(filepath, ...)``, under the name ``keras.models.save_model`` gives it."""
    if not isinstance(model, Model):
        raise TypeError(f"save_model: expected a Sequential or functional model, got {type(model).__name__}")
    model.save(filepath, overwrite=overwrite, include_optimizer=include_optimizer)


def model_from_json(json_string, custom_objects=None):
    """The model of a ``to_json`` string (nnengine's or Keras 3's; a Sequential or a functional model), with
    fresh weights, compiled when the JSON holds compile arguments (as Keras does). Reads JSON only."""
    if not isinstance(json_string, (str, bytes)):
        raise TypeError(f"model_from_json: expected a JSON string, got {type(json_string).__name__}")
    try:
        config = json.loads(json_string)
    except ValueError as error:
        raise ValueError(f"model_from_json: not valid JSON: {error}") from None
    except RecursionError:
        raise ValueError("model_from_json: the JSON is nested too deeply") from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ValueError("model_from_json: expected a JSON object with a 'config' object")
    errors = keras_archive.ConfigErrors("model_from_json", "the JSON string")
    subclass = keras_archive.subclass_of(config, Model, custom_objects)
    if subclass is not None:                    # a subclassed model: its own from_config, built by its first call
        model = subclass.from_config(config["config"])
    else:
        model = Model.from_config(saving.model_config_of(config, errors, "the model"), custom_objects=custom_objects)
    training = keras_archive.training_config(config.get("compile_config"), errors)
    if training is not None:
        saving.compile_from_config(model, training, errors, custom_objects)
    return model


def clone_model(model):
    """A new model of ``model``'s layers and config, with new weights drawn by its initializers (as Keras's
    ``clone_model``: nothing is shared, and the clone is not compiled)."""
    if not isinstance(model, Model):
        raise TypeError(f"clone_model: expected a Sequential or functional model, got {type(model).__name__}")
    return type(model).from_config(model.get_config())
