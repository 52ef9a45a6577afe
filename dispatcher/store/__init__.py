"""Postgres: the store (:mod:`.store`), its parts by the data they own, and numbered migrations."""
