"""The simulate stage: synthetic event histories for demos and benchmarks."""
