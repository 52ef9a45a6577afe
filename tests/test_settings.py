"""Settings from the environment: the workflow's clocks, the limit, the data files."""

from __future__ import annotations

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
        }
    )
    assert (s.ws_deflate, s.gc_freeze_interval, s.gc_full_every) == (True, 0.0, 3600.0)
    d = Settings.from_env({})
    assert (d.ws_deflate, d.gc_freeze_interval, d.gc_full_every) == (False, 1.0, 21600.0)


@pytest.mark.parametrize(
    "env",
    [
        {"BANGBAN_WS_DEFLATE": "maybe"},
        {"BANGBAN_GC_FREEZE_INTERVAL": "0.01"},
        {"BANGBAN_GC_FREEZE_INTERVAL": "-1"},
        {"BANGBAN_GC_FULL_EVERY": "0.5"},  # more often than the rounds it is one of
    ],
)
def test_bad_connection_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


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
