"""The registry of custom classes, as Keras's ``keras.saving.register_keras_serializable``.

A model file names its classes; loading looks a name up here (or in ``custom_objects``) and never imports
anything to find it. The registry lives in a module of its own, below the layers and saving.py, so that a layer
that deserializes a part of itself (RNN's cell) can look classes up without an import cycle.
"""
from . import arguments

__all__ = ["REGISTERED", "register_keras_serializable", "get_registered_object", "registered_name",
           "registered_classes"]

#: '<package>>Name' -> the class registered under it
REGISTERED = {}


def register_keras_serializable(package="Custom", name=None):
    """Class decorator, as Keras's: register a custom layer (or loss, metric) under '<package>>name'.

    A model whose config names the class loads without custom_objects. Only classes registered in this
    process are found: the file names a class, and nothing is imported to find it.
    """
    package = arguments.text("register_keras_serializable", "package", package)
    if ">" in package:
        raise ValueError(f"register_keras_serializable: package must not contain '>', got {package!r}")

    def register(cls):
        key = f"{package}>{name or cls.__name__}"
        if key in REGISTERED and REGISTERED[key] is not cls:
            raise ValueError(f"register_keras_serializable: {key!r} is already registered to another class")
        REGISTERED[key] = cls
        cls._registered_name = key
        return cls
    return register


def get_registered_object(name, custom_objects=None):
    """The class registered (or given in ``custom_objects``) under ``name``, or None."""
    return (custom_objects or {}).get(name) or REGISTERED.get(name)


def registered_name(cls):
    """The name a custom class is saved under: '<package>>Name' when registered, else its class name."""
    return getattr(cls, "_registered_name", cls.__name__)


def registered_classes():
    """Every registered class by its key ('<package>>Name') and by its bare class name (a Keras file names it
    either way)."""
    known = {}
    for key, cls in REGISTERED.items():
        known.setdefault(key, cls)
        known.setdefault(key.split(">", 1)[1], cls)
    return known
