"""The parts of a Sequential's stack or a functional model's graph: layers, and models used as layers (Keras's
nested models, ``Sequential([base, Dense(10)])`` or ``encoder(inputs)``). How a part runs, which layers a
model of parts has, and a part's entry in a model config, read and written as Keras does.

A model used as a layer keeps its own structure: the outer model lists it as one layer (its ``layers``,
summary and files), while its weights, regularizers and constraints are the layers' inside it (``leaves_of``),
so training, the compiled step and device moves see plain layers.
"""
import contextlib
import contextvars

from . import saving
from .layer_base import holding, stored_weights, weight_source
from .layers import LAYER_CLASSES
from .masks import mask_of
from .model_base import Model
from .subclassed import leaves_of

__all__ = ["run_part", "leaves_of", "output_layer_of", "layer_from_config", "layer_entry", "holds", "MAX_NESTING"]


def run_part(part, x, training, penalties, return_logits=False, options=None):
    """A part of a model (a layer, or a model used as one) run on ``x``: a model's forward pass, whose layers
    add their activity penalties to ``penalties``; a layer's call, then its own penalty. ``return_logits``: the
    part (a model: its output layer) stops at its logits, with no activity penalty (the trainer asks so).
    ``options``: the call's keyword arguments recorded in a functional model (attention's use_causal_mask)."""
    if isinstance(part, Model):
        return part._forward(x, training=training, return_logits=return_logits, penalties=penalties)
    if return_logits:
        return part.pass_mask(x, part.call(x, training=training, return_logits=True), mask_of(x))
    out = part.invoke(x, training, **options) if options else part.invoke(x, training)
    Model._note_activity(part, out, penalties)
    return out


def output_layer_of(part):
    """The layer that computes a part's output (a model's own output layer, or None), for the trainer's
    softmax-into-cross-entropy fusion."""
    return part._output_layers[0] if isinstance(part, Model) else part


def layer_from_config(where, entry, known):
    """The layer of a model config's entry {'class_name': ..., 'config': {...}}, its class from ``known``
    ({name: class}); errors start with ``where``."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
        raise TypeError(f"{where} must be a dict {{'class_name': ..., 'config': {{...}}}}, got {entry!r:.80}")
    class_name = entry.get("class_name")
    registered = entry.get("registered_name")
    if class_name in ("Sequential", "Functional") and isinstance((entry.get("config") or {}).get("layers"), list):
        return _nested_model_from_config(class_name, entry["config"], known)
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


#: the most models a config may nest inside one another (Keras's models nest a few levels; a file that nests
#: thousands would otherwise exhaust Python's recursion)
MAX_NESTING = 32
_NESTING = contextvars.ContextVar("nnengine_model_nesting", default=0)


def _nested_model_from_config(class_name, config, known):
    """A model used as a layer, from its entry's config. A loader's weight source hands its layers the weights
    stored for it (``nested``: in its own group, as Keras stores them)."""
    depth = _NESTING.get() + 1
    if depth > MAX_NESTING:
        raise ValueError(f"the config nests models more than {MAX_NESTING} deep")
    nested = getattr(weight_source(), "nested", None)
    with holding(_NESTING, depth), \
            stored_weights(nested(config.get("name"), config)) if nested is not None else contextlib.nullcontext():
        return Model._kinds[class_name].from_config(config, custom_objects=known)


def holds(model, target):
    """Whether ``target`` is ``model`` or one of the models inside it, at any depth."""
    return model is target or any(isinstance(part, Model) and holds(part, target) for part in model.layers)


def layer_entry(layer):
    """A layer's entry in a model config: {'class_name', 'config'}, and a custom class's 'registered_name'; a
    model used as a layer: its kind and its config, as Keras writes it."""
    if isinstance(layer, Model):
        functional = layer.keras_class_name == "Functional"
        return {"module": "keras.src.models.functional" if functional else "keras",
                "class_name": layer.keras_class_name, "config": layer.get_config(),
                "registered_name": "Functional" if functional else None}
    entry = {"class_name": type(layer).__name__, "config": layer.get_config()}
    if type(layer) not in LAYER_CLASSES.values():
        entry["registered_name"] = saving.registered_name(type(layer))
    return entry
