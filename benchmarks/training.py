"""Training-step time, peak memory and start-up time: nnengine (numba), nnengine (numpy reference),
a hand-written numpy loop and PyTorch CPU, side by side in one run.

A step is one batch: forward, softmax cross-entropy, backward, Adam update
(Keras's defaults: lr 1e-3, epsilon 1e-7). Each framework and model runs in its
own process, so its peak resident memory (ru_maxrss) is its own.

nnengine runs its compiled step (``jit_compile="auto"``, the default) in its steady state, the plan
lowered to one numba function (as it is after ``LOWER_AFTER_REPLAYS`` replays, or at once when the plan
cache holds it: the warm-up lowers it); as "nnengine-numba-replay", the same plan replayed in Python
(never lowered); as "nnengine-aot-replay", that replay on the ahead-of-time kernels (``kernels/cpu/aot.py``,
which serve a process's first steps without numba); as "nnengine-numba-eager", the same model with
``jit_compile=False``. Models:

* document: 10 -> 64 relu -> 32 relu -> 10, batch 32;
* mnist:    784 -> 512 relu -> 512 relu -> 10, batch 256 (about 0.82 GFLOP per step).

Cold start is a fresh process with an empty numba cache (NUMBA_CACHE_DIR pointing at a new
directory) that imports nnengine and runs the document model's first training step; warm start is the
same with the cache that the cold run filled. The document's
whole program is timed as a process too, cold and warm, both with the ahead-of-time kernels that
``pip install`` built (``kernels/cpu/aot.py``: no numba loaded) and without them.
"""
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

MODELS = {"document": ((10, 64, 32, 10), 32), "mnist": ((784, 512, 512, 10), 256)}
#: the repository, where every child process runs
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMEWORKS = ("nnengine-numba", "nnengine-numba-replay", "nnengine-aot-replay", "nnengine-numba-eager",
              "nnengine-numpy", "numpy-loop", "torch")


def _data(sizes, batch):
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, sizes[0])).astype(np.float32), rng.integers(0, sizes[-1], batch)


def nnengine_model(sizes, device, jit_compile="auto", metrics=None):
    """The benchmark's Keras-style model (relu layers, softmax output, Adam) on ``device``.

    ``jit_compile`` as in ``compile``: "auto" replays compiled steps (the default), False runs eagerly;
    ``metrics`` as in ``compile``.
    """
    import nnengine as nn
    nn.utils.set_random_seed(0)
    layers = [nn.layers.Dense(sizes[1], activation="relu", input_shape=(sizes[0],))]
    layers += [nn.layers.Dense(n, activation="relu") for n in sizes[2:-1]]
    layers.append(nn.layers.Dense(sizes[-1], activation="softmax"))
    model = nn.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=metrics, jit_compile=jit_compile)
    return model.to(device)


def _nnengine_step(sizes, batch, device, jit_compile="auto", lowered=True):
    """nnengine's training step. ``lowered`` True: in its steady state, the plan running as one compiled function
    (compiled at its first replay, during the warm-up); False: the plan replayed in Python; None: as a program
    runs it by default (no warm-up)."""
    import nnengine as nn
    from nnengine import capture
    nn.set_default_device(device)
    model = nnengine_model(sizes, device, jit_compile)
    x, y = _data(sizes, batch)
    if lowered is not None:
        capture.LOWER_AFTER_REPLAYS, capture.LOWERING_ENABLED = 1, lowered
        for _ in range(5):                  # eager (the optimizer's slots), capture, verify, replays
            model.train_on_batch(x, y)
        for _ in range(300):                # right after a compilation, the first few hundred steps run slower
            model.train_on_batch(x, y)
    return lambda: model.train_on_batch(x, y)


