"""The rules of texting, without I/O: short codes, replies, message texts, quiet hours, caps,
backoff, the nearest grids, and the gateway's signature.

Everything takes ``now`` (epoch ms) and the local UTC offset as arguments; the flows
(:mod:`dispatcher.flows.sms_sender`, :mod:`dispatcher.flows.sms_inbound`) own the clock.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import random
import re
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dispatcher.core.orders import ClaimOutcome

CODE_ALPHABET = "ACDEFHJKMNPRTUVWXY34679"
"""Letters and digits nobody misreads on a small screen: none of 0/O/Q, 1/I/L, 2/Z, 5/S,
8/B, G/6."""

CODE_LENGTH = 4

DAY_MS = 86_400_000
MINUTE_MS = 60_000


class Kind(enum.StrEnum):
    """What a text is for (the ``kind`` the gateway gets)."""

    OFFER = "offer"
    CLAIM_REPLY = "claim_reply"
    ACCEPTED = "applicant_accepted"
    MATERIALS = "applicant_materials"
    REPLIED = "applicant_replied"
    RATE = "applicant_rate"


class Status(enum.StrEnum):
    """A text's state in the outbox."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"


APPLICANT_SWITCHES = {"accepted", "materials", "replied", "rate"}
"""The names of ``BANGBAN_SMS_APPLICANT``."""

TRIGGER_KINDS = {
    "accepted": "applicant",
    "accepted_green_card": "applicant",
    "awaiting_materials": "applicant",
    "supplied": "applicant",
    "replied": "applicant",
    "released": "offer",
}
"""Trail events that leave work for the texter (in the same statement); `filed` and
`widened` leave an ``offer`` trigger from their own statements."""


def trigger_for(event_kind: str) -> str | None:
    """``offer``, the event kind itself (applicant texts), or None: nothing to text."""
    which = TRIGGER_KINDS.get(event_kind)
    if which is None:
        return None
    return "offer" if which == "offer" else event_kind


# --- short codes and replies ---------------------------------------------------------------


def new_code(rng: random.Random | random.SystemRandom, length: int = CODE_LENGTH) -> str:
    return "".join(rng.choice(CODE_ALPHABET) for _ in range(length))


_CODE_IN_TEXT = re.compile(r"[A-Za-z0-9]{4,6}")


def parse_reply(text: str) -> str | None:
    """The short code an agent replied with (``A7K2``, ``a7k2抢单``, ``抢单 A7K2``), or None.

    Full-width letters and digits count as their ASCII twins; the first run of 4 to 6 letters
    and digits is the code.
    """
    folded = "".join(
        chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in text.strip()
    ).upper()
    found = _CODE_IN_TEXT.search(folded)
    if found is None:
        return None
    return found.group(0)


def phone_candidates(raw: str) -> list[str]:
    """The ways a phone number may be stored (as given, digits only, without +86/0086)."""
    digits = re.sub(r"\D", "", raw)
    out = [raw.strip(), digits]
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            out.append(digits[len(prefix) :])
    if len(digits) == 11:
        out += ["+86" + digits, "86" + digits]
    return sorted({c for c in out if c})


# --- texts ---------------------------------------------------------------------------------

SIGN = "【帮办】"


def offer_text(code: str, what: str, where: str, link: str) -> str:
    return f"{SIGN}新工单 {code} {what} {where} 回复{code}抢单 详情 {link}"


def claim_reply_text(outcome: ClaimOutcome | str, code: str, link: str = "") -> str:
    """The reply to an agent's ``<code>`` text (抢单成功 / 已被他人抢走 / …)."""
    value = outcome.value if isinstance(outcome, ClaimOutcome) else outcome
    texts = {
        "won": f"抢单成功：工单 {code} 归您办理，请尽快联系申请人。详情 {link}",
        "taken": f"工单 {code} 已被他人抢走，感谢参与。",
        "not_offered": f"工单 {code} 目前不向您开放抢单。",
        "limit_reached": f"您手上的工单已达上限，办结后再抢单 {code}。",
        "unknown_code": f"没有找到工单 {code}，可能已办结或工单号有误。",
        "unknown_order": f"没有找到工单 {code}，可能已办结或工单号有误。",
        "garbage": "未能识别您的回复。抢单请回复短信中的工单号，例如 A7K2。",
    }
    return SIGN + texts.get(value, f"工单 {code}：{value}")


