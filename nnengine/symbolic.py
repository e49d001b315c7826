"""Keras's Functional API, the symbolic side: calling layers on ``keras.Input`` records a graph of calls.

    inputs = keras.Input(shape=(10,))
    a = keras.layers.Dense(64, activation="relu")(inputs)       # a KerasTensor of shape (None, 64)
    b = keras.layers.Dense(64, activation="tanh")(inputs)
    merged = keras.layers.Add()([a, b])                           # a merge layer takes a list
    outputs = keras.layers.Dense(10, activation="softmax")(merged)
    model = keras.Model(inputs, outputs)                          # functional_model.Functional

Each call of a layer on symbolic inputs makes a ``Node``: the layer, the KerasTensors it was called on
(one, or a list for a merge layer) and the KerasTensor it returned. A KerasTensor holds no values, only
its shape, dtype and the node that made it. The layer is built by its first call; a layer called again
is shared (one set of weights) and has one node per call, numbered in call order as Keras numbers them.

``graph_of(inputs, outputs)`` orders the nodes and layers between a model's inputs and outputs the way
Keras 3 does (its ``map_graph``): that order is the model's ``layers``, its ``weights`` and its files.
"""
from collections import defaultdict

__all__ = ["KerasTensor", "Node", "is_symbolic", "keras_tensor", "call_symbolic", "graph_of", "named_argument"]


class KerasTensor:
    """A symbolic tensor: what calling a layer on ``keras.Input`` gives. ``shape`` has None for the batch axis;
    ``index`` is its place among its node's outputs (a recurrent layer with ``return_state`` has several)."""

    def __init__(self, shape, dtype, node, index=0):
        self.shape, self.dtype, self.node, self.index = tuple(shape), dtype, node, index

    @property
    def ndim(self):
        """The number of axes, the batch axis included."""
        return len(self.shape)

    @property
    def layer(self):
        """The layer whose call made this tensor (an InputLayer for a model input)."""
        return self.node.layer

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, from layer {self.node.layer.name!r}>"


class Node:
    """One call of ``layer`` on symbolic ``inputs`` (a tuple of KerasTensors); ``as_list`` when it was called on
    a list (merge layers); ``names``, when it was called with named tensors (attention's query, value, key...),
    the argument name of each input, and ``options`` the call's other keyword arguments; ``listed``: the names
    that take a list of tensors (a recurrent layer's initial_state), whose inputs share the name, in order.
    ``index`` is the call's number among the layer's calls; ``outputs`` its results (a list of KerasTensors:
    one, or several when ``output_shape`` is a list of shapes), ``output`` the one, or the list of several."""

    def __init__(self, layer, inputs, as_list, output_shape, output_dtype, names=None, options=None, listed=()):
        self.layer, self.inputs, self.as_list = layer, tuple(inputs), as_list
        self.names, self.options = (tuple(names) if names else None), dict(options or {})
        self.listed = frozenset(listed)
        calls = layer.__dict__.setdefault("_symbolic_nodes", [])
        self.index = len(calls)
        calls.append(self)
        several = isinstance(output_shape, list) and bool(output_shape) and \
            all(isinstance(shape, (list, tuple)) for shape in output_shape)
        shapes = output_shape if several else [output_shape]
        self.outputs = [KerasTensor(shape, output_dtype, self, index) for index, shape in enumerate(shapes)]
        self.output = list(self.outputs) if several else self.outputs[0]

    def argument(self, values):
        """What the layer is called on, given the values of ``inputs``: one, a list, or {name: value} (a list of
        values for a ``listed`` name)."""
        if self.names:
            return named_argument(self.names, self.listed, values)
        return list(values) if self.as_list else values[0]

    def named_inputs(self):
        """{argument name: its KerasTensor, or the list of them for a ``listed`` name}, for a call with names."""
        return self.argument(self.inputs)

    @property
    def parents(self):
        """The nodes that made this node's inputs."""
        return [tensor.node for tensor in self.inputs]


def named_argument(names, listed, values):
    """{name: value} of a call with named inputs, a list of the values for a name in ``listed``."""
    argument = {}
    for name, value in zip(names, values):
        if name in listed:
            argument.setdefault(name, []).append(value)
        else:
            argument[name] = value
    return argument


def _is_symbolic_item(value):
    return isinstance(value, KerasTensor) or getattr(value, "starts_chain", False)


def is_symbolic(value):
    """Whether a layer call on ``value`` is symbolic: a KerasTensor or an InputLayer, or a list (or a dict of
    named inputs) holding one."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return any(_is_symbolic_item(item) for item in value)
    return _is_symbolic_item(value)


def keras_tensor(value, where):
    """``value`` as a KerasTensor: itself, or an InputLayer's tensor (made once, node 0 of that layer)."""
    if isinstance(value, KerasTensor):
        return value
    if getattr(value, "starts_chain", False):
        nodes = value.__dict__.get("_symbolic_nodes")
        return nodes[0].output if nodes else Node(value, (), False, value.batch_input_shape, value.dtype).output
    raise TypeError(f"{where}: expected what calling layers on a keras.Input gave (a KerasTensor) or the Input "
                    f"itself, got {type(value).__name__}")


def _output_shape(shape):
    """A layer's output shape as a tuple, or a list of tuples for a layer with several outputs."""
    if isinstance(shape, list) and shape and all(isinstance(item, (list, tuple)) for item in shape):
        return [tuple(item) for item in shape]
    return tuple(shape)


