"""Record Keras 3's behaviour for the image and text layers, for tests/test_layers_keras_parity.py.

    KERAS_BACKEND=torch python tests/data/make_layer_references.py     # keras 3 + torch (not run by the tests)

For each model below it writes ``layers_<name>.h5`` (Keras's own save of the model with its initial
weights and compiled optimizer) and ``layers_<name>.npz`` holding:
  x, y                 a batch and its targets;
  predict              Keras's inference output for x with the initial weights;
  sgd_weights_*        the weights after ONE SGD(learning_rate=1) step on (x, y): initial - gradient;
  adam_losses          the losses of 4 full-batch Adam(0.01) steps from the initial weights;
  adam_weights_*       every weight (moving statistics included) after those 4 steps;
  adam_predict         the inference output after them.
``layers_cnn.h5`` is also the Keras-written CNN file that nnengine must load and predict as Keras does.
"""
import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

L = keras.layers


def models():
    """name -> (builder, x, y, loss)."""
    rng = np.random.default_rng(0)
    images = rng.standard_normal((6, 8, 8, 1)).astype("float32")
    return {
        "cnn": (lambda: keras.Sequential([
            keras.Input((8, 8, 1)),
            L.Conv2D(4, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(6, (2, 3), strides=(1, 2), activation="tanh"),
            L.AveragePooling2D(2, padding="same"),
            L.Flatten(),
            L.Dense(3, activation="softmax")]),
            images, np.eye(3, dtype="float32")[rng.integers(0, 3, 6)], "categorical_crossentropy"),
        "conv_strided_dilated": (lambda: keras.Sequential([
            keras.Input((9, 7, 2)),
            L.Conv2D(3, 3, dilation_rate=2, padding="same", activation="sigmoid"),
            L.Conv2D(2, (3, 2), strides=(2, 3), padding="same"),
            L.MaxPooling2D((2, 1), strides=(1, 2), padding="same"),
            L.GlobalMaxPooling2D(),
            L.Dense(2, activation="softmax")]),
            rng.standard_normal((5, 9, 7, 2)).astype("float32"), rng.integers(0, 2, 5),
            "sparse_categorical_crossentropy"),
        "batchnorm": (lambda: keras.Sequential([
            keras.Input((4, 4, 2)),
            L.BatchNormalization(momentum=0.9),
            L.Conv2D(3, 1, activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(5, use_bias=False),      # a bias before BN has a zero gradient: Adam would amplify noise
            L.BatchNormalization(),
            L.Activation("relu"),
            L.Dense(2, activation="softmax")]),
            rng.standard_normal((7, 4, 4, 2)).astype("float32") * 2 + 1, rng.integers(0, 2, 7),
            "sparse_categorical_crossentropy"),
        "layernorm": (lambda: keras.Sequential([
            keras.Input((6,)),
            L.Dense(5),
            L.LayerNormalization(),
            L.Dense(3, activation="softmax")]),
            rng.standard_normal((8, 6)).astype("float32") * 3, rng.integers(0, 3, 8), "sparse_categorical_crossentropy"),
        "embedding": (lambda: keras.Sequential([
            keras.Input((5,), dtype="int32"),
            L.Embedding(11, 4),
            L.GlobalAveragePooling1D(),
            L.Dense(2, activation="softmax")]),
            rng.integers(0, 11, (6, 5)).astype("int32"), rng.integers(0, 2, 6), "sparse_categorical_crossentropy"),
        "conv1d": (lambda: keras.Sequential([
            keras.Input((12,)),
            L.Reshape((6, -1)),
            L.Conv1D(3, 3, dilation_rate=2, padding="same", activation="relu"),
            L.MaxPooling1D(2),
            L.Conv1D(2, 2),
            L.GlobalAveragePooling1D(),
            L.Dense(2, activation="softmax")]),
            rng.standard_normal((6, 12)).astype("float32"), rng.integers(0, 2, 6), "sparse_categorical_crossentropy"),
        "conv1d_causal": (lambda: keras.Sequential([
            keras.Input((9, 2)),
            L.Conv1D(3, 3, dilation_rate=2, padding="causal", activation="tanh"),
            L.Conv1D(2, 2, strides=2, padding="causal"),
            L.GlobalMaxPooling1D(),
            L.Dense(2, activation="softmax")]),
            rng.standard_normal((5, 9, 2)).astype("float32"), rng.integers(0, 2, 5), "sparse_categorical_crossentropy"),
    }


def weights_dict(prefix, model):
    return {f"{prefix}_{i}": w for i, w in enumerate(model.get_weights())}


def record(name, build, x, y, loss):
    keras.utils.set_random_seed(len(name))
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    initial = model.get_weights()
    model.save(f"layers_{name}.h5")
    out = {"x": x, "y": y, "predict": model.predict(x, verbose=0)}

    sgd = build()
    sgd.set_weights(initial)
    sgd.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss)
    sgd.train_on_batch(x, y)
    out.update(weights_dict("sgd_weights", sgd))

    model.set_weights(initial)
    out["adam_losses"] = np.array([model.train_on_batch(x, y) for _ in range(4)])
    out.update(weights_dict("adam_weights", model))
    out["adam_predict"] = model.predict(x, verbose=0)
    np.savez(f"layers_{name}.npz", **out)


if __name__ == "__main__":
    for name, (build, x, y, loss) in models().items():
        record(name, build, x, y, loss)
        print("wrote", name)
