"""Saving and loading a 20M-parameter model, against the machine's limit and Keras 3, in one run.

Measures the median time of ``model.save("m.h5")`` and ``load_model("m.h5")`` for a Sequential of
Dense layers 2048 -> 4096 -> 2048 -> 1600 (20,061,760 parameters, an 80 MB file), and beside them:

* the machine's limit: h5py writing and reading the same arrays as plain datasets, no model, no checks;
* Keras 3 saving and loading the same model to ``.h5``, when Keras is installed.

Loading checks a great deal (docs/reliability.md: whole-file and per-array checksums, shapes before
allocation); this benchmark keeps the price of that visible.

    python -m benchmarks.saveload [--repeats 9] [--widths 2048,4096,2048,1600] [--out FOLDER]
"""
import argparse
import importlib.util
import os
import tempfile

import h5py

from .common import median_time, write_results


def build(api, widths):
    """Dense layers of ``widths`` (the first is the input size) in ``api`` (nnengine or keras), compiled."""
    layers = [api.layers.Dense(widths[1], activation="relu", input_shape=(widths[0],))]
    layers += [api.layers.Dense(width, activation="relu") for width in widths[2:]]
    model = api.Sequential(layers)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def raw_h5(arrays, path, repeats):
    """(write, read) medians of h5py alone on ``arrays``: what the disk and HDF5 allow."""
    def write():
        with h5py.File(path, "w") as f:
            for index, array in enumerate(arrays):
                f.create_dataset(str(index), data=array)

    def read():
        with h5py.File(path, "r") as f:
            return [f[str(index)][()] for index in range(len(arrays))]
    return median_time(write, repeats, warmup=1)[0], median_time(read, repeats, warmup=1)[0]


def save_and_load(model, load, path, repeats):
    """(save, load) medians for ``model`` and a ``load(path)`` function."""
    return (median_time(lambda: model.save(path), repeats, warmup=1)[0],
            median_time(lambda: load(path), repeats, warmup=1)[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--widths", default="2048,4096,2048,1600")
    parser.add_argument("--out", default=None, help="folder for the results (default benchmarks/results)")
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    import nnengine
    nnengine.utils.set_random_seed(0)
    model = build(nnengine, widths)
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "m.h5")
    save_s, load_s = save_and_load(model, nnengine.load_model, path, args.repeats)
    size = os.path.getsize(path)
    write_s, read_s = raw_h5(model.get_weights(), os.path.join(folder, "raw.h5"), args.repeats)
    results = {"benchmark": "saveload", "widths": widths, "parameters": model.count_params(), "file_bytes": size,
               "nnengine_save_s": save_s, "nnengine_load_s": load_s, "h5py_write_s": write_s, "h5py_read_s": read_s,
               "save_vs_h5py": save_s / write_s, "load_vs_h5py": load_s / read_s}
    rows = [("nnengine save", save_s, f"{save_s / write_s:.1f}x h5py's plain write"),
            ("nnengine load", load_s, f"{load_s / read_s:.1f}x h5py's plain read"),
            ("h5py plain write (limit)", write_s, ""), ("h5py plain read (limit)", read_s, "")]
    if importlib.util.find_spec("keras") is not None:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras
        keras.utils.set_random_seed(0)
        theirs = build(keras, widths)
        keras_save, keras_load = save_and_load(theirs, keras.models.load_model, os.path.join(folder, "k.h5"),
                                               args.repeats)
        results.update(keras_version=keras.__version__, keras_save_s=keras_save, keras_load_s=keras_load)
        rows += [(f"Keras {keras.__version__} save", keras_save, f"{keras_save / save_s:.2f} (Keras / nnengine)"),
                 (f"Keras {keras.__version__} load", keras_load, f"{keras_load / load_s:.2f} (Keras / nnengine)")]
    table = "| measure | median | ratio |\n|---|---|---|\n" + "".join(
        f"| {name} | {seconds * 1e3:.1f} ms | {ratio} |\n" for name, seconds, ratio in rows)
    markdown = (f"# Save and load\n\n{model.count_params():,} parameters ({size / 1e6:.0f} MB file), "
                f"median of {args.repeats}.\n\n{table}")
    paths = write_results("saveload", results, markdown, args.out)
    print(markdown)
    print("written:", *paths)
    return results


if __name__ == "__main__":
    main()
