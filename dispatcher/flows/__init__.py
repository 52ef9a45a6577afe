"""The flows: core rules + Redis + Postgres, one module per flow and per background loop."""
