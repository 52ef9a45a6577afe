"""The demo: the synthetic county 青山县 (19 townships, 400 villages), its agents and an
intake token, seeded through the admin API exactly as an operator would.

Tokens are shown once by the server, so the demo keeps them in ``<data dir>/demo.json`` and a
second run reuses them (and seeds nothing again).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from dispatcher.exceptions import ConfigError
from geo.demo import demo_agents_text, demo_county_text

SHOWN_AGENTS = 5
SAMPLE_ORDER = {
    "item": "MZ-001",
    "address": "青山县城东街道双田社区",
    "text": "我要给母亲申请低保",
    "applicant": {"name": "张三", "phone": "13700000000"},
}


def seed(base_url: str, admin_token: str, state_file: Path) -> dict[str, Any]:
    """Seed the demo through the admin API (once); return the tokens to print."""
    if state_file.exists():
        saved: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
        return saved
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        county = http.post(
            "/v1/admin/grids/import?source=demo",
            content=demo_county_text().encode(),
            headers={"Content-Type": "application/geo+json"},
        )
        county.raise_for_status()
        roster = http.post(
            "/v1/admin/agents/import",
            content=demo_agents_text().encode(),
            headers={"Content-Type": "text/csv"},
        )
        if roster.status_code == 409:
            # The agents are there and their tokens are not: the database outlived the data
            # folder's demo.json (a checkout deleted and made again at the same path reuses
            # a root user's embedded cluster).  Tokens are shown once, so they cannot be had
            # again: say so instead of failing with a traceback.
            raise ConfigError(
                f"the database already holds the demo's agents, but {state_file} (their"
                " tokens, shown once) is gone: `make clean` starts the demo afresh (it deletes"
                " the embedded Redis and Postgres data), or point DATABASE_URL at another"
                " database"
            )
        roster.raise_for_status()
        intake = http.post("/v1/admin/tokens", json={"kind": "intake", "name": "demo-intake"})
        intake.raise_for_status()
        # One order to follow on the applicant's page (and to grab in the agents' app).
        sample = http.post(
            "/v1/orders",
            json=SAMPLE_ORDER,
            headers={"Authorization": f"Bearer {intake.json()['token']}"},
        )
        sample.raise_for_status()
    state = {
        "intake_token": intake.json()["token"],
        "grids": county.json(),
        "agents": roster.json()["agents"],
        "sample_order": {"id": sample.json()["id"], "tracking_url": sample.json()["tracking_url"]},
    }
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
    state_file.chmod(0o600)
    return state
