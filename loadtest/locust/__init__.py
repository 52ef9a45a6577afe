"""The locust kit: claim contention, county and reconnect-storm scenarios against a server.

Entry points:

- ``python -m loadtest.locust SCENARIO`` (:mod:`loadtest.locust.run`, ``make loadtest``):
  one scenario headless, then the consistency check;
- ``locust -f loadtest/locust/locustfile.py``: the users, for locust's own command line or
  web UI (:mod:`loadtest.locust.locustfile`);
- :mod:`loadtest.locust.consistency` (also ``python -m``): every ``won`` checked against
  Redis and Postgres;
- :mod:`loadtest.locust.scenarios`: the scenarios (pure; shared by the runner, the users and
  the tests).

``_agent`` (an agent user's websocket session) and ``_roster`` (grids and agents made through
the admin API) are the locustfile's internals.  Nothing here imports locust or gevent: locust
monkey-patches the process that imports it, so only the locustfile's process may.
"""

__all__ = ["consistency", "locustfile", "run", "scenarios"]
