"""Benchmarks (``make bench``). Each prints ``name: value (reference: value, ratio)`` lines."""
