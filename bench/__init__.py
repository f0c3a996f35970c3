"""Benchmark: the receiver against a minimal handler of the same design (``make bench``)."""
