"""A small CNN on scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes).

Needs the examples extra (``pip install -e ".[examples]"``). The same data and split as
examples/digits.py (80% to train, of which the last 10% validate; 20% to test), seen as 8x8x1
images: Conv2D 32 3x3 relu (same) -> BatchNormalization -> MaxPooling 2 -> Conv2D 64 3x3 relu
(same) -> MaxPooling 2 -> Flatten -> Dropout 0.3 -> Dense 10 softmax, Adam. It prints the test
accuracy (at least 0.985) and saves its training curves as a PNG.

    python examples/digits_cnn.py [--epochs 30] [--plot digits_cnn_training.png]
"""
import sys
from pathlib import Path

import nnengine as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import run  # noqa: E402


def build_model():
    """The CNN, compiled with Adam and sparse categorical cross-entropy."""
    layers = nn.layers
    model = nn.Sequential([
        nn.Input(shape=(8, 8, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(argv=None):
    """The CNN on each digit as an 8x8x1 image."""
    return run(argv, __doc__.splitlines()[0], "digits_cnn.py", build_model, (8, 8, 1), 30, "digits_cnn_training.png")


if __name__ == "__main__":
    main()
