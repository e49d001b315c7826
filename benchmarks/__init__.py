"""nnengine's benchmarks: ``python -m benchmarks`` runs them and writes benchmarks/results/.

Every figure is a ratio to a reference measured in the same run, reported as the
median of repeated runs after warm-up (see benchmarks/README.md).
"""
