"""Reading Keras's functional config (functional_model.py writes it): each layer's calls ('inbound_nodes', in
Keras 3's form {'args': [...], 'kwargs': {...}} or tf.keras 2.x's [[name, node, tensor, kwargs], ...]) made in an
order that has each call's inputs ready, and the tensors its 'input_layers' and 'output_layers' name."""
from collections import defaultdict, deque

from .layers import InputLayer
from .symbolic import KerasTensor, keras_tensor, named_argument

__all__ = ["entry_name", "calls_of", "run_calls", "output_of", "histories", "mask_op", "check_mask_ops", "MASK_OPS"]


def entry_name(entry, position):
    """The name of layer entry ``position`` of a config (its 'name', or its config's); ValueError without one."""
    name = entry.get("name")
    name = name if name is not None else (entry.get("config") or {}).get("name")
    if not isinstance(name, str):
        raise ValueError(f"Functional.from_config: layers[{position}] has no name")
    return name


#: the ops of ``keras.src.ops`` that Keras 3 writes into a functional config to make and combine masks
#: (ConvertToTensor: Attention passes its query's mask on through it)
MASK_OPS = ("NotEqual", "Any", "All", "ExpandDims", "ZerosLike", "OnesLike", "LogicalOr", "LogicalAnd", "Concatenate",
            "ConvertToTensor")


def mask_op(entry, name):
    """For a Keras 3 op entry (``keras.src.ops``) of a mask record: ``(x's reference, value)`` for a NotEqual(x,
    value) leaf (the mask an Embedding(mask_zero=True) or a Masking layer makes of its input), () for an op that
    combines masks (a merge layer's); None for a layer entry. ValueError for any other op: nnengine derives masks
    itself and runs no op from a file."""
    if not str(entry.get("module", "")).startswith("keras.src.ops"):
        return None
    kind = entry.get("class_name")
    if kind not in MASK_OPS:
        raise ValueError(f"layer {name!r:.80}: Keras op {kind!r:.40} is not read by nnengine; it reads only the ops "
                         f"Keras records masks with ({', '.join(MASK_OPS)})")
    if kind != "NotEqual":
        return ()
    nodes = entry.get("inbound_nodes")
    args = nodes[0].get("args") if isinstance(nodes, list) and len(nodes) == 1 and isinstance(nodes[0], dict) \
        else None
    if not isinstance(args, list) or len(args) != 2 or not _is_tensor_config(args[0]) or \
            isinstance(args[1], bool) or not isinstance(args[1], (int, float)):
        raise ValueError(f"layer {name!r:.80}: Keras op 'NotEqual' is read only as a mask, NotEqual(x, a number)")
    return _history((args[0].get("config") or {}).get("keras_history"), name), args[1]


def check_mask_ops(mask_ops, layers, outputs):
    """Every NotEqual(x, value) leaf of the mask records compares a tensor x that an Embedding(mask_zero=True)
    reads (value 0) or a Masking(mask_value=value) reads, so that the masks nnengine propagates from those layers
    are the ones the file names; ValueError otherwise."""
    def reads(layer, tensor):
        return any(tensor in node.inputs for node in layer.__dict__.get("_symbolic_nodes", ()))
    for name, leaf in mask_ops.items():
        if not leaf:
            continue
        tensor, value = output_of(outputs, leaf[0], f"Keras op {name!r:.80}"), leaf[1]
        if not any(reads(layer, tensor) and (getattr(layer, "mask_zero", False) and value == 0 or
                                             getattr(layer, "mask_value", None) == value)
                   for layer in layers.values()):
            raise ValueError(f"Keras op {name!r:.80} makes a mask of a tensor that no Embedding(mask_zero=True) or "
                             "Masking layer reads; nnengine derives masks from those layers only")


def calls_of(entry, name, layer, mask_ops=()):
    """The calls an entry's 'inbound_nodes' list: for each, ([(layer name, node index)], called on a list, the
    argument names of the inputs and the call's options when ``layer`` takes named inputs, else None and {}).
    A ``mask`` argument that names one of ``mask_ops`` is left out: nnengine passes that mask on itself."""
    nodes = entry.get("inbound_nodes", [])
    if not isinstance(nodes, list):
        raise ValueError(f"layer {name!r:.80}: 'inbound_nodes' must be a list")
    calls = []
    for node in nodes:
        if isinstance(node, dict):
            node = _without_derived_mask(node, name, mask_ops)
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
            options = _call_options(node, name, layer)
        elif isinstance(node, list):            # tf.keras 2.x: [[name, node, tensor, kwargs], ...]
            options = {}
            histories = [_history(item[:3] if isinstance(item, list) else None, name) for item in node]
            as_list = len(histories) > 1
            states = _legacy_states(node, name, layer)
            if states:
                calls.append((histories + states, False, (["sequences"] + ["initial_state"] * len(states),
                                                          ["initial_state"]), {}))
                continue
        else:
            raise ValueError(f"layer {name!r:.80}: a call must be an object or a list, got {node!r:.80}")
        if not histories:
            raise ValueError(f"layer {name!r:.80} has a call without inputs")
        calls.append((histories, as_list, None, options))
    return calls


