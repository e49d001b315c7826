"""``python -m benchmarks``: every benchmark in one run; writes benchmarks/results/benchmarks.{json,md,png}.

    python -m benchmarks [--quick] [--repeats 7] [--out FOLDER]

The document's fit against Keras 3 (when installed) is written separately by
``python -m benchmarks.keras_fit`` to results/keras_fit.{json,md}.
"""
import argparse
from pathlib import Path

from . import kernels_bench, report, training
from .common import RESULTS, machine, write_results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="GEMM up to n=512 only")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per measurement (default 7)")
    parser.add_argument("--out", default=str(RESULTS), help="folder for benchmarks.{json,md,png} (default %(default)s)")
    args = parser.parse_args(argv)
    results = {"machine": machine(), "torch_version": training.torch_version(),
               "kernels": kernels_bench.run(args.repeats, args.quick), "training": training.run(args.repeats)}
    markdown = report.markdown(results)
    out = Path(args.out)
    paths = write_results("benchmarks", results, markdown, out)
    if report.chart(results, out / "benchmarks.png"):
        paths += (out / "benchmarks.png",)
    print(markdown)
    print("written:", *paths)
    return results


if __name__ == "__main__":
    main()
