"""The document's Keras program, run by nnengine: only the import line differs from tf.keras.

The data is random: 1000 samples of 10 normal features, labelled (one-hot, 10
classes) by a random linear "teacher" so that there is something to learn. The
model trains for 10 epochs with Keras's progress display, holds out the last 20%
for validation, prints its accuracy and saves itself to model.h5.

    python examples/document_model.py [--samples 1000] [--epochs 10] [--output model.h5]
"""
import argparse

import numpy as np

import nnengine as tf


def make_data(samples=1000, seed=0):
    """x: (samples, 10) float32 normal; y: (samples, 10) one-hot labels of argmax(x @ teacher)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, 10)).astype(np.float32)
    teacher = rng.standard_normal((10, 10))
    y = tf.keras.utils.to_categorical(np.argmax(x @ teacher, axis=1), num_classes=10)
    return x, y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--output", default="model.h5")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    tf.keras.utils.set_random_seed(args.seed)
    x, y = make_data(args.samples, args.seed)

    # ---- the document's program, as written ----
    model = tf.keras.Sequential([
        tf.keras.layers.Dense(units=64, activation='relu', input_shape=(10,)),
        tf.keras.layers.Dense(units=32, activation='relu'),
        tf.keras.layers.Dense(units=10, activation='softmax')])
    model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
    model.fit(x, y, epochs=args.epochs, batch_size=32, validation_split=0.2)
    performance = model.evaluate(x, y); print("Accuracy:", performance[1])
    model.save(args.output)
    # ---------------------------------------------
    return performance


if __name__ == "__main__":
    main()
