"""Why recurrence: a text-like task where word order matters, learned by an LSTM and not by a bag of words.

The task is generated (no text data set ships inside an installed package here) and stated as such:
"reviews" of 12 word ids from a vocabulary of 60. Ids 1-10 are positive words, 11-20 negative ones and 21 is
"not", which flips the word right after it; the rest are neutral. Each review holds one to three sentiment
words, each negated half the time, and its label says whether the flipped sentiments sum above zero (ties
are left out). Averaging the word embeddings (examples/text_embedding.py's model) sees which words occur
but not which one a "not" stands before, and a linear boundary on that average cannot tell "not good" from
"good": it stays at chance (about 0.5), while an LSTM reading the words in order learns the task (1.000 on
this machine). The program trains both on the same data and prints their test accuracies.

    python examples/text_lstm.py [--epochs 12] [--samples 6000]
"""
import argparse

import numpy as np

import nnengine as nn

VOCABULARY, LENGTH = 60, 12
POSITIVE, NEGATIVE, NOT = range(1, 11), range(11, 21), 21          # word ids; 0 is padding


def make_reviews(samples, seed):
    """(ids (samples, LENGTH) int32, labels (samples,)): 1 when the sentiments, each flipped by a "not" right
    before it, sum above zero."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    while len(ids) < samples:
        words = list(rng.integers(22, VOCABULARY, LENGTH))          # neutral words
        total = 0
        for _ in range(rng.integers(1, 4)):
            sign = rng.choice([1, -1])
            word = rng.choice(POSITIVE if sign > 0 else NEGATIVE)
            position = rng.integers(1, LENGTH)
            negated = rng.random() < 0.5
            if words[position] in (NOT, *POSITIVE, *NEGATIVE) or words[position - 1] in (*POSITIVE, *NEGATIVE):
                continue                                            # keep the sentiment words apart
            words[position] = word
            words[position - 1] = NOT if negated else words[position - 1]
            total += -sign if negated else sign
        if total != 0:
            ids.append(words)
            labels.append(int(total > 0))
    return np.asarray(ids, np.int32), np.asarray(labels, np.int64)


def bag_of_words_model():
    """Embedding -> mean over the words -> Dense: sees which words occur, not their order."""
    return nn.Sequential([nn.Input(shape=(LENGTH,), dtype="int32"), nn.layers.Embedding(VOCABULARY, 16),
                          nn.layers.GlobalAveragePooling1D(), nn.layers.Dense(2, activation="softmax")])


def recurrent_model():
    """Embedding -> LSTM (its last state, after reading every word in order) -> Dense."""
    return nn.Sequential([nn.Input(shape=(LENGTH,), dtype="int32"), nn.layers.Embedding(VOCABULARY, 16),
                          nn.layers.LSTM(32), nn.layers.Dense(2, activation="softmax")])


def train(model, train_data, test_data, epochs, verbose):
    """Fit with Adam, return the test accuracy."""
    model.compile(optimizer=nn.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(*train_data, epochs=epochs, batch_size=64, validation_split=0.1, verbose=verbose)
    return model.evaluate(*test_data, verbose=0)[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--samples", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)
    nn.utils.set_random_seed(args.seed)
    train_data, test_data = make_reviews(args.samples, args.seed), make_reviews(1000, args.seed + 1)
    accuracies = {}
    for name, make in (("bag of words", bag_of_words_model), ("LSTM", recurrent_model)):
        if args.verbose:
            print(f"-- {name}")
        accuracies[name] = train(make(), train_data, test_data, args.epochs, args.verbose)
    for name, accuracy in accuracies.items():
        print(f"{name:>12}: test accuracy {accuracy:.3f}")
    return accuracies


if __name__ == "__main__":
    main()
