"""Keras's functional model: ``keras.Model(inputs, outputs)`` over a graph of layer calls (symbolic.py).

    inputs = keras.Input(shape=(16,))
    hidden = keras.layers.Dense(32, activation="relu")(inputs)
    residual = keras.layers.Add()([hidden, keras.layers.Dense(32, activation="relu")(hidden)])
    outputs = keras.layers.Dense(10, activation="softmax")(residual)
    model = keras.Model(inputs, outputs)       # compile, fit, evaluate, predict, save: as any model

The graph may branch and merge, and a layer may be called more than once (its weights are shared). The
model runs its nodes in Keras's order, deepest first; each layer's output goes to every node that uses it,
and autograd adds up the gradients that flow back along the branches. Training, the compiled step and the
files are the ones every model has (model_base.py, trainer.py); what is functional is here: the graph's
layers and order, the forward pass, and Keras 3's config of nodes (``inbound_nodes``, ``input_layers``,
``output_layers``), read in tf.keras 2.x's form too.

A model may have several inputs (``Model([a, b], out)``; fit takes one array per input, model_inputs.py) and
several outputs (``Model(x, [classes, value])``: a list of them, named after the layers that compute them;
compile takes a loss per output, output_heads.py, and predict returns one array per output).
"""
from . import arguments, saving
from .layers import LAYER_CLASSES, InputLayer
from .functional_config import calls_of, check_mask_ops, entry_name, histories, mask_op, output_of, run_calls
from .model_base import Model
from .model_parts import layer_entry, layer_from_config, leaves_of, output_layer_of, run_part
from .symbolic import graph_of, keras_tensor
from .utils import unique_name

__all__ = ["Functional"]


