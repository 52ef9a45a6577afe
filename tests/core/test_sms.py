"""The pure rules of texting: codes, replies, phones, quiet hours, caps, backoff, signatures."""

from __future__ import annotations

import random

from dispatcher.core import sms
from dispatcher.core.orders import ClaimOutcome

H = 3_600_000
OFFSET = 8 * 60  # UTC+8


def at_local(hour: float, day: int = 0) -> int:
    """Epoch ms of local ``hour`` on day ``day`` after 2026-06-01 (UTC+8)."""
    base = 1_780_243_200_000  # 2026-06-01T00:00:00+08:00
    return base + day * 24 * H + round(hour * H)


def test_codes_use_only_unambiguous_characters() -> None:
    rng = random.Random(7)
    codes = {sms.new_code(rng) for _ in range(2000)}
    assert all(len(c) == 4 and set(c) <= set(sms.CODE_ALPHABET) for c in codes)
    assert not set("0O1IL2Z5S8BGQ") & set(sms.CODE_ALPHABET)
    assert len(codes) > 1900  # random enough that retries on a clash are rare


def test_replies_are_read_leniently() -> None:
    assert sms.parse_reply("A7K2") == "A7K2"
    assert sms.parse_reply(" a7k2抢单") == "A7K2"
    assert sms.parse_reply("回复 Ａ７Ｋ２ 抢单") == "A7K2"  # full-width letters and digits
    assert sms.parse_reply("好的") is None
    assert sms.parse_reply("") is None


def test_phone_numbers_match_with_or_without_the_country_code() -> None:
    assert "13900000001" in sms.phone_candidates("+86 139-0000-0001")
    assert "13900000001" in sms.phone_candidates("008613900000001")
    assert "+8613900000001" in sms.phone_candidates("13900000001")


def test_quiet_hours_wrap_midnight_and_end_in_the_morning() -> None:
    quiet = sms.parse_quiet("22:00-07:00")
    assert sms.quiet_until(at_local(21.99), quiet, OFFSET) is None
    assert sms.quiet_until(at_local(22), quiet, OFFSET) == at_local(7, day=1)
    assert sms.quiet_until(at_local(3), quiet, OFFSET) == at_local(7)
    assert sms.quiet_until(at_local(7), quiet, OFFSET) is None
    lunch = sms.parse_quiet("12:00-13:30")
    assert sms.quiet_until(at_local(12.5), lunch, OFFSET) == at_local(13.5)
    assert sms.quiet_until(at_local(13.5), lunch, OFFSET) is None
    assert sms.quiet_until(at_local(3), None, OFFSET) is None


def test_bad_quiet_hours_are_refused() -> None:
    for raw in ("22-7", "25:00-07:00", "07:00-07:00"):
        try:
            sms.parse_quiet(raw)
        except ValueError:
            continue
        raise AssertionError(f"accepted {raw!r}")
    assert sms.parse_quiet("") is None


def test_the_day_is_the_local_day() -> None:
    assert sms.day_start(at_local(0.5), OFFSET) == at_local(0)
    assert sms.day_start(at_local(23.9), OFFSET) == at_local(0)


def test_caps_admit_in_order_until_full() -> None:
    caps = sms.Caps(agent_daily=2, daily=4)
    verdicts = sms.admit([1, 2, 3, 4], {1: 2, 2: 1}, 2, caps)
    assert verdicts == {1: sms.Skip.AGENT_CAP, 2: None, 3: None, 4: sms.Skip.DAILY_CAP}


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    low, high = (lambda: 0.0), (lambda: 1.0)
    assert sms.backoff_ms(1, 2.0, low) == 1000 and sms.backoff_ms(1, 2.0, high) == 2000
    assert sms.backoff_ms(3, 2.0, high) == 8000
    assert sms.backoff_ms(30, 2.0, high) == 300_000


def test_nearest_grids_go_ring_by_ring() -> None:
    ring = {"a": {"b", "c"}, "b": {"a", "d"}, "c": {"a"}, "d": {"b", "e"}, "e": {"d"}}
    assert sms.nearest_grids("a", lambda g: ring[g], 3) == ["a", "b", "c"]
    assert sms.nearest_grids("a", lambda g: ring[g], 10) == ["a", "b", "c", "d", "e"]
    assert sms.nearest_grids("x", lambda g: set(), 5) == ["x"]


def test_signatures_and_timestamps() -> None:
    body = b'{"id":"1"}'
    good = sms.sign("k", body)
    now = 1_780_000_000_000
    assert good.startswith("sha256=") and len(good) == 7 + 64
    assert sms.verify("k", body, good, str(now // 1000), now) is None
    assert sms.verify("k", body + b" ", good, str(now // 1000), now) is not None
    assert sms.verify("other", body, good, str(now // 1000), now) is not None
    assert sms.verify("k", body, good, str(now // 1000 - 301), now) is not None
    assert sms.verify("k", body, good, "yesterday", now) is not None
    assert sms.verify(None, body, good, str(now // 1000), now) is not None


def test_texts_name_the_code_and_the_outcome() -> None:
    offer = sms.offer_text("A7K2", "低保申请", "青山县双田社区", "https://x/app/#o=1")
    assert (
        offer == "【帮办】新工单 A7K2 低保申请 青山县双田社区 回复A7K2抢单 详情 https://x/app/#o=1"
    )
    assert "抢单成功" in sms.claim_reply_text(ClaimOutcome.WON, "A7K2")
    assert "已被他人抢走" in sms.claim_reply_text(ClaimOutcome.TAKEN, "A7K2")
    assert "上限" in sms.claim_reply_text(ClaimOutcome.LIMIT_REACHED, "A7K2")


def test_tokens_never_reach_the_log() -> None:
    text = "请评价：https://x/app/#o=1&t=bbt_abcdefghijklmnopqrstuvwxyz012345"
    assert "bbt_abc" not in sms.redacted(text)


def test_which_applicant_texts_a_step_makes() -> None:
    on = sms.APPLICANT_SWITCHES
    assert sms.applicant_kinds("replied", on, {}) == [sms.Kind.REPLIED, sms.Kind.RATE]
    assert sms.applicant_kinds("replied", {"rate"}, {}) == [sms.Kind.RATE]
    assert sms.applicant_kinds("supplied", on, {"due_at": 1}) == [sms.Kind.ACCEPTED]
    assert sms.applicant_kinds("supplied", on, {}) == []
    assert sms.applicant_kinds("progress", on, {}) == []
    assert sms.trigger_for("released") == "offer" and sms.trigger_for("progress") is None
