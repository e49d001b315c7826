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
from collections import defaultdict, deque

from . import arguments, saving
from .layers import LAYER_CLASSES, InputLayer
from .model_base import Model
from .model_parts import layer_entry, layer_from_config, leaves_of, output_layer_of, run_part
from .symbolic import KerasTensor, graph_of, keras_tensor
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
        names = self.output_names
        if len(set(names)) < len(names):
            raise ValueError(f"Model: two outputs come from one layer ({names}); the outputs are named after their "
                             "layers, so give each output a layer of its own (an Identity layer will do)")
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
        return [None if id(tensor) in read else output_layer_of(tensor.layer) for tensor in self._outputs]

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
            values[id(node.output)] = run_part(node.layer, arg, training, penalties, id(node) in at_logits,
                                               node.options)    # at its logits: no activity penalty (trainer)
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
            cells = [f"{tensor.layer.name}[{tensor.node.index}][0]"
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
        return [self._graph.nodes_of(layer)[-1].output.shape for layer in self._graph.layers]

    def get_config(self):
        """Keras 3's functional config: the layers, each with its calls ('inbound_nodes'), and the input and
        output layers as [name, node, tensor]."""
        numbers = self._graph.node_numbers

        def tensor_config(tensor):
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(tensor.shape), "dtype": tensor.dtype,
                               "keras_history": [tensor.layer.name, numbers[tensor.node], 0]}}

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
        layers, calls = {}, []
        for position, entry in enumerate(config["layers"]):
            name = _entry_name(entry, position)
            if name in layers:
                raise ValueError(f"Functional.from_config: two layers are named {name!r:.80}")
            layers[name] = layer_from_config(f"Functional.from_config: layers[{position}] ({name!r:.80})", entry,
                                             known)
            calls.append((name, _calls_of(entry, name, layers[name])))
        outputs = _run_calls(layers, calls)
        inputs = [_tensor_at(outputs, history, "input_layers") for history in _histories(config["input_layers"])]
        results = [_tensor_at(outputs, history, "output_layers") for history in _histories(config["output_layers"])]
        return cls(inputs, results, name=config.get("name"), trainable=config.get("trainable", True))


def _argument_shapes(node):
    """A node's input shapes as lists: one, a list of them (a merge layer), or {argument: shape} for the layer's
    positional arguments (attention's query, value, key)."""
    shapes = [list(tensor.shape) for tensor in node.inputs]
    if node.names:
        return {name: shape for name, shape in zip(node.names, shapes) if name in node.layer.call_argument_names}
    return shapes if node.as_list else shapes[0]


def _node_config(node, tensor_config):
    """Keras 3's config of one call: {'args': [...], 'kwargs': {...}}; named inputs: the leading positional ones
    of the layer's call in 'args', the others and the call's options in 'kwargs'."""
    if not node.names:
        return {"args": [[tensor_config(t) for t in node.inputs] if node.as_list else tensor_config(node.inputs[0])],
                "kwargs": {}}
    named = dict(zip(node.names, node.inputs))
    positional = []
    for name in node.layer.call_argument_names:
        if name not in named:
            break
        positional.append(name)
    return {"args": [tensor_config(named[name]) for name in positional],
            "kwargs": {**{name: tensor_config(t) for name, t in named.items() if name not in positional},
                       **node.options}}


def _endpoints(tensors, numbers):
    """Keras 3's 'input_layers' / 'output_layers': [name, node, 0] for one tensor, a list of those for several."""
    endpoints = [[tensor.layer.name, numbers[tensor.node], 0] for tensor in tensors]
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


# ---------------------------------------------------------------------------------------------
# Reading a config's nodes
# ---------------------------------------------------------------------------------------------
def _entry_name(entry, position):
    name = entry.get("name")
    name = name if name is not None else (entry.get("config") or {}).get("name")
    if not isinstance(name, str):
        raise ValueError(f"Functional.from_config: layers[{position}] has no name")
    return name


def _calls_of(entry, name, layer):
    """The calls an entry's 'inbound_nodes' list: for each, ([(layer name, node index)], called on a list, the
    argument names of the inputs and the call's options when ``layer`` takes named inputs, else None and {})."""
    nodes = entry.get("inbound_nodes", [])
    if not isinstance(nodes, list):
        raise ValueError(f"layer {name!r:.80}: 'inbound_nodes' must be a list")
    calls = []
    for node in nodes:
        if isinstance(node, dict) and getattr(layer, "call_argument_names", None):
            calls.append(_named_call(node, name, layer.call_argument_names))
            continue
        if isinstance(node, dict):              # Keras 3: {"args": [tensor or [tensors]], "kwargs": {}}
            args = node.get("args")
            if not isinstance(args, list) or len(args) != 1:
                raise ValueError(f"layer {name!r:.80}: a call must have one argument (a tensor or a list of them), "
                                 f"got {args!r:.80}")
            as_list = isinstance(args[0], list)
            tensors = args[0] if as_list else [args[0]]
            histories = [_history((t.get("config") or {}).get("keras_history") if isinstance(t, dict) else None,
                                  name) for t in tensors]
        elif isinstance(node, list):            # tf.keras 2.x: [[name, node, tensor, kwargs], ...]
            histories = [_history(item[:3] if isinstance(item, list) else None, name) for item in node]
            as_list = len(histories) > 1
        else:
            raise ValueError(f"layer {name!r:.80}: a call must be an object or a list, got {node!r:.80}")
        if not histories:
            raise ValueError(f"layer {name!r:.80} has a call without inputs")
        calls.append((histories, as_list, None, {}))
    return calls