class Functional(Model):
    """The model of the layer calls from ``inputs`` (``keras.Input``s: one, or a list) to ``outputs`` (what calling
    layers on them gave: one tensor, or a list of them); Keras's ``Model(inputs, outputs)`` makes one."""

    keras_class_name = "Functional"

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        arguments.unsupported("Model", **kwargs)
        self.name = arguments.text("Model", "name", name, optional=True) or unique_name("functional")
        self.trainable = arguments.boolean("Model", "trainable", trainable)
        self._inputs = [keras_tensor(tensor, "Model: inputs") for tensor in _listed("inputs", inputs)]
        self._outputs = [keras_tensor(tensor, "Model: outputs") for tensor in _outputs_listed(outputs)]
        for tensor in self._inputs:
            if not isinstance(tensor.layer, InputLayer):
                raise ValueError(f"Model: inputs must be keras.Input tensors, got the output of layer "
                                 f"{tensor.layer.name!r}")
        if len({id(tensor) for tensor in self._inputs}) < len(self._inputs):
            raise ValueError("Model: an Input is given twice in inputs")
        if any(isinstance(tensor.layer, InputLayer) for tensor in self._outputs):
            raise ValueError("Model: an output is an input itself; call at least one layer on the Input")
        nodes = {tensor.layer.name: tensor.node for tensor in self._outputs}
        if any(tensor.node is not nodes[tensor.layer.name] for tensor in self._outputs) or \
                len({id(tensor) for tensor in self._outputs}) < len(self._outputs):
            raise ValueError(f"Model: two outputs come from one layer ({self.output_names}); only the different "
                             "outputs of one call (a recurrent layer's states) may share their layer's name, so give "
                             "each other output a layer of its own (an Identity layer will do)")
        self._graph = graph_of(self._inputs, self._outputs)
        self._input_layer = self._inputs[0].layer
        # every layer with weights or computation; a model used as a layer gives its layers
        self._layers = leaves_of([layer for layer in self._graph.layers if not isinstance(layer, InputLayer)])
        self._steps = [node for node in self._graph.nodes if node.inputs]     # the input's node computes nothing
        self._init_training_state()

    # -- structure ----------------------------------------------------------------------------
    @property
    def layers(self):
        """Every layer in Keras's order, the InputLayer first (as Keras lists a functional model's layers)."""
        return list(self._graph.layers)

    @property
    def inputs(self):
        """The model's input KerasTensors (a list, as in Keras)."""
        return list(self._inputs)

    @property
    def outputs(self):
        """The model's output KerasTensors (a list, as in Keras)."""
        return list(self._outputs)

    @property
    def input(self):
        """The model's input KerasTensor (a list of them for a model with several inputs, as in Keras)."""
        return self._inputs[0] if len(self._inputs) == 1 else list(self._inputs)

    @property
    def _input_layers(self):
        return [tensor.layer for tensor in self._inputs]

    @property
    def output(self):
        """The model's output KerasTensor (a list of them for a model with several outputs, as in Keras)."""
        return self._outputs[0] if len(self._outputs) == 1 else list(self._outputs)

    @property
    def output_names(self):
        """The names of the outputs, in order: each is the name of the layer that computes it (as in Keras)."""
        return [tensor.layer.name for tensor in self._outputs]

    @property
    def built(self):
        """Always: calling the layers on the Input built them."""
        return True

    def build(self, input_shape=None):
        """Nothing to build: calling the layers on the Inputs built them."""

    @property
    def output_shape(self):
        """The batch output shape, e.g. (None, 10); a list of them for a model with several outputs."""
        shapes = self._output_shapes()
        return shapes[0] if len(shapes) == 1 else shapes

    def _output_shapes(self):
        return [tensor.shape for tensor in self._outputs]

    @property
    def _output_layers(self):
        """Per output, the layer whose call computes it, or None where the output also feeds another call of the
        model (the trainer must not stop that call at its logits)."""
        read = {id(tensor) for node in self._steps for tensor in node.inputs}
        return [None if id(tensor) in read or len(tensor.node.outputs) > 1 else output_layer_of(tensor.layer)
                for tensor in self._outputs]

    def _input_consumers(self):
        """(input position, layer) for each call of a layer on a model input."""
        positions = {id(tensor): position for position, tensor in enumerate(self._inputs)}
        consumers = []
        for node in self._steps:
            for at, tensor in enumerate(node.inputs):
                if id(tensor) not in positions:
                    continue
                if isinstance(node.layer, Model):       # a nested model: the layers that read this input of its
                    consumers += [(positions[id(tensor)], layer) for inner, layer in node.layer._input_consumers()
                                  if inner == at]
                else:
                    consumers.append((positions[id(tensor)], node.layer))
        return consumers

    def _ensure_built(self, x):
        """A functional model is built when it is made."""

    def _forward(self, x, training=False, return_logits=False, penalties=None):
        """Run the nodes on Tensor ``x`` (a list for several inputs), each on the values of the nodes it was called
        on; returns the output (a list of them for several outputs). ``return_logits``: a bool, or one per output;
        an output's node asked for them stops at its logits. ``penalties`` receives the activity regularizers'
        penalties."""
        values = dict(zip(map(id, self._inputs), x if isinstance(x, list) else [x]))
        flags = return_logits if isinstance(return_logits, (list, tuple)) else [return_logits] * len(self._outputs)
        at_logits = {id(tensor.node) for tensor, flag in zip(self._outputs, flags) if flag}
        for node in self._steps:
            arg = node.argument([values[id(tensor)] for tensor in node.inputs])
            result = run_part(node.layer, arg, training, penalties, id(node) in at_logits,
                              node.options)    # at its logits: no activity penalty (trainer)
            for tensor, value in zip(node.outputs, result if len(node.outputs) > 1 else [result]):
                values[id(tensor)] = value
        outputs = [values[id(tensor)] for tensor in self._outputs]
        return outputs[0] if len(outputs) == 1 else outputs

    # -- summary and config -----------------------------------------------------------------------
    def layer_input_shapes(self):
        """{layer: the input shape its first call in this model saw} (a list of shapes for a merge layer); Keras
        writes it as the layer's build config."""
        shapes = {}
        for node in self._steps:
            shapes.setdefault(node.layer, _argument_shapes(node))
        return shapes

    def summary_connections(self):
        """{layer: 'name[node][0], ...' for each input of each of its calls} as Keras's summary shows them, or
        None when the model is a chain (Keras then prints no 'Connected to' column)."""
        if self._is_chain():
            return None
        connections = {}
        for layer in self._graph.layers:
            cells = [f"{tensor.layer.name}[{tensor.node.index}][{tensor.index}]"
                     for node in self._graph.nodes_of(layer) for tensor in node.inputs]
            connections[layer] = ", ".join(cells) or "-"
        return connections

    def _is_chain(self):
        """Keras's test: no layer called twice, and each node reads one tensor, the previous node's output."""
        nodes = self._graph.nodes                       # the input's node first
        return len(nodes) == len(self._graph.layers) and all(
            not node.as_list and not node.names and len(node.inputs) == 1 and node.inputs[0].node is previous
            for previous, node in zip(nodes, nodes[1:]))

    def summary_shapes(self):
        """The output shape of each layer's last call in this model, in ``layers`` order (for ``summary``)."""
        return [_shapes_of(self._graph.nodes_of(layer)[-1]) for layer in self._graph.layers]

    def get_config(self):
        """Keras 3's functional config: the layers, each with its calls ('inbound_nodes'), and the input and
        output layers as [name, node, tensor]."""
        numbers = self._graph.node_numbers

        def tensor_config(tensor):
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(tensor.shape), "dtype": tensor.dtype,
                               "keras_history": [tensor.layer.name, numbers[tensor.node], tensor.index]}}

        layers = []
        for layer in self._graph.layers:
            entry = layer_entry(layer) if not isinstance(layer, InputLayer) else \
                {"class_name": "InputLayer", "config": layer.get_config()}
            nodes = [node for node in self._graph.nodes_of(layer) if node.inputs]
            entry["name"] = layer.name
            entry["inbound_nodes"] = [_node_config(node, tensor_config) for node in nodes]
            layers.append(entry)
        return {"name": self.name, "trainable": self.trainable, "layers": layers,
                "input_layers": _endpoints(self._inputs, numbers),
                "output_layers": _endpoints(self._outputs, numbers)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The functional model of a config (Keras 3's, or tf.keras 2.x's): every layer made from its entry, then
        called as its 'inbound_nodes' say, in an order that has each call's inputs ready. The layers build as they
        are called (a loader hands them their stored weights then). ValueError names what is wrong."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list) or \
                not all(isinstance(entry, dict) for entry in config["layers"]):
            raise ValueError("Functional.from_config: expected a dict whose 'layers' is a list of layer objects")
        known = saving.layer_classes(LAYER_CLASSES, custom_objects)
        layers, calls, mask_ops = {}, [], {}
        for position, entry in enumerate(config["layers"]):      # Keras's records of an Embedding's mask, which
            name = entry_name(entry, position)                     # nnengine passes on itself
            compared = mask_op(entry, name)
            if compared is not None:
                mask_ops[name] = compared
        for position, entry in enumerate(config["layers"]):
            name = entry_name(entry, position)
            if name in mask_ops:
                continue
            if name in layers:
                raise ValueError(f"Functional.from_config: two layers are named {name!r:.80}")
            layers[name] = layer_from_config(f"Functional.from_config: layers[{position}] ({name!r:.80})", entry,
                                             known)
            calls.append((name, calls_of(entry, name, layers[name], mask_ops)))
        outputs = run_calls(layers, calls)
        check_mask_ops(mask_ops, layers, outputs)
        inputs = [output_of(outputs, history, "input_layers") for history in histories(config["input_layers"])]
        results = [output_of(outputs, history, "output_layers") for history in histories(config["output_layers"])]
        return cls(inputs, results, name=config.get("name"), trainable=config.get("trainable", True))


def _argument_shapes(node):
    """A node's input shapes as lists: one, a list of them (a merge layer), or {argument: shape, or a list of
    them} for the layer's positional arguments (attention's query, value, key; a recurrent layer's sequences and
    initial_state)."""
    shapes = [list(tensor.shape) for tensor in node.inputs]
    if node.names:
        return {name: shape for name, shape in node.argument(shapes).items()
                if name in node.layer.call_argument_names}
    return shapes if node.as_list else shapes[0]


def _shapes_of(node):
    """A node's output shape, or the list of them for a layer with several outputs (Keras's summary shows so)."""
    return [tensor.shape for tensor in node.outputs] if len(node.outputs) > 1 else node.outputs[0].shape


def _node_config(node, tensor_config):
    """Keras 3's config of one call: {'args': [...], 'kwargs': {...}}; named inputs: the leading positional ones
    of the layer's call in 'args', the others and the call's options in 'kwargs'."""
    if not node.names:
        return {"args": [[tensor_config(t) for t in node.inputs] if node.as_list else tensor_config(node.inputs[0])],
                "kwargs": dict(node.options)}
    named = node.named_inputs()

    def written(value):
        return [tensor_config(t) for t in value] if isinstance(value, list) else tensor_config(value)
    positional = []
    for name in node.layer.call_argument_names:
        if name not in named or name in node.listed:
            break
        positional.append(name)
    return {"args": [written(named[name]) for name in positional],
            "kwargs": {**{name: written(value) for name, value in named.items() if name not in positional},
                       **node.options}}


def _endpoints(tensors, numbers):
    """Keras 3's 'input_layers' / 'output_layers': [name, node, tensor] for one tensor, a list of those for
    several."""
    endpoints = [[tensor.layer.name, numbers[tensor.node], tensor.index] for tensor in tensors]
    return endpoints[0] if len(endpoints) == 1 else endpoints


def _listed(what, value):
    """``value`` as a non-empty list (Keras accepts a tensor, a list or a tuple of them, or a dict of them)."""
    items = list(value.values()) if isinstance(value, dict) else \
        list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ValueError(f"Model: {what} is empty")
    return items


def _outputs_listed(value):
    """The outputs as a list: one tensor, or a list or tuple of them (a dict of outputs is refused: its keys would
    name the outputs, which nnengine names after their layers)."""
    if isinstance(value, dict):
        raise TypeError("Model: outputs must be a tensor or a list of them; a dict of outputs is not supported "
                        "(the outputs are named after their layers: give each layer that name)")
    return _listed("outputs", value)
