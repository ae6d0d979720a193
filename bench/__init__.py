"""Benchmarks of issue 7 (B1-B8): `make bench`, or `python bench/run.py --help`."""
