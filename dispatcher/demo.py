"""A small demo: a few grids, a few agents, an intake token, seeded through the admin API.

Seeding uses the same endpoints an operator would.  Tokens are shown once by the server, so
the demo keeps them in ``<data dir>/demo.json`` and a second run reuses them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

GRIDS = [
    ("431127-101-001", "塔峰镇城东社区网格", "grid"),
    ("431127-101-002", "塔峰镇城西社区网格", "grid"),
    ("431127-102-001", "祠堂圩镇虎溪村网格", "grid"),
]

AGENTS = [
    ("李红梅", "13800000001", ["431127-101-001"]),
    ("王建国", "13800000002", ["431127-101-001"]),
    ("赵小兰", "13800000003", ["431127-101-002"]),
    ("陈志强", "13800000004", ["431127-101-002", "431127-101-001"]),
    ("刘春花", "13800000005", ["431127-102-001"]),
]


def seed(base_url: str, admin_token: str, state_file: Path) -> dict[str, Any]:
    """Seed the demo through the admin API (once); return the tokens to print."""
    if state_file.exists():
        saved: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
        return saved
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as http:
        for code, name, level in GRIDS:
            http.post(
                "/v1/admin/grids", json={"code": code, "name": name, "level": level}
            ).raise_for_status()
        intake = http.post("/v1/admin/tokens", json={"kind": "intake", "name": "demo-intake"})
        intake.raise_for_status()
        agents = []
        for name, phone, grids in AGENTS:
            r = http.post("/v1/admin/agents", json={"name": name, "phone": phone, "grids": grids})
            r.raise_for_status()
            agents.append(r.json())
    state = {"intake_token": intake.json()["token"], "agents": agents}
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state, ensure_ascii=False, indent=2), encoding="utf-8")
    return state
