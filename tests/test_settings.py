"""Settings from the environment: the workflow's clocks, the limit, the data files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from dispatcher.exceptions import ConfigError
from dispatcher.settings import Settings


def test_workflow_defaults() -> None:
    s = Settings.from_env({})
    assert (s.escalate_after, s.close_after, s.max_held) == (86400.0, 7 * 86400.0, 5)
    assert s.catalog_path is None and s.calendar_path is None


def test_workflow_settings_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "BANGBAN_ESCALATE_AFTER": "0.5",
            "BANGBAN_CLOSE_AFTER": "3600",
            "BANGBAN_MAX_HELD": "8",
            "BANGBAN_CATALOG": "/srv/county/catalog.json",
            "BANGBAN_CALENDAR": "/srv/county/calendar.json",
        }
    )
    assert (s.escalate_after, s.close_after, s.max_held) == (0.5, 3600.0, 8)
    assert s.catalog_path == Path("/srv/county/catalog.json")
    assert s.calendar_path == Path("/srv/county/calendar.json")


@pytest.mark.parametrize(
    "env",
    [
        {"BANGBAN_ESCALATE_AFTER": "0"},
        {"BANGBAN_CLOSE_AFTER": "-1"},
        {"BANGBAN_MAX_HELD": "0"},
        {"BANGBAN_MAX_HELD": "many"},
    ],
)
def test_bad_workflow_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_connection_settings_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "BANGBAN_WS_DEFLATE": "yes",
            "BANGBAN_GC_FREEZE_INTERVAL": "0",
            "BANGBAN_GC_FULL_EVERY": "3600",
            "BANGBAN_WS_PING_INTERVAL": "0",
        }
    )
    assert (s.ws_deflate, s.gc_freeze_interval, s.gc_full_every) == (True, 0.0, 3600.0)
    assert s.ws_ping_interval == 0
    d = Settings.from_env({})
    assert (d.ws_deflate, d.gc_freeze_interval, d.gc_full_every) == (False, 1.0, 21600.0)
    assert d.ws_ping_interval == 20


@pytest.mark.parametrize(
    "env",
    [
        {"BANGBAN_WS_DEFLATE": "maybe"},
        {"BANGBAN_GC_FREEZE_INTERVAL": "0.01"},
        {"BANGBAN_GC_FREEZE_INTERVAL": "-1"},
        {"BANGBAN_GC_FULL_EVERY": "0.5"},  # more often than the rounds it is one of
        {"BANGBAN_WS_PING_INTERVAL": "0.5"},
        {"BANGBAN_WS_PING_INTERVAL": "-1"},
    ],
)
def test_bad_connection_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_points_settings_from_the_environment() -> None:
    d = Settings.from_env({})
    assert (d.followup_share, d.inactive_days, d.fast_claim_ms, d.min_reaction_ms) == (
        Decimal("0.1"), 30, 300, 0,
    )  # fmt: skip
    s = Settings.from_env(
        {
            "BANGBAN_FOLLOWUP_SHARE": "0.25",
            "BANGBAN_INACTIVE_DAYS": "60",
            "BANGBAN_FAST_CLAIM_MS": "250",
            "BANGBAN_REGULAR_CV": "0.05",
            "BANGBAN_REGULAR_MIN_CLAIMS": "20",
            "BANGBAN_MIN_REACTION_MS": "200",
            "BANGBAN_FAIRPLAY_FLUSH": "2",
        }
    )
    assert s.followup_share == Decimal("0.25") and s.inactive_days == 60
    assert (s.fast_claim_ms, s.regular_cv, s.regular_min_claims) == (250, 0.05, 20)
    assert (s.min_reaction_ms, s.fairplay_flush) == (200, 2.0)


@pytest.mark.parametrize(
    "env",
    [
        {"BANGBAN_FOLLOWUP_SHARE": "0"},
        {"BANGBAN_FOLLOWUP_SHARE": "1.5"},
        {"BANGBAN_FOLLOWUP_SHARE": "NaN"},
        {"BANGBAN_FOLLOWUP_SHARE": "0.00015"},
        {"BANGBAN_FOLLOWUP_SHARE": "ten percent"},
        {"BANGBAN_INACTIVE_DAYS": "0"},
        {"BANGBAN_FAST_CLAIM_MS": "-1"},
        {"BANGBAN_MIN_REACTION_MS": "100000"},
        {"BANGBAN_REGULAR_CV": "2"},
        {"BANGBAN_REGULAR_MIN_CLAIMS": "1"},
        {"BANGBAN_FAIRPLAY_FLUSH": "0"},
    ],
)
def test_bad_points_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_log_file_setting() -> None:
    assert Settings.from_env({}).log_file is None
    assert Settings.from_env({"BANGBAN_LOG_FILE": ""}).log_file is None
    got = Settings.from_env({"BANGBAN_LOG_FILE": "logs/bangban.log"}).log_file
    assert got == Path("logs/bangban.log")


def test_sms_settings_are_read_and_checked() -> None:
    s = Settings.from_env(
        {
            "BANGBAN_SMS_URL": "http://gw/send",
            "BANGBAN_SMS_SECRET": "k",
            "BANGBAN_SMS_QUIET": "22:00-07:00",
            "BANGBAN_SMS_APPLICANT": "replied, rate",
            "BANGBAN_SMS_OFFERS": "ALL",
            "BANGBAN_PUBLIC_URL": "https://bangban.example/",
        }
    )
    assert (s.sms_url, s.sms_offers, s.public_url) == (
        "http://gw/send",
        "all",
        "https://bangban.example",
    )
    assert s.applicant_texts == {"replied", "rate"}
    for bad in (
        {"BANGBAN_SMS_URL": "http://gw/send"},  # unsigned
        {"BANGBAN_SMS_QUIET": "late"},
        {"BANGBAN_SMS_APPLICANT": "everything"},
        {"BANGBAN_SMS_OFFERS": "some"},
        {"BANGBAN_SMS_QUIET_MODE": "drop"},
    ):
        try:
            Settings.from_env(bad)
        except ConfigError:
            continue
        raise AssertionError(f"accepted {bad}")
