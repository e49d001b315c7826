"""Helpers of the Keras-style API: seeding, layer names, and Keras-like utilities.

``set_random_seed(seed)`` seeds every source of randomness nnengine uses
(weight initializers, dropout masks, fit's shuffling, validation splits) plus
numpy's and Python's global generators, as ``keras.utils.set_random_seed`` does.
"""
import random
import re
import threading

import numpy as np

from .data import PyDataset, timeseries_dataset_from_array  # noqa: F401 - keras.utils's, as Keras 3 has them
from .dtypes import checked_cast
from .tensor_base import TensorBase

_state = {"rng": np.random.default_rng()}
_name_counts = {}
_name_lock = threading.Lock()


def set_random_seed(seed):
    """Seed nnengine's generator and numpy's and Python's global ones, so that runs repeat."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"set_random_seed: seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"set_random_seed: seed must be >= 0, got {seed}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    _state["rng"] = np.random.default_rng(int(seed))


def global_rng():
    """The numpy Generator behind initializers without a seed, dropout and shuffling."""
    return _state["rng"]


def snake_case(name):
    """'GlobalAveragePooling1D' -> 'global_average_pooling1d', 'Conv2D' -> 'conv2d', as Keras names layers: an
    underscore before each capitalised word, and between a lower-case letter and a capital (not after a digit)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix):
    """Keras's automatic names: 'dense', then 'dense_1', 'dense_2', ... for each prefix."""
    with _name_lock:                    # layers made in two threads at once still get distinct names
        count = _name_counts.get(prefix, 0)
        _name_counts[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def lookup(kind, name, table, valid_names=None):
    """``table[name]``, or a ValueError that names the ``kind`` and lists the valid names."""
    found = table.get(name)
    if found is None:
        raise ValueError(f"Unknown {kind} {name!r}; valid names: {', '.join(sorted(valid_names or table))}")
    return found


def resolve_keras_object(kind, identifier, base, classes, by_name):
    """None, a name (``by_name``), Keras's config dict ({"class_name": one of ``classes``, "config": {...}}) or
    an instance of ``base``, as an instance of ``base`` (or None): how constraints and regularizers are given."""
    if identifier is None or isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        return lookup(kind, identifier, by_name)()
    if isinstance(identifier, dict):
        cls = lookup(kind, identifier.get("class_name"), classes)
        config = identifier.get("config") or {}
        if not isinstance(config, dict):
            raise TypeError(f"{kind} {cls.__name__}: its config must be a dict, got {config!r:.60}")
        return cls.from_config(config)
    raise TypeError(f"a {kind} must be None, a name, a config dict or a {base.__name__}, got "
                    f"{type(identifier).__name__}")


def serialize_keras_object(module, instance):
    """Keras 3's dict for ``instance`` of keras.``module`` (its class name and get_config()), or None."""
    if instance is None:
        return None
    return {"module": f"keras.{module}", "class_name": type(instance).__name__, "config": instance.get_config(),
            "registered_name": None}


def clear_session():
    """Reset the automatic layer and model name counters (``keras.utils.clear_session``)."""
    _name_counts.clear()


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer class labels: (n,) -> (n, num_classes), as ``keras.utils.to_categorical``."""
    labels = np.asarray(y)
    if labels.dtype.kind not in "iub" and not (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
        raise TypeError(f"to_categorical: y must hold integer class labels, got dtype {labels.dtype}")
    labels = checked_cast(labels, np.int64, "to_categorical: y")
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if num_classes is not None and (isinstance(num_classes, (bool, np.bool_)) or
                                    not isinstance(num_classes, (int, np.integer)) or num_classes < 1):
        raise TypeError(f"to_categorical: num_classes must be a positive int or None, got {num_classes!r}")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"to_categorical: labels must lie in [0, {num_classes}), got "
                         f"[{labels.min()}, {labels.max()}]")
    return np.eye(num_classes, dtype=dtype)[labels]


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Sequences of different lengths as one array (n, maxlen, ...), as ``keras.utils.pad_sequences``.

    Each sequence is cut to its last ``maxlen`` items (``truncating="pre"``) or its first (``"post"``) and
    filled up with ``value`` before it (``padding="pre"``) or after it (``"post"``); ``maxlen`` defaults to the
    longest length. Items may be arrays of one shape (the trailing axes of the result).
    """
    for name, given in (("padding", padding), ("truncating", truncating)):
        if given not in ("pre", "post"):
            raise ValueError(f"pad_sequences: {name} must be 'pre' or 'post', got {given!r}")
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
        raise ValueError(f"pad_sequences: sequences must be a list of sequences, got {type(sequences).__name__}")
    items = []
    for position, sequence in enumerate(sequences):
        if isinstance(sequence, (str, bytes)) or not hasattr(sequence, "__len__"):
            raise ValueError(f"pad_sequences: sequences[{position}] is not a sequence: {sequence!r:.60}")
        items.append(np.asarray(sequence, dtype=dtype if len(sequence) else None))
    sample_shape = next((item.shape[1:] for item in items if len(item)), ())
    if maxlen is None:
        maxlen = max((len(item) for item in items), default=0)
    elif isinstance(maxlen, (bool, np.bool_)) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0:
        raise ValueError(f"pad_sequences: maxlen must be an int >= 0 or None, got {maxlen!r}")
    padded = np.full((len(items), maxlen, *sample_shape), value, dtype=dtype)
    for position, item in enumerate(items):
        kept = item[:0] if not maxlen else item[-maxlen:] if truncating == "pre" else item[:maxlen]
        if not len(kept):
            continue
        if kept.shape[1:] != sample_shape:
            raise ValueError(f"pad_sequences: sequences[{position}] has items of shape {kept.shape[1:]}, the others "
                             f"{sample_shape}")
        if padding == "pre":
            padded[position, maxlen - len(kept):] = kept
        else:
            padded[position, :len(kept)] = kept
    return padded


def normalize(x, axis=-1, order=2):
    """x divided by its ``order``-norm along ``axis`` (a zero norm taken as 1), as ``keras.utils.normalize``."""
    x = np.asarray(x)
    norms = np.atleast_1d(np.linalg.norm(x, order, axis))
    norms[norms == 0] = 1
    return x / np.expand_dims(norms, axis)


def to_host(value):
    """``value`` as a host numpy array: a tensor's values copied from its device, anything else as numpy reads it."""
    return value.numpy() if isinstance(value, TensorBase) else np.asarray(value)


def zeros_sample(shape, dtype):
    """One sample of zeros for ``build(input_shape)``: the batch axis (and any unknown size) set to 1."""
    return np.zeros([1 if size is None else size for size in (1, *shape[1:])], dtype=dtype)
