"""``nnengine.keras``: the Keras-style API under the name Keras programs use.

A program written for ``tf.keras`` or Keras 3 runs with only its import changed::

    import nnengine as tf
    model = tf.keras.Sequential([tf.keras.layers.Dense(10, activation="softmax", input_shape=(4,))])

Every name here is the same object as at the top of nnengine
(``nnengine.keras.layers is nnengine.layers``).
"""
from . import activations, callbacks, initializers, layers, losses, metrics, models, optimizers, regularizers, utils
from . import constraints, saving
from . import keras_ops as ops
from .layers import Input
from .models import Model, Sequential

__all__ = ["Sequential", "Model", "Input", "activations", "callbacks", "constraints", "initializers", "layers", "losses", "metrics",
           "models", "ops", "optimizers", "regularizers", "saving", "utils"]
