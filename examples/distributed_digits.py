"""Data-parallel training on scikit-learn's digits over MPI: every process trains on its part of the data.

    mpiexec -n 2 python examples/distributed_digits.py [--epochs 30] [--save digits.h5]

Each process takes its shard of the training images (``hvd.shard``), gradients are averaged across
processes before every update (``hvd.DistributedOptimizer``), rank 0's starting weights are broadcast
to all, the epoch logs are averaged, and only rank 0 prints the progress bar and saves the model. The
learning rate is scaled by the number of processes, as Horovod advises, since each step sees
size x batch_size samples. On several machines, list them in a hostfile (one host per line) and run
``mpiexec -n 8 -f hostfile python examples/distributed_digits.py``. Needs ``pip install -e ".[mpi,examples]"``.
"""
import argparse

import nnengine as nn
import nnengine.distributed as hvd
from digits import load_data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--save", default="distributed_digits.h5")
    args = parser.parse_args(argv)
    hvd.init()
    (x_train, y_train), (x_test, y_test) = load_data()
    x_local, y_local = hvd.shard(x_train, y_train)
    nn.utils.set_random_seed(hvd.rank())                  # different starts: the broadcast makes them rank 0's
    model = nn.Sequential([nn.Input(shape=(64,)), nn.layers.Dense(128, activation="relu"),
                           nn.layers.Dense(64, activation="relu"), nn.layers.Dense(10, activation="softmax")])
    optimizer = hvd.DistributedOptimizer(nn.optimizers.Adam(0.001 * hvd.size()))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_local, y_local, epochs=args.epochs, batch_size=32, verbose=2,
              callbacks=[hvd.BroadcastGlobalVariablesCallback(0), hvd.MetricAverageCallback()])
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    if hvd.rank() == 0:
        print(f"{hvd.size()} processes, test accuracy: {accuracy:.4f}")
        model.save(args.save)
    return accuracy


if __name__ == "__main__":
    main()
