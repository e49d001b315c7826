"""``python -m benchmarks``: run every benchmark and write benchmarks/results/*.json and *.md."""
from . import keras_fit

BENCHMARKS = {"keras_fit": keras_fit.main}


def main():
    for name, run in BENCHMARKS.items():
        print(f"== {name}")
        run([])


if __name__ == "__main__":
    main()
