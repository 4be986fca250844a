"""Benchmarks: documented commands that print their figures (see bench/README.md)."""
