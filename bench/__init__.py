"""Benchmarks for tap-maptable: request budget, requests per pipeline, speed, memory, a peer.

Run `python -m bench.run` (see bench/README.md). Nothing here is a test: no figure passes or
fails a build; RESULTS.md compares each figure with its target.
"""