def call_symbolic(layer, x, options=None):
    """Record ``layer`` called on symbolic ``x`` (a KerasTensor, an Input, a list of them for a merge layer, or
    {argument name: one, or a list of them} with the call's other keyword arguments ``options``, for attention
    and a recurrent layer's initial_state; a list with ``options`` for Attention's use_causal_mask): build the
    layer on the first call, check the shapes of a later one,
    and return the output KerasTensor (a list of them for a layer with several outputs)."""
    where = f"layer {layer.name!r}"
    if isinstance(x, dict):
        names, inputs, shapes = [], [], {}
        listed = [name for name, item in x.items() if isinstance(item, (list, tuple))]
        for name, item in x.items():
            tensors = [keras_tensor(one, f"{where}, argument {name!r}")
                       for one in (item if name in listed else [item])]
            names += [name] * len(tensors)
            inputs += tensors
            shapes[name] = [t.shape for t in tensors] if name in listed else tensors[0].shape
        layer.build_for(shapes)
        output_shape = _output_shape(layer.compute_output_shape(shapes, **options) if options else
                                     layer.compute_output_shape(shapes))
        return Node(layer, inputs, False, output_shape, layer.dtype, names=names, options=options,
                    listed=listed).output
    as_list = isinstance(x, (list, tuple))
    if as_list != getattr(layer, "takes_list", False):
        raise TypeError(f"{where} ({type(layer).__name__}) must be called on "
                        + ("a list of tensors, e.g. Add()([a, b])" if not as_list else
                           "one tensor, not a list (only merge layers such as Add or Concatenate take lists)"))
    inputs = [keras_tensor(item, where) for item in (x if as_list else [x])]
    shape = [tensor.shape for tensor in inputs] if as_list else inputs[0].shape
    layer.build_for(shape)
    output_shape = _output_shape(layer.compute_output_shape(shape, **options) if options else
                                 layer.compute_output_shape(shape))
    return Node(layer, inputs, as_list, output_shape, layer.dtype, options=options).output


# ---------------------------------------------------------------------------------------------
# A model's graph: its nodes in the order they run, and its layers in Keras's order
# ---------------------------------------------------------------------------------------------
class Graph:
    """The nodes between ``inputs`` and ``outputs``: ``nodes`` in the order they run (deepest first, the input
    nodes included), ``layers`` in Keras 3's order (by depth, ties by first visit from the outputs), and
    ``node_numbers``: {node: its number among its layer's nodes in this graph}."""

    def __init__(self, nodes, layers):
        self.nodes, self.layers = nodes, layers
        self._calls = defaultdict(list)         # layer -> its nodes in this graph, in call order
        for node in sorted(nodes, key=lambda node: node.index):
            self._calls[node.layer].append(node)
        self.node_numbers = {node: number for calls in self._calls.values() for number, node in enumerate(calls)}

    def nodes_of(self, layer):
        """The layer's nodes in this graph, in call order."""
        return list(self._calls.get(layer, ()))


def graph_of(inputs, outputs):
    """The Graph from KerasTensors ``inputs`` to ``outputs`` (Keras 3's ``map_graph``). ValueError when an output
    needs an Input that is not among ``inputs``, or two layers share a name."""
    finished, post_order, first_visit = set(), [], {}
    input_ids = {id(tensor) for tensor in inputs}
    for output in outputs:              # depth first from the outputs, a node listed after its parents; a stack,
        stack = [(output, None)]        # not recursion: a graph may be deeper than Python's recursion limit
        while stack:
            tensor, parents = stack[-1]
            node = tensor.node
            if parents is None:         # first reached
                if node in finished:
                    stack.pop()
                    continue
                first_visit.setdefault(node.layer, len(first_visit))
                parents = iter(node.inputs if id(tensor) not in input_ids else ())
                stack[-1] = (tensor, parents)
            parent = next(parents, None)
            if parent is not None:
                stack.append((parent, None))
                continue
            stack.pop()
            if node not in finished:
                finished.add(node)
                post_order.append(node)
    node_depth, layer_depth = {}, {}
    for node in reversed(post_order):   # a node is one deeper than its deepest child; a layer as deep as its nodes
        depth = max(node_depth.setdefault(node, 0), layer_depth.get(node.layer, 0))
        layer_depth[node.layer] = node_depth[node] = depth
        if id(node.outputs[0]) not in input_ids:
            for parent in node.parents:
                node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
    for tensor in inputs:               # an input that no output needs still belongs to the model
        if tensor.layer not in layer_depth:
            layer_depth[tensor.layer], node_depth[tensor.node], first_visit[tensor.layer] = 0, 0, -1
    layers = sorted(layer_depth, key=lambda layer: (-layer_depth[layer], first_visit[layer]))
    nodes = sorted(node_depth, key=lambda node: -node_depth[node])      # stable: ties keep the visit order
    _check_inputs(nodes, inputs)
    _check_unique_names(layers)
    return Graph(nodes, layers)


def _check_inputs(nodes, inputs):
    """Every node the outputs need is computed from ``inputs``: the walk stops at them, so an input node it
    reached that is not one of them is an Input the model was not given."""
    given = {id(tensor.node) for tensor in inputs}
    for node in nodes:
        if not node.inputs and id(node) not in given:
            raise ValueError(f"Graph disconnected: input {node.layer.name!r} is not among the model's inputs "
                             f"{[tensor.layer.name for tensor in inputs]}, but the outputs need it")


def _check_unique_names(layers):
    names = [layer.name for layer in layers]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"The name {name!r} is used {names.count(name)} times in the model: every layer name "
                             "must be unique (give the layers distinct name=...)")
