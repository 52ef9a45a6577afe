"""``python -m loadtest.locust``: one scenario, headless (:mod:`loadtest.locust.run`)."""

import sys

from loadtest.locust.run import main

sys.exit(main())
