"""Why skip connections: a deep stack of tanh layers fails to learn two spirals; the same stack with
residual connections (h + layer(h)) learns them. The residual network is written twice, with the
functional API and as a subclassed model: the same layers, the same ops, so they train to the same
numbers, bit for bit. The networks output logits (a linear last layer) and the loss applies the
softmax (``from_logits=True``).

    python examples/residual_spirals.py            # about 3 s
"""
import argparse

import numpy as np

import nnengine as nn

keras = nn.keras


def spirals(samples=1000, seed=0):
    """Two interleaved spirals in the plane, one per class, with a little noise."""
    rng = np.random.default_rng(seed)
    turn = np.sqrt(rng.random(samples)) * 3 * np.pi
    labels = rng.integers(0, 2, samples)
    radius, angle = turn / (3 * np.pi), turn + np.pi * labels
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return (points + rng.normal(0.0, 0.02, points.shape)).astype(np.float32), labels


def plain(depth, width):
    """depth tanh layers, each reading the one before (a Sequential)."""
    return keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(width, activation="tanh"),
                             *[keras.layers.Dense(width, activation="tanh") for _ in range(depth)],
                             keras.layers.Dense(2)])


def residual(depth, width):
    """The same layers, each one's output added to its input: h = h + tanh(h W + b) (the functional API)."""
    inputs = keras.Input(shape=(2,))
    hidden = keras.layers.Dense(width, activation="tanh")(inputs)
    for _ in range(depth):
        hidden = keras.layers.Add()([hidden, keras.layers.Dense(width, activation="tanh")(hidden)])
    return keras.Model(inputs, keras.layers.Dense(2)(hidden))


class Residual(keras.Model):
    """The residual network as a subclassed model: the layers made in __init__, the skips written in call."""

    def __init__(self, depth, width, **kwargs):
        super().__init__(**kwargs)
        self.depth, self.width = depth, width
        self.first = keras.layers.Dense(width, activation="tanh")
        self.blocks = [keras.layers.Dense(width, activation="tanh") for _ in range(depth)]
        self.classes = keras.layers.Dense(2)

    def call(self, x, training=False):
        hidden = self.first(x)
        for block in self.blocks:
            hidden = hidden + block(hidden)
        return self.classes(hidden)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth, "width": self.width}


def train(make_model, x, y, x_test, y_test, epochs, seed=0):
    """(the trained model, its test accuracy), from weights drawn with ``seed``."""
    nn.utils.set_random_seed(seed)
    model = make_model()
    if not model.built:
        model.build((None, 2))              # a subclassed model builds by one call: the weights are drawn now
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    nn.utils.set_random_seed(seed + 1)      # the same shuffles for every model
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model, model.evaluate(x_test, y_test, verbose=0)[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    (x, y), (x_test, y_test) = spirals(), spirals(seed=1)
    results = {}
    for name, make in (("plain", lambda: plain(args.depth, args.width)),
                       ("residual (functional)", lambda: residual(args.depth, args.width)),
                       ("residual (subclassed)", lambda: Residual(args.depth, args.width))):
        results[name] = train(make, x, y, x_test, y_test, args.epochs)
        print(f"{name:<24} test accuracy {results[name][1]:.3f}")
    return results


if __name__ == "__main__":
    main()
