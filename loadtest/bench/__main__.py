"""``python -m loadtest.bench``: the benchmark suite (:mod:`loadtest.bench.suite`)."""

import sys

from loadtest.bench.suite import main

sys.exit(main())
