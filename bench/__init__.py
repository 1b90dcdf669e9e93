"""Benchmarks and the fault soak: ``python -m bench <fanout|imports|webhooks|dashboard|soak|report|all>``."""
