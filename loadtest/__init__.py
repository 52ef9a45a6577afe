"""Load tests and benchmarks.  ``python -m loadtest.bench`` (``make bench``) is the benchmark."""
