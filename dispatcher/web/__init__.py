"""The HTTP edge: endpoints that decode, call the core or the store, and encode."""
