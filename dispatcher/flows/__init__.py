"""Flows: the core's decisions carried out against Redis and Postgres."""
