"""Timing and reporting helpers shared by the benchmarks."""
import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def best_time(function, repeats=7, warmup=2):
    """Shortest wall time of ``function()`` in seconds over ``repeats`` runs, after ``warmup`` untimed runs.

    For a machine's limits (peak FLOP/s, bandwidth): the best run is the closest to what the hardware
    can do, where a median would carry the noise of a shared machine into every ratio built on it.
    """
    _, times = median_time(function, repeats, warmup)
    return min(times)


def median_time(function, repeats=7, warmup=2):
    """Median wall time of ``function()`` in seconds over ``repeats`` runs, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def cpu_info():
    """(model name, flags) of the first CPU in /proc/cpuinfo, or (platform's processor or "unknown", ())."""
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        return fields.get("model name") or platform.processor() or "unknown", tuple(fields.get("flags", "").split())
    except OSError:      # pragma: no cover - not Linux
        return platform.processor() or "unknown", ()


def machine():
    """What the numbers were measured on: the CPU by name, its core count, Python, and the date."""
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "processor": cpu_info()[0], "date": time.strftime("%Y-%m-%d")}


def write_results(name, payload, markdown, folder=None):
    """Write <folder>/<name>.json and <folder>/<name>.md (folder: benchmarks/results); return their paths."""
    folder = Path(folder) if folder is not None else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / f"{name}.json", folder / f"{name}.md"
    json_path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


def command_line(name, run, markdown, doc, argv=None, repeats=7):
    """A benchmark's command line: ``--repeats`` and ``--out``; ``run(repeats)`` timed, its results written to
    <out>/<name>.{json,md} and printed. Returns the results."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = run(args.repeats)
    results["seconds"] = round(time.perf_counter() - start, 1)
    text = markdown(results)
    paths = write_results(name, results, text, args.out)
    print(text)
    print("written:", *paths)
    return results
