"""The pure rules: no I/O, no clocks (``now`` is an argument), plain function calls."""
