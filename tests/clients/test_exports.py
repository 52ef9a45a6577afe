"""The public surface of ``clients`` is exactly what ``__all__`` lists."""

from __future__ import annotations

import clients

EXPECTED = {
    "AgentClient",
    "ApiClient",
    "ApiError",
    "ClientError",
    "Connecting",
    "ConnectionClosedError",
    "ConnectionRejectedError",
    "FrameRejectedError",
    "TrackingClient",
}


def test_all_is_the_expected_public_surface() -> None:
    """Adding or dropping a public name is a deliberate change to this list."""
    assert set(clients.__all__) == EXPECTED
    assert len(clients.__all__) == len(EXPECTED)


def test_every_exported_name_exists_and_belongs_to_clients() -> None:
    """Each name in ``__all__`` resolves, and is defined in a ``clients`` module."""
    for name in clients.__all__:
        member = getattr(clients, name)
        assert member.__module__.startswith("clients."), name


def test_errors_share_one_root() -> None:
    """Every exported exception derives from ``ClientError``."""
    errors = [getattr(clients, n) for n in clients.__all__ if n.endswith("Error")]
    assert errors
    for error in errors:
        assert issubclass(error, clients.ClientError)