def _call_options(node, name, layer):
    """The keyword options of a Keras 3 call that ``layer`` takes (its ``call_options``: Attention's
    use_causal_mask and return_attention_scores), each a bool; other layers' recorded keywords are not read."""
    kwargs = node.get("kwargs") if isinstance(node.get("kwargs"), dict) else {}
    options = {key: value for key, value in kwargs.items() if key in getattr(layer, "call_options", ())}
    for key, value in options.items():
        if not isinstance(value, bool):
            raise ValueError(f"layer {name!r:.80}: its call's {key} must be true or false, got {value!r:.40}")
    return options


def _legacy_states(node, name, layer):
    """The [name, node, tensor] references of a tf.keras 2.x call's ``initial_state`` keyword (a recurrent layer
    started from an encoder's states), as histories; [] without one. ValueError for a keyword argument that
    references tensors nnengine cannot pass."""
    kwargs = node[0][3] if len(node) == 1 and isinstance(node[0], list) and len(node[0]) > 3 else {}
    kwargs = kwargs if isinstance(kwargs, dict) else {}
    for key, value in kwargs.items():
        if key != "initial_state" and isinstance(value, list):
            raise ValueError(f"layer {name!r:.80}: a call passes tensors as {key!r:.40}, which nnengine does not read")
    states = kwargs.get("initial_state")
    if states is None:
        return []
    if "initial_state" not in getattr(layer, "call_argument_names", ()):
        raise ValueError(f"layer {name!r:.80} is called with an initial_state, which it does not take")
    states = states if isinstance(states, list) and states and isinstance(states[0], list) else [states]
    return [_history(state[:3] if isinstance(state, list) else None, name) for state in states]


def _without_derived_mask(node, name, mask_ops):
    """A Keras 3 call without its ``mask`` keyword when that mask is one of ``mask_ops`` (or None); ValueError
    for a mask that some other layer made, which nnengine cannot pass."""
    kwargs = node.get("kwargs")
    if not isinstance(kwargs, dict) or "mask" not in kwargs:
        return node
    mask = kwargs["mask"]
    if mask is not None and (not _is_tensor_config(mask) or
                             _history((mask.get("config") or {}).get("keras_history"), name)[0] not in mask_ops):
        raise ValueError(f"layer {name!r:.80} is called with a mask that is not an Embedding(mask_zero=True)'s, "
                         "which nnengine cannot pass")
    return {**node, "kwargs": {key: value for key, value in kwargs.items() if key != "mask"}}


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
    tensors.update({key: value for key, value in kwargs.items() if _is_tensors_config(value)})
    options = {key: value for key, value in kwargs.items() if not _is_tensors_config(value)}
    names, histories = [], []
    for key, value in tensors.items():
        for t in (value if isinstance(value, list) else [value]):
            names.append(key)
            histories.append(_history((t.get("config") or {}).get("keras_history"), name))
    listed = [key for key, value in tensors.items() if isinstance(value, list)]
    return histories, False, (names, listed), options


def _is_tensors_config(value):
    """A tensor's config, or a non-empty list of them (a recurrent layer's initial_state)."""
    if isinstance(value, list):
        return bool(value) and all(_is_tensor_config(item) for item in value)
    return _is_tensor_config(value)


def _history(value, name):
    """A [layer name, node index, tensor index] reference as (name, node index, tensor index)."""
    if not isinstance(value, list) or len(value) < 3 or not isinstance(value[0], str) or \
            not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value[1:3]):
        raise ValueError(f"layer {name!r:.80}: an input must be [layer name, node index, tensor index], got "
                         f"{value!r:.80}")
    return value[0], value[1], value[2]


def histories(value):
    """A config's 'input_layers' or 'output_layers': [name, 0, 0] or [[name, 0, 0], ...], as (name, node, tensor)."""
    if isinstance(value, list) and value and all(isinstance(item, list) for item in value):
        return [_history(item, "input_layers/output_layers") for item in value]
    return [_history(value, "input_layers/output_layers")]


def run_calls(layers, calls):
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
            tensors = [output_of(outputs, history, f"layer {name!r:.80}") for history in histories]
            made = outputs.setdefault(name, [])
            made.append(layers[name](**named_argument(*names, tensors), **options) if names else
                        layers[name](tensors if as_list else tensors[0], **options))
            ready.extend(waiting.pop((name, len(made) - 1), []))
    stuck = sorted(name for name, queue in queues.items() if queue)
    if stuck:
        raise ValueError(f"layer {stuck[0]!r:.80} reads a tensor that no call makes (the graph is disconnected or "
                         "has a cycle)")
    return outputs


def output_of(outputs, history, reader):
    """The KerasTensor a [name, node, tensor] reference names; ValueError, naming its ``reader``, when there is
    none."""
    name, index, position = history
    made = outputs.get(name, [])
    result = made[index] if index < len(made) else None
    tensors = result if isinstance(result, list) else [result]
    if result is None or position >= len(tensors) or not isinstance(tensors[position], KerasTensor):
        count = "no call" if result is None else f"{len(tensors)} output(s)"
        raise ValueError(f"{reader} reads output {position} of call {index} of layer {name!r:.80}, which has {count}")
    return tensors[position]


def _missing(outputs, layers, call):
    """The first (layer name, call index) that ``call`` reads and that does not exist yet, or None."""
    for source, index, _ in call[0]:
        if source not in layers:
            raise ValueError(f"a layer reads the output of {source!r:.80}, which is not a layer of the model")
        if index >= len(outputs.get(source, [])):
            return source, index
    return None
