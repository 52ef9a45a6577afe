"""The benchmarks: one ``bangban serve`` process measured on this machine.

Entry points (each ``python -m``; ``--help`` lists the knobs):

- ``loadtest.bench`` (:mod:`loadtest.bench.suite`, ``make bench``): fan-out, contention,
  throughput and the websockets ceiling;
- :mod:`loadtest.bench.capacity` (``make capacity``): agents one process holds at p99 offer
  latency <= 100 ms, and memory per connection;
- :mod:`loadtest.bench.locate`: the ``geo`` lookups (no server);
- :mod:`loadtest.bench.ceiling`: the bare websockets server the suite compares against;
- :mod:`loadtest.bench.bare`: the bare same-stack server (the durable steps only) the suite
  compares throughput and fan-out against.

The modules starting with ``_`` (agent sockets, HTTP filers, the report, the processes
run against) are the suite's internals.
"""

__all__ = ["bare", "capacity", "ceiling", "locate", "suite"]
