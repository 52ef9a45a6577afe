"""Bangban: a real-time grab-order dispatch server."""
