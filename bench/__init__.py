"""Benchmarks that print their figures (make bench); see docs/performance.md."""
