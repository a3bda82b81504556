"""The audioscape-async benchmarks: `python -m benchmarks [--smoke] [--only NAME]`.

Every benchmark compares its variants in one run (interleaved rounds,
medians) and reports a ratio against a target; see `benchmarks/results.md`.
"""