def _is_tensor_config(value):
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _named_call(node, name, positional):
    """A Keras 3 call of a layer with named inputs: {'args': [tensors], 'kwargs': {name: tensor or option}}, its
    args named by the layer's ``positional`` argument names."""
    args, kwargs = node.get("args"), node.get("kwargs") or {}
    if not isinstance(args, list) or not args or len(args) > len(positional) or not isinstance(kwargs, dict) or \
            not all(_is_tensor_config(arg) for arg in args):
        raise ValueError(f"layer {name!r:.80}: a call must give its inputs as tensors in 'args' (at most "
                         f"{len(positional)}: {', '.join(positional)}) and 'kwargs', got {node!r:.80}")
    tensors = dict(zip(positional, args))
    tensors.update({key: value for key, value in kwargs.items() if _is_tensor_config(value)})
    options = {key: value for key, value in kwargs.items() if not _is_tensor_config(value)}
    histories = [_history((t.get("config") or {}).get("keras_history"), name) for t in tensors.values()]
    return histories, False, list(tensors), options


def _history(value, name):
    """A [layer name, node index, tensor index] reference as (name, node index)."""
    if not isinstance(value, list) or len(value) < 3 or not isinstance(value[0], str) or \
            not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value[1:3]):
        raise ValueError(f"layer {name!r:.80}: an input must be [layer name, node index, tensor index], got "
                         f"{value!r:.80}")
    if value[2] != 0:
        raise ValueError(f"layer {name!r:.80} reads output {value[2]} of layer {value[0]!r:.80}; nnengine's layers "
                         "have one output")
    return value[0], value[1]


def _histories(value):
    """A config's 'input_layers' or 'output_layers': [name, 0, 0] or [[name, 0, 0], ...], as (name, node)."""
    if isinstance(value, list) and value and all(isinstance(item, list) for item in value):
        return [_history(item, "input_layers/output_layers") for item in value]
    return [_history(value, "input_layers/output_layers")]


def _run_calls(layers, calls):
    """Call every layer as the config says, each layer's calls in order, each call once the tensors it reads
    exist: the layers in config order (a config in Keras's order needs nothing else), a call that waits for a
    tensor resumed when that tensor is made; so each call is made once, whatever the order of the config.
    Returns {layer name: its output tensors}."""
    outputs = {name: [keras_tensor(layer, name)] for name, layer in layers.items() if isinstance(layer, InputLayer)}
    queues = {name: deque(node_calls) for name, node_calls in calls if node_calls}
    waiting = defaultdict(list)                  # (layer name, call index) -> layers whose next call needs it
    ready = deque(queues)
    while ready:
        name = ready.popleft()
        queue = queues[name]
        while queue:
            missing = _missing(outputs, layers, queue[0])
            if missing is not None:
                waiting[missing].append(name)
                break
            histories, as_list, names, options = queue.popleft()
            tensors = [outputs[source][index] for source, index in histories]
            made = outputs.setdefault(name, [])
            made.append(layers[name](**dict(zip(names, tensors)), **options) if names else
                        layers[name](tensors if as_list else tensors[0]))
            ready.extend(waiting.pop((name, len(made) - 1), []))
    stuck = sorted(name for name, queue in queues.items() if queue)
    if stuck:
        raise ValueError(f"layer {stuck[0]!r:.80} reads a tensor that no call makes (the graph is disconnected or "
                         "has a cycle)")
    return outputs


def _missing(outputs, layers, call):
    """The first (layer name, call index) that ``call`` reads and that does not exist yet, or None."""
    for source, index in call[0]:
        if source not in layers:
            raise ValueError(f"a layer reads the output of {source!r:.80}, which is not a layer of the model")
        if index >= len(outputs.get(source, [])):
            return source, index
    return None


def _tensor_at(outputs, history, what):
    name, index = history
    tensors = outputs.get(name, [])
    if index >= len(tensors) or not isinstance(tensors[index], KerasTensor):
        raise ValueError(f"{what}: layer {name!r:.80} has no call {index}")
    return tensors[index]
