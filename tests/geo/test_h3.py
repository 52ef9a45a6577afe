"""H3 grid codes (the optional h3 package)."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from geo import GridSet, H3UnavailableError, h3_grid, h3_grid_for


def test_missing_h3_package_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def without_h3(name: str, package: str | None = None) -> ModuleType:
        if name == "h3":
            raise ImportError("No module named 'h3'")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", without_h3)
    with pytest.raises(H3UnavailableError, match="pip install"):
        h3_grid_for(28.5, 119.5, 9)


def test_code_of_a_point() -> None:
    pytest.importorskip("h3")
    code = h3_grid_for(28.5, 119.5, 9)
    assert code.startswith("h3:") and len(code) == 3 + 15
    assert h3_grid_for(28.5, 119.5, 9) == code
    assert h3_grid_for(28.5, 119.6, 9) != code


def test_bad_arguments() -> None:
    pytest.importorskip("h3")
    with pytest.raises(ValueError):
        h3_grid_for(28.5, 119.5, 16)
    with pytest.raises(ValueError):
        h3_grid_for(95.0, 119.5, 9)
    with pytest.raises(ValueError):
        h3_grid("331124000000000")


def test_h3_grids_route_points() -> None:
    h3 = pytest.importorskip("h3")
    centre = h3_grid_for(28.5, 119.5, 8)
    ring = sorted("h3:" + c for c in h3.grid_disk(centre.removeprefix("h3:"), 1))
    grids = GridSet.from_grids([h3_grid(code) for code in ring])
    route = grids.locate(28.5, 119.5)
    assert route is not None and route.grid == centre
    assert grids.neighbours(centre) == set(ring) - {centre}
