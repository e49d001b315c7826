"""``python -m benchmarks``: every benchmark in one run; writes benchmarks/results/benchmarks.{json,md,png}.

    python -m benchmarks [--quick] [--repeats 7]

The document's fit against Keras 3 (when installed) is written separately by
``python -m benchmarks.keras_fit`` to results/keras_fit.{json,md}.
"""
import argparse

from . import kernels_bench, report, training
from .common import RESULTS, machine, write_results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="GEMM up to n=512 only")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    results = {"machine": machine(), "kernels": kernels_bench.run(args.repeats, args.quick),
               "training": training.run(args.repeats)}
    markdown = report.markdown(results)
    paths = write_results("benchmarks", results, markdown)
    if report.chart(results, RESULTS / "benchmarks.png"):
        paths += (RESULTS / "benchmarks.png",)
    print(markdown)
    print("written:", *paths)
    return results


if __name__ == "__main__":
    main()
