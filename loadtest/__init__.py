"""Load tests and benchmarks, in two families.

- :mod:`loadtest.bench`: the benchmarks (``make bench``, ``make capacity``), which start
  their own servers and measure one ``bangban serve`` process.
- :mod:`loadtest.locust`: the locust kit (``make loadtest``): scenarios, users, the runner
  and the consistency check.

Both get Redis and Postgres from :class:`dispatcher.services.Backends`, as the tests do.
"""
