"""What data parallelism costs: the gradient allreduce of the MNIST-size model on 2 processes, against the
same step without it and against a bare mpi4py Allreduce of the same buffer, all in one run.

    NUMBA_NUM_THREADS=1 mpiexec -n 2 python -m benchmarks.distributed [--out FOLDER]

(One thread per process: two processes share this 2-core machine.) Each measurement is the median of
repeated timings, every process starting together (a Barrier first). Rank 0 writes
benchmarks/results/distributed.{json,md}:
  * step_local_s: one training step (forward, loss, backward, Adam; batch 128 per process) alone;
  * step_distributed_s: the same step with DistributedOptimizer (the allreduce inside);
  * allreduce_s: nnengine's allreduce_average of the model's gradients (2.7 MB of float32, one bucket);
  * bare_allreduce_s: one in-place mpi4py Allreduce of a float32 buffer of the same size;
  * latency_s and bandwidth: a 1-element Allreduce, and the bytes per second of a 64 MiB one: the
    alpha and beta of the ring model in docs/distributed.md.
"""
import argparse
import statistics
import time

import numpy as np

SIZES, BATCH = (784, 512, 512, 10), 128


def timed(function, comm, repeats, inner=1):
    """Median seconds per call over ``repeats`` synchronized timings of ``inner`` calls."""
    function()
    times = []
    for _ in range(repeats):
        comm.Barrier()
        start = time.perf_counter()
        for _ in range(inner):
            function()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(comm.allgather(statistics.median(times)))


def step_function(distributed):
    """A train_on_batch closure of the MNIST-size model, with or without DistributedOptimizer."""
    import nnengine as nn
    import nnengine.distributed as hvd
    nn.utils.set_random_seed(0)
    model = nn.Sequential([nn.Input((SIZES[0],)), nn.layers.Dense(SIZES[1], activation="relu"),
                           nn.layers.Dense(SIZES[2], activation="relu"), nn.layers.Dense(SIZES[3], activation="softmax")])
    optimizer = nn.optimizers.Adam()
    model.compile(optimizer=hvd.DistributedOptimizer(optimizer) if distributed else optimizer,
                  loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(hvd.rank())
    x, y = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32), rng.integers(0, 10, BATCH)
    model.train_on_batch(x, y)
    return (lambda: model.train_on_batch(x, y)), model


def run(repeats=15):
    """Every measurement; the results (identical on every rank)."""
    from mpi4py import MPI

    import nnengine.distributed as hvd
    hvd.init()
    comm = hvd._comm()
    local, model = step_function(False)
    distributed, _ = step_function(True)
    gradients = [np.ones(w.shape, np.float32) for w in model.trainable_weights]
    buffer = np.ones(sum(g.size for g in gradients), np.float32)
    one, big = np.ones(1, np.float32), np.ones(16 << 20, np.float32)
    results = {
        "processes": comm.Get_size(), "parameters": int(buffer.size), "batch_per_process": BATCH,
        "step_local_s": timed(local, comm, repeats, 5),
        "step_distributed_s": timed(distributed, comm, repeats, 5),
        "allreduce_s": timed(lambda: hvd.allreduce_average(gradients), comm, repeats, 5),
        "bare_allreduce_s": timed(lambda: comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM), comm, repeats, 5),
        "latency_s": timed(lambda: comm.Allreduce(MPI.IN_PLACE, one, op=MPI.SUM), comm, repeats, 50),
        "big_allreduce_s": timed(lambda: comm.Allreduce(MPI.IN_PLACE, big, op=MPI.SUM), comm, 5),
    }
    results["bandwidth_bytes_per_s"] = big.nbytes / results["big_allreduce_s"]
    results["overhead"] = results["step_distributed_s"] / results["step_local_s"] - 1
    results["of_bare_bandwidth"] = results["bare_allreduce_s"] / results["allreduce_s"]
    return results


def markdown(r):
    """The results as Markdown."""
    return "\n".join([
        f"# Data parallelism on {r['processes']} processes (MNIST-size model, {r['parameters']:,} parameters, "
        f"batch {r['batch_per_process']} per process)", "", "Medians, one run.", "",
        "| measurement | time | |", "|---|---|---|",
        f"| training step alone | {r['step_local_s'] * 1e3:.2f} ms | |",
        f"| training step with DistributedOptimizer | {r['step_distributed_s'] * 1e3:.2f} ms | "
        f"overhead {r['overhead']:+.1%} (target < 10%) |",
        f"| nnengine allreduce of the gradients ({r['parameters'] * 4 / 1e6:.1f} MB) | {r['allreduce_s'] * 1e3:.3f} ms | "
        f"{r['of_bare_bandwidth']:.0%} of the bare Allreduce's bandwidth (target >= 80%) |",
        f"| bare mpi4py Allreduce, same buffer | {r['bare_allreduce_s'] * 1e3:.3f} ms | |",
        f"| 1-element Allreduce (latency, alpha) | {r['latency_s'] * 1e6:.1f} us | |",
        f"| 64 MiB Allreduce | {r['big_allreduce_s'] * 1e3:.1f} ms | {r['bandwidth_bytes_per_s'] / 1e9:.2f} GB/s |",
        ""])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="benchmarks.distributed", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    results = run(args.repeats)
    import nnengine.distributed as hvd
    if hvd.rank() == 0:
        from .common import write_results
        text = markdown(results)
        paths = write_results("distributed", results, text, args.out)
        print(text)
        print("written:", *paths)
    return results


if __name__ == "__main__":
    main()
