"""Embedding -> GlobalAveragePooling1D -> Dense on a small text-like task (synthetic, stated as such).

No data set of text ships inside an installed package here, so the task is generated, and it is
learnable by exactly this model: "reviews" are sequences of 24 word ids from a vocabulary of 500;
40 ids are positive words and 40 negative ones, the rest neutral; a review's label says whether it
holds more positive than negative words (ties are left out). The model must learn, from the labels
alone, an embedding that puts positive and negative words on opposite sides of the Dense layer's
boundary; averaging the embeddings then counts them. It prints the test accuracy (at least 0.95)
and the words whose embeddings the model found most positive and most negative.

    python examples/text_embedding.py [--epochs 15] [--samples 4000]
"""
import argparse

import numpy as np

import nnengine as nn

VOCABULARY, LENGTH = 500, 24
POSITIVE, NEGATIVE = range(1, 41), range(41, 81)       # word ids; 0 is padding, the rest are neutral


def make_reviews(samples, seed):
    """(ids (samples, LENGTH) int32, labels (samples,)): label 1 when positive words outnumber negative ones."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCABULARY, (samples * 2, LENGTH))
    emotional = rng.random(ids.shape) < 0.25                       # a quarter of the words carry sentiment
    ids[emotional] = rng.integers(1, 81, int(emotional.sum()))
    positive = np.isin(ids, POSITIVE).sum(axis=1)
    negative = np.isin(ids, NEGATIVE).sum(axis=1)
    keep = positive != negative
    return ids[keep][:samples].astype(np.int32), (positive > negative)[keep][:samples].astype(np.int64)


def build_model():
    """Embedding(500, 16) -> mean over the words -> Dense(2, softmax), with Adam."""
    model = nn.Sequential([
        nn.Input(shape=(LENGTH,), dtype="int32"),
        nn.layers.Embedding(VOCABULARY, 16),
        nn.layers.GlobalAveragePooling1D(),
        nn.layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=nn.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def word_scores(model):
    """Each word's push towards 'positive': its embedding through the Dense layer (logit 1 - logit 0)."""
    embeddings = model.layers[0].get_weights()[0]
    kernel = model.layers[2].get_weights()[0]
    return embeddings @ (kernel[:, 1] - kernel[:, 0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)
    nn.utils.set_random_seed(args.seed)
    x_train, y_train = make_reviews(args.samples, args.seed)
    x_test, y_test = make_reviews(args.samples // 4, args.seed + 1)
    model = build_model()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, validation_split=0.1, verbose=args.verbose)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    scores = word_scores(model)
    order = np.argsort(scores)
    print(f"Test loss: {loss:.4f}  Test accuracy: {accuracy:.4f}")
    print(f"Most positive ids: {order[-8:][::-1].tolist()} (true positives are 1-40)")
    print(f"Most negative ids: {order[:8].tolist()} (true negatives are 41-80)")
    return accuracy, scores


if __name__ == "__main__":
    main()
