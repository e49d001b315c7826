"""A small CNN on scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes).

Needs the examples extra (``pip install -e ".[examples]"``). The same data and split as
examples/digits.py (80% to train, of which the last 10% validate; 20% to test), seen as 8x8x1
images: Conv2D 32 3x3 relu (same) -> BatchNormalization -> MaxPooling 2 -> Conv2D 64 3x3 relu
(same) -> MaxPooling 2 -> Flatten -> Dropout 0.3 -> Dense 10 softmax, Adam. It prints the test
accuracy (at least 0.985) and saves its training curves as a PNG.

    python examples/digits_cnn.py [--epochs 30] [--plot digits_cnn_training.png]
"""
import argparse
import sys
from pathlib import Path

import nnengine as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import EXTRA_HINT, load_data, missing_modules, plot_history  # noqa: E402


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--plot", default="digits_cnn_training.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)
    missing = missing_modules(args.plot)
    if missing:
        names = ", ".join("scikit-learn" if m == "sklearn" else m for m in missing)
        print(f"examples/digits_cnn.py needs {names}, from the examples extra: {EXTRA_HINT}", file=sys.stderr)
        raise SystemExit(2)
    nn.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_data(args.seed)
    images_train, images_test = x_train.reshape(-1, 8, 8, 1), x_test.reshape(-1, 8, 8, 1)
    model = build_model()
    history = model.fit(images_train, y_train, epochs=args.epochs, batch_size=32, validation_split=0.1,
                        verbose=args.verbose)
    loss, accuracy = model.evaluate(images_test, y_test, verbose=0)
    print(f"Test loss: {loss:.4f}  Test accuracy: {accuracy:.4f}")
    if args.plot:
        plot_history(history, args.plot)
        print(f"Training curves saved to {args.plot}")
    return accuracy


if __name__ == "__main__":
    main()