def local_date(at: int, offset_minutes: int) -> str:
    d = datetime.fromtimestamp(at / 1000, UTC) + timedelta(minutes=offset_minutes)
    return f"{d.month}月{d.day}日{d.hour:02d}:{d.minute:02d}"


def applicant_text(
    kind: Kind, what: str, *, details: dict[str, object], offset_minutes: int, link: str = ""
) -> str:
    """The applicant's text for one step of their order."""
    if kind is Kind.ACCEPTED:
        due = details.get("due_at")
        when = f"，预计{local_date(due, offset_minutes)}前办结" if isinstance(due, int) else ""
        return f"{SIGN}您的申请（{what}）已由代办员受理{when}。"
    if kind is Kind.MATERIALS:
        listed = details.get("missing")
        names = [str(m) for m in listed] if isinstance(listed, list) else []
        missing = "、".join(names) or "部分材料"
        by = details.get("supply_by")
        when = f"，请于{local_date(by, offset_minutes)}前补交" if isinstance(by, int) else ""
        return f"{SIGN}您的申请（{what}）还缺少：{missing}{when}。"
    if kind is Kind.REPLIED:
        result = str(details.get("result") or "")
        if len(result) > 60:
            result = result[:59] + "…"
        return f"{SIGN}您的申请（{what}）已办理：{result}"
    if kind is Kind.RATE:
        return f"{SIGN}请为本次代办（{what}）评价：{link}"
    raise ValueError(f"not an applicant text: {kind}")


_TOKEN = re.compile(r"bb[aigt]_[A-Za-z0-9_-]{8,}")


def redacted(text: str) -> str:
    """``text`` with any token in it replaced, for logs."""
    return _TOKEN.sub("bb?_…", text)


# --- quiet hours, caps, backoff --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quiet:
    """Quiet hours as local minutes of the day, ``start`` inclusive, ``end`` exclusive; may
    wrap past midnight (22:00-07:00)."""

    start: int
    end: int


