"""Timing and reporting helpers shared by the benchmarks."""
import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


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


def machine():
    """What the numbers were measured on."""
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "processor": platform.processor() or "unknown"}


def write_results(name, payload, markdown):
    """Write results/<name>.json and results/<name>.md; return their paths."""
    RESULTS.mkdir(exist_ok=True)
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path