def _numpy_loop_step(sizes, batch):
    """The same model by hand in numpy: the loop a careful numpy user would write."""
    rng = np.random.default_rng(0)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6 / (n_in + n_out))
        params += [rng.uniform(-limit, limit, (n_in, n_out)).astype(np.float32), np.zeros(n_out, np.float32)]
    moments = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
    x, y = _data(sizes, batch)
    rows = np.arange(batch)
    state = {"t": 0}

    def step():
        activations = [x]
        for i in range(0, len(params), 2):
            z = activations[-1] @ params[i] + params[i + 1]
            activations.append(np.maximum(z, 0) if i + 2 < len(params) else z)
        z = activations[-1]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        loss = -np.log(p[rows, y]).mean()          # every framework's step reports its loss
        grad = p
        grad[rows, y] -= 1
        grad /= batch
        grads = [None] * len(params)
        for i in range(len(params) - 2, -1, -2):
            grads[i], grads[i + 1] = activations[i // 2].T @ grad, grad.sum(axis=0)
            if i:
                grad = (grad @ params[i].T) * (activations[i // 2] > 0)
        state["t"] += 1
        t = state["t"]
        alpha = 1e-3 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        for param, g, (m, v) in zip(params, grads, moments):
            m += 0.1 * (g - m)
            v += 0.001 * (g * g - v)
            param -= np.float32(alpha) * m / (np.sqrt(v) + np.float32(1e-7))
        return float(loss)
    return step


def _torch_step(sizes, batch, device="cpu"):
    """PyTorch eager's step for the same model on ``device`` ("cpu" or "cuda"), data already there."""
    import torch
    torch.manual_seed(0)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i + 2 < len(sizes):
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device)
    x, y = (torch.from_numpy(a).to(device) for a in _data(sizes, batch))
    return torch_training_step(model, x, y)


def torch_training_step(model, x, y):
    """PyTorch eager's training step of ``model`` on (x, y): forward, cross-entropy, backward, Adam (Keras's
    epsilon), the loss read as a float (as nnengine's step reads its loss)."""
    import torch
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def _choose_kernels(framework):
    """"nnengine-aot-replay": the ahead-of-time kernels, serving however long the run; every other
    nnengine row: numba's kernels (the tier serves only a process's first ``aot.SERVE_CALLS`` calls,
    and its gain is at start-up, timed by ``start_times``)."""
    from nnengine.kernels.cpu import aot
    if framework == "nnengine-aot-replay":
        if not aot.available():
            raise RuntimeError(f"no ahead-of-time kernels to measure: {aot.REASON}")
        aot.SERVE_CALLS = float("inf")
    else:
        aot.SERVE_CALLS = 0


def measure_one(framework, model, repeats):
    """Run in a child process: the median step time after warm-up, and the process's peak RSS."""
    sizes, batch = MODELS[model]
    if framework == "torch":
        step = _torch_step(sizes, batch)
    elif framework == "numpy-loop":
        step = _numpy_loop_step(sizes, batch)
    else:
        _choose_kernels(framework)
        device = "numpy" if framework == "nnengine-numpy" else "cpu"
        step = _nnengine_step(sizes, batch, device, False if framework.endswith("-eager") else "auto",
                              lowered=not framework.endswith("-replay"))
    step_s = median_step_time(step, inner=50 if model == "document" else 3, repeats=repeats)
    return {"framework": framework, "model": model, "step_s": step_s, "peak_rss_mb": peak_rss_mb()}


def median_step_time(step, inner, repeats, warmup=5):
    """Median seconds per call of ``step()``: ``repeats`` timings of ``inner`` calls each, after warm-up."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            step()
        times.append((time.perf_counter() - start) / inner)
    times.sort()
    return times[len(times) // 2]


def steps_against_torch(models, nnengine_step, torch_step, repeats):
    """[{model, nnengine_s, torch_s, torch_over_nnengine}] for each model name: the median step of each framework
    in this process (``*_step(name)`` returns the step), PyTorch on as many threads as numba."""
    import numba
    import torch
    torch.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    rows = []
    for name in models:
        ours = median_step_time(nnengine_step(name), 20, repeats)
        theirs = median_step_time(torch_step(name), 20, repeats)
        rows.append({"model": name, "nnengine_s": ours, "torch_s": theirs, "torch_over_nnengine": theirs / ours})
    return rows


def steps_table(title, note, first_column, rows, digits=2):
    """The Markdown page of ``steps_against_torch``'s rows: a title, a note, one row per model."""
    lines = [f"# {title}", "", note, "", f"| {first_column} | nnengine ms | PyTorch ms | PyTorch / nnengine |",
             "|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['nnengine_s'] * 1e3:.{digits}f} | {r['torch_s'] * 1e3:.{digits}f} | "
              f"{r['torch_over_nnengine']:.2f}x |" for r in rows]
    return "\n".join(lines + [""])


def peak_rss_mb():
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that across exec from the parent."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):     # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(args, env=None):
    result = subprocess.run([sys.executable, "-m", "benchmarks.training", *args], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, **(env or {})}, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def torch_available():
    """True when PyTorch can be imported here (an optional benchmark dependency)."""
    try:
        import importlib.util
        return importlib.util.find_spec("torch") is not None
    except ImportError:          # pragma: no cover
        return False


def torch_version():
    """PyTorch's version when it is installed here, else None (it is an optional peer, never a dependency)."""
    if not torch_available():
        return None
    from importlib.metadata import version
    return version("torch")


def start_times(cold_runs=3, warm_runs=5):
    """Cold and warm start in fresh processes: import nnengine and run the document model's first step; and
    the document's whole program as a process, cold and warm, with the ahead-of-time kernels as installed
    and on numba's kernels alone (``NNENGINE_AOT=0``), beside the same program in PyTorch. Medians: of
    ``cold_runs`` runs for a cold start, each with an empty numba cache of its own, else of ``warm_runs``."""
    program = os.path.join("examples", "document_model.py")
    runs = {name: [] for name in ("cold_start_s", "warm_start_s", "program_cold_s", "program_warm_s",
                                  "program_cold_jit_s", "program_warm_jit_s")}
    for run in range(cold_runs):
        for suffix, aot_env in (("", {}), ("_jit", {"NNENGINE_AOT": "0"})):
            with tempfile.TemporaryDirectory() as cache:
                env = {"NUMBA_CACHE_DIR": cache, **aot_env}
                output = ["--output", os.path.join(cache, "model.h5")]
                runs[f"program_cold{suffix}_s"].append(_process_seconds([program, *output], env))
                if run == 0:                  # the cache the cold run filled serves the warm runs
                    runs[f"program_warm{suffix}_s"] = [_process_seconds([program, *output], env)
                                                       for _ in range(warm_runs)]
        with tempfile.TemporaryDirectory() as cache:
            env = {"NUMBA_CACHE_DIR": cache}
            runs["cold_start_s"].append(_child(["--start"], env)["elapsed_s"])
            if run == 0:
                runs["warm_start_s"] = [_child(["--start"], env)["elapsed_s"] for _ in range(warm_runs)]
    times = {name: float(np.median(values)) for name, values in runs.items()}
    if torch_available():
        times["torch_program_s"] = float(np.median([_process_seconds(["-m", "benchmarks.torch_document"], {})
                                                    for _ in range(cold_runs)]))
    return times


def _process_seconds(args, env):
    """Wall seconds of ``python ARGS`` as a whole process, interpreter start-up included."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, check=True,
                   env={**os.environ, **env}, timeout=600)
    return time.perf_counter() - start


def _start():
    """The child of start_times: time from before importing nnengine to the end of the first step."""
    start = time.perf_counter()
    step = _nnengine_step(*MODELS["document"], "cpu", lowered=None)
    step()
    return {"elapsed_s": time.perf_counter() - start}


def run(repeats=7):
    """Every framework on every model (torch only when installed), plus start times."""
    from nnengine.kernels.cpu import aot
    frameworks = [f for f in FRAMEWORKS if (f != "torch" or torch_available())
                  and (f != "nnengine-aot-replay" or aot.available())]
    steps = [_child(["--one", framework, model, str(repeats)]) for model in MODELS for framework in frameworks]
    return {"steps": steps, "start": start_times(), "torch_installed": "torch" in frameworks}


if __name__ == "__main__":
    if sys.argv[1] == "--one":
        print(json.dumps(measure_one(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    elif sys.argv[1] == "--start":
        print(json.dumps(_start()))