def parse_quiet(raw: str) -> Quiet | None:
    """``"22:00-07:00"`` → Quiet; ``""`` → None.  Raises ValueError."""
    raw = raw.strip()
    if not raw:
        return None
    m = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", raw)
    if m is None:
        raise ValueError(f"quiet hours must look like 22:00-07:00, got {raw!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"not a time of day in {raw!r}")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError("quiet hours must not start and end at the same time")
    return Quiet(start, end)


def quiet_until(now: int, quiet: Quiet | None, offset_minutes: int) -> int | None:
    """When the quiet hours around ``now`` end (epoch ms), or None when ``now`` is not quiet."""
    if quiet is None:
        return None
    local = now + offset_minutes * MINUTE_MS
    minute = (local % DAY_MS) // MINUTE_MS
    inside = (
        quiet.start <= minute < quiet.end
        if quiet.start < quiet.end
        else minute >= quiet.start or minute < quiet.end
    )
    if not inside:
        return None
    midnight = local - local % DAY_MS
    end = midnight + quiet.end * MINUTE_MS
    if end <= local:
        end += DAY_MS
    return end - offset_minutes * MINUTE_MS


def day_start(now: int, offset_minutes: int) -> int:
    """The start of the local day around ``now`` (epoch ms): caps count from here."""
    local = now + offset_minutes * MINUTE_MS
    return local - local % DAY_MS - offset_minutes * MINUTE_MS


class Skip(enum.StrEnum):
    """Why an offer text was not sent (the note in the delivery log)."""

    QUIET = "quiet_hours"
    AGENT_CAP = "agent_daily_cap"
    DAILY_CAP = "daily_cap"


@dataclass(frozen=True, slots=True)
class Caps:
    agent_daily: int
    daily: int


def admit(
    agents: Iterable[int], sent_today: dict[int, int], total_today: int, caps: Caps
) -> dict[int, Skip | None]:
    """Which of ``agents`` (in order) may be texted an offer now, within the caps.  None: send."""
    out: dict[int, Skip | None] = {}
    total = total_today
    for agent in agents:
        if sent_today.get(agent, 0) >= caps.agent_daily:
            out[agent] = Skip.AGENT_CAP
        elif total >= caps.daily:
            out[agent] = Skip.DAILY_CAP
        else:
            out[agent] = None
            total += 1
    return out


def backoff_ms(attempt: int, base_s: float, rng: Callable[[], float], cap_s: float = 300) -> int:
    """The wait after failed attempt number ``attempt`` (1, 2, …): exponential with full
    jitter (a random share between half and all of ``base * 2**(attempt-1)``), capped."""
    ceiling = min(cap_s, base_s * 2.0 ** (attempt - 1))
    return max(1, int(ceiling * (0.5 + 0.5 * rng()) * 1000))


def nearest_grids(
    start: str, neighbours: Callable[[str], Collection[str]], limit: int
) -> list[str]:
    """Up to ``limit`` grids by rings of neighbours around ``start`` (``start`` first)."""
    seen = {start}
    order = [start]
    queue = deque([start])
    while queue and len(order) < limit:
        for n in sorted(neighbours(queue.popleft())):
            if n not in seen:
                seen.add(n)
                order.append(n)
                queue.append(n)
                if len(order) >= limit:
                    break
    return order


# --- the gateway's signature -----------------------------------------------------------------

SIGNATURE_HEADER = "X-Bangban-Signature"
TIMESTAMP_HEADER = "X-Bangban-Timestamp"
SKEW_MS = 5 * MINUTE_MS


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(
    secret: str | None, body: bytes, signature: str | None, timestamp: str | None, now: int
) -> str | None:
    """None when the request is signed by ``secret`` within ±5 minutes of ``now``; else why
    not (for the 401 message)."""
    if not secret:
        return "SMS gateway not configured (BANGBAN_SMS_SECRET unset)"
    if not signature or not hmac.compare_digest(signature, sign(secret, body)):
        return "bad or missing X-Bangban-Signature"
    try:
        stamp = float(timestamp or "")
    except ValueError:
        return "bad or missing X-Bangban-Timestamp (epoch seconds)"
    if abs(stamp * 1000 - now) > SKEW_MS:
        return "X-Bangban-Timestamp is more than 5 minutes off"
    return None


# --- values the flows and the store exchange -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A text to put in the outbox (``dedupe`` makes it exist once)."""

    dedupe: str
    kind: Kind
    to: str
    text: str
    created_at: int
    next_at: int
    order_id: int | None = None
    agent_id: int | None = None
    step: int | None = None
    status: Status = Status.QUEUED
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Trigger:
    """Work for the texter, recorded with the change that caused it."""

    id: int
    order_id: int
    kind: str
    step: int | None
    offered_at: int | None
    grids: tuple[str, ...] | None
    prev_grids: tuple[str, ...]
    details: dict[str, object]
    at: int


@dataclass(frozen=True, slots=True)
class Queued:
    """A text due to be sent, as the sender claimed it."""

    id: str
    kind: str
    to: str
    text: str
    order_id: int | None
    attempts: int
    """Tries so far, this one included."""
    order_open: bool
    """For an offer: is its order still open to claims (else it is not worth sending)."""

    def payload(self) -> dict[str, object]:
        """The JSON body the gateway gets."""
        return {
            "id": self.id,
            "to": self.to,
            "text": self.text,
            "kind": self.kind,
            "order_id": self.order_id,
        }


def applicant_kinds(
    event_kind: str, switched_on: Collection[str], details: dict[str, object]
) -> list[Kind]:
    """The applicant's texts for a trail event, those switched on (BANGBAN_SMS_APPLICANT).
    Materials supplied count as ``accepted`` when they complete the acceptance (a due date)."""
    if event_kind == "supplied":
        event_kind = "accepted" if details.get("due_at") is not None else ""
    wanted = {
        "accepted": [("accepted", Kind.ACCEPTED)],
        "accepted_green_card": [("accepted", Kind.ACCEPTED)],
        "awaiting_materials": [("materials", Kind.MATERIALS)],
        "replied": [("replied", Kind.REPLIED), ("rate", Kind.RATE)],
    }.get(event_kind, [])
    return [kind for switch, kind in wanted if switch in switched_on]
