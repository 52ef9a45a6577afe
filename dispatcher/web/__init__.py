"""The HTTP edge: the app factory, request plumbing, and the endpoints by resource."""
