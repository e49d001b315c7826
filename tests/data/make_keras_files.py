"""Write the .h5 files that tests/test_keras_files.py reads, with real Keras (not run by the tests).

    KERAS_BACKEND=torch python tests/data/make_keras_files.py keras3      # in a venv with keras 3 + torch
    python tests/data/make_keras_files.py tf2                             # in a venv with tensorflow 2.15

Each run saves a Sequential model of Dense layers with ``model.save(<name>.h5)``
after a short fit, plus ``<name>.npz`` holding an input batch and Keras's own
predictions for it, so that nnengine's loader is checked against Keras's output.
"""
import sys

import numpy as np


def build_and_save(keras, name):
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 6)).astype("float32")
    y = rng.integers(0, 3, 64)
    model = keras.Sequential([
        keras.Input(shape=(6,)),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(5, activation="tanh"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    model.save(f"{name}.h5")
    np.savez(f"{name}.npz", x=x[:8], y=model.predict(x[:8], verbose=0), labels=y[:8])


if __name__ == "__main__":
    if sys.argv[1] == "keras3":
        import keras
        build_and_save(keras, f"keras{keras.__version__.split('.')[0]}_sequential")
    else:
        import tensorflow as tf
        build_and_save(tf.keras, "tf_keras2_sequential")
