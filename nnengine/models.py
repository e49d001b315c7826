"""The Keras-style ``Sequential`` model: its structure, weights, config and files.

Training (compile, fit, evaluate, predict, *_on_batch) is inherited from ``Trainer``
(trainer.py), as Keras 3's Model inherits it; file formats are saving.py's.
"""
import json
import os

from . import arguments, keras_archive, saving, weights_file
from .h5io import ModelFileError
from .layer_chain import chain_model
from .layers import BUILD_LOCK, LAYER_CLASSES, InputLayer, Layer
from .summary import summary_lines
from .tensor import Tensor
from .trainer import Trainer
from .utils import unique_name

__all__ = ["Sequential", "Model", "load_model", "model_from_json", "clone_model", "ModelFileError"]


class Sequential(Trainer):
    """A linear stack of layers, trained with Keras's compile / fit / evaluate / predict.

    Args:
        layers: a list of layers; the first may be ``Input(shape=...)`` or carry ``input_shape``.
        name: the model's name ('sequential', 'sequential_1', ... by default).
    """

    def __init__(self, layers=None, name=None, trainable=True):
        self.name = arguments.text("Sequential", "name", name, optional=True) or unique_name("sequential")
        self.trainable = arguments.boolean("Sequential", "trainable", trainable)
        self._input_layer = None
        self._layers = []
        self._init_training_state()
        for layer in arguments.sequence_of("Sequential", "layers", layers, Layer, "layer",
                                           "Sequential([Dense(3)])"):
            self.add(layer)

    # -- structure ----------------------------------------------------------------------------
    @property
    def layers(self):
        """The layers, without the InputLayer (as Keras lists them)."""
        return list(self._layers)

    def add(self, layer):
        """Append a layer; it is built at once when the model's input shape is known."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a layer, got {type(layer).__name__}")
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("Sequential.add: an InputLayer can only be the first layer")
            self._input_layer = layer
            return
        if any(existing is layer for existing in self._layers):
            raise ValueError(f"Sequential.add: layer {layer.name!r} is already in the model")
        if not self._layers and self._input_layer is None and layer.batch_input_shape is not None:
            self._input_layer = InputLayer(batch_shape=layer.batch_input_shape, dtype=layer.dtype)
        self._layers.append(layer)
        if self._input_layer is not None:
            self._build_from(len(self._layers) - 1)

    def pop(self):
        """Remove the last layer and return it (Keras's ``Sequential.pop``); TypeError when there is none."""
        if not self._layers:
            raise TypeError(f"Sequential.pop: model {self.name!r} has no layers to remove")
        layer = self._layers.pop()
        self._metrics = []                      # the output shape changed: 'accuracy' is resolved again
        return layer

    def _build_from(self, index):
        """Build layers[index:] from the output shape of the layer before them."""
        shape = self._input_layer.batch_input_shape
        for position, layer in enumerate(self._layers):
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
        return bool(self._layers) and all(layer.built for layer in self._layers)

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

    @property
    def input_shape(self):
        """The batch input shape, e.g. (None, 10); None before the model knows it."""
        return None if self._input_layer is None else self._input_layer.batch_input_shape

    @property
    def output_shape(self):
        """The batch output shape, e.g. (None, 10)."""
        shape = self.input_shape
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    @property
    def dtype(self):
        """The model's float dtype: the input layer's when it is a float, else the first layer's (float32 default).

        Float targets are cast to it. Inputs are cast to ``input_dtype``, which may be an integer type.
        """
        if self._input_layer is not None and self._input_layer.dtype.startswith("float"):
            return self._input_layer.dtype
        return self._layers[0].dtype if self._layers else "float32"

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
        """The layer at ``index`` (which wins when both are given, as in Keras) or named ``name``."""
        if index is not None:
            index = arguments.integer("get_layer", "index", index)
            if not -len(self._layers) <= index < len(self._layers):
                raise ValueError(f"get_layer: was asked for the layer at index {index}, but model {self.name!r} has "
                                 f"{len(self._layers)} layers")
            return self._layers[index]
        if name is None:
            raise ValueError("get_layer: give a layer name or a layer index")
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the layers are {[layer.name for layer in self._layers]}")

    def to_json(self, **kwargs):
        """The model's config as Keras 3's ``to_json`` writes it (the ``config.json`` of a ``.keras`` file, with
        the compile arguments once compiled); ``kwargs`` go to ``json.dumps``. ``model_from_json`` reads it."""
        return json.dumps(keras_archive.native_config(self), **kwargs)

    def to(self, device):
        """Move the weights and the optimizer's state to ``device`` in place; return self."""
        for layer in [*([self._input_layer] if self._input_layer else []), *self._layers]:
            layer.to(device)
        if self.optimizer is not None:
            for _, _, slot in self.optimizer.slot_variables():
                slot.move_(device)
        return self

    # -- forward --------------------------------------------------------------------------------
    def _ensure_built(self, x):
        if self.built:
            return
        with BUILD_LOCK:                # two threads meeting an unbuilt model build it once
            if self._input_layer is None:
                self.build((None, *x.shape[1:]))
            elif not self.built:
                self._build_from(0)

    def _check_input(self, x, method):
        expected = self.input_shape
        if x.ndim != len(expected) or any(e is not None and e != got for e, got in zip(expected[1:], x.shape[1:])):
            first = self._layers[0].name if self._layers else self.name
            raise ValueError(f"{method}: input of shape {x.shape} does not fit layer {first!r}, which expects "
                             f"inputs of shape {expected} (None is the batch axis)")

    def _forward(self, x, training=False, return_logits=False, penalties=None):
        """Run the layers on Tensor ``x``; with ``return_logits`` the last one stops at its logits.

        ``penalties``, a list, receives each layer's activity-regularizer penalty of its output.
        """
        for layer in self._layers[:-1]:
            x = layer.invoke(x, training)
            self._note_activity(layer, x, penalties)
        last = self._layers[-1]
        if return_logits:
            return last.call(x, training=training, return_logits=True)    # no activity regularizer (trainer)
        out = last.invoke(x, training)
        self._note_activity(last, out, penalties)
        return out

    @staticmethod
    def _note_activity(layer, output, penalties):
        if penalties is not None and layer.activity_regularizer is not None:
            penalties.append(layer.activity_loss(output))

    def __call__(self, x, training=False):
        """The model's output Tensor for input ``x`` (a Tensor or array); differentiable."""
        if not isinstance(x, Tensor):
            x = self._tensor(self._prepare_x(x, "call"))
        else:
            self._ensure_built(x)
        return self._forward(x, training=training)

    # -- summary, config and files ---------------------------------------------------------------------
    def summary(self, print_fn=None):
        """Print the layer table as Keras 3 prints it (layer, output shape, parameter count, totals)."""
        if print_fn is not None and not callable(print_fn):
            raise TypeError(f"summary: print_fn must be a function such as print, got {type(print_fn).__name__}")
        for line in summary_lines(self):
            (print_fn or print)(line)

    def get_config(self):
        """Keras 3's Sequential config: name, layers (InputLayer first) and build_input_shape."""
        layers = []
        if self._input_layer is not None:
            layers.append({"class_name": "InputLayer", "config": self._input_layer.get_config()})
        for layer in self._layers:
            entry = {"class_name": type(layer).__name__, "config": layer.get_config()}
            if type(layer) not in LAYER_CLASSES.values():
                entry["registered_name"] = saving.registered_name(type(layer))
            layers.append(entry)
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
            model.add(_layer_from_config(position, entry, known))
        build_shape = config.get("build_input_shape")
        if not model.built and build_shape:
            model.build(build_shape)
        return model

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
        return f"<Sequential name={self.name!r}, layers={[layer.name for layer in self._layers]}>"


class Model:
    """Keras's ``Model``: ``Model(inputs, outputs)`` of the Functional API gives the ``Sequential`` of the layers
    called from ``inputs`` to ``outputs`` (layer_chain.py). Subclassed models are not supported: making one
    raises a TypeError that says so."""

    def __new__(cls, inputs=None, outputs=None, name=None, **kwargs):
        if cls is Model and inputs is not None and outputs is not None:
            arguments.unsupported("Model", **{key: value for key, value in kwargs.items() if key != "trainable"})
            model = chain_model(Sequential, inputs, outputs, name=name)
            model.trainable = arguments.boolean("Model", "trainable", kwargs.get("trainable", True))
            return model
        raise TypeError("keras.Model: subclassed models (and Model() without inputs and outputs) are not "
                        "supported by nnengine: use Model(inputs, outputs) of the Functional API, or stack the "
                        "layers in a Sequential([Input(shape=...), ...])")


def _layer_from_config(position, entry, known):
    """Layer ``position`` of a Sequential config: {'class_name': ..., 'config': {...}}, its class from ``known``."""
    where = f"Sequential.from_config: layers[{position}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
        raise TypeError(f"{where} must be a dict {{'class_name': ..., 'config': {{...}}}}, got {entry!r:.80}")
    class_name = entry.get("class_name")
    registered = entry.get("registered_name")
    layer_class = None
    for name in (registered, class_name):
        if isinstance(name, str) and layer_class is None:
            layer_class = known.get(name)
    if layer_class is None:
        raise ValueError(f"{where}: cannot load layer class {class_name!r:.80}: nnengine knows "
                         f"{', '.join(sorted(LAYER_CLASSES))}; pass a custom layer class in "
                         "custom_objects={'Name': Class} or register it with "
                         "keras.saving.register_keras_serializable()")
    try:
        return layer_class.from_config(entry.get("config") or {})
    except KeyError as error:
        raise ValueError(f"{where} ({class_name}): its config lacks {error}") from None


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Read a model saved with ``model.save('*.keras')`` or ``model.save('*.h5')`` by nnengine or by Keras (a
    Sequential).

    ``custom_objects`` ({name: class or function}) supplies custom layers (and losses or metrics to
    compile with); nothing named in the file is ever imported. ``safe_mode`` is Keras's flag: nnengine
    never runs code from a file either way.
    """
    if isinstance(filepath, (str, os.PathLike)) and os.fspath(filepath).endswith(keras_archive.SUFFIX):
        return keras_archive.load_archive(filepath, Sequential, compile=compile, custom_objects=custom_objects)
    return saving.load_model(filepath, Sequential, compile=compile, custom_objects=custom_objects)


def model_from_json(json_string, custom_objects=None):
    """The model of a ``to_json`` string (nnengine's or Keras 3's; a Sequential or a Functional chain), with
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
    model = Sequential.from_config(saving.model_config_of(config, errors, "the model"), custom_objects=custom_objects)
    training = keras_archive.training_config(config.get("compile_config"), errors)
    if training is not None:
        saving.compile_from_config(model, training, errors, custom_objects)
    return model


def clone_model(model):
    """A new model of ``model``'s layers and config, with new weights drawn by its initializers (as Keras's
    ``clone_model``: nothing is shared, and the clone is not compiled)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"clone_model: expected a Sequential model, got {type(model).__name__}")
    return Sequential.from_config(model.get_config())
