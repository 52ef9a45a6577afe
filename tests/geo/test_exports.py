"""The public surface of geo: what __all__ lists exists, and nothing else is promised."""

from __future__ import annotations

import geo


def test_all_names_exist() -> None:
    for name in geo.__all__:
        assert hasattr(geo, name), name


def test_public_surface() -> None:
    assert set(geo.__all__) == {
        "DEFAULT_TOLERANCE_M2",
        "DEFAULT_TOLERANCE_RATIO",
        "LEVELS",
        "AddressMatch",
        "AgentRow",
        "Candidate",
        "GeoError",
        "Geometry",
        "Grid",
        "GridImportError",
        "GridSet",
        "H3UnavailableError",
        "ImportProblem",
        "InputKind",
        "Level",
        "MatchStatus",
        "Method",
        "RosterError",
        "RosterProblem",
        "Route",
        "feature_collection",
        "format_agents_csv",
        "grid_from_feature",
        "grid_to_feature",
        "h3_grid",
        "h3_grid_for",
        "load_demo_agents",
        "load_demo_county",
        "load_feature_collection",
        "load_grid_file",
        "parse_agents_csv",
        "parse_level",
    }


def test_exceptions_share_one_root() -> None:
    for error in (geo.GridImportError, geo.RosterError, geo.H3UnavailableError):
        assert issubclass(error, geo.GeoError)
