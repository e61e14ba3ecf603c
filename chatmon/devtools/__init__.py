"""Developer tools for chatmon: fakes and helpers used by tests, benchmarks and demos."""
