"""Redis key names and Lua scripts: the one place that knows Redis's layout.

Every key of one order carries the hash tag ``{o:<id>}`` so that all of them land in one
cluster slot, and on a cluster every script touches only the keys of one order, or only the
key of one agent (hash tag ``{a:<id>}``); global keys (the schedules, the reconcile lock, the
holders) are used there only by plain single-key commands.  A single server runs the claim
with the agent's key (CLAIM reserving) and the announce with the global keys (ANNOUNCE) in
one script each, which a cluster would refuse.

Layout (every name carries the deployment's namespace after ``bb:``, see :class:`Keys`;
shown here without it)::

    bb:{o:<id>}           hash   status, grid, scope, reach (",g1,g2,": the grids offered to while
                                 scope is grid), excluded (",7,9,": agents who released it),
                                 version, claimed_by, holder, holder_at, holder_req (the
                                 holding request's answer field), and the final claim
                                 answers remembered: "<agent>:<t>:<request_id>" -> answer
                                 (every such field has a ':', no other field has)
    bb:{a:<id>}:held      hash   order id -> "h:<ms>" (the agent holds it since), "p:<ms>"
                                 (a claim reserved a place for it then; lapses after the hold
                                 lifetime) or "d:<ms>" (it left the agent then: a tombstone
                                 for the reconciler): the h and live p count for
                                 BANGBAN_MAX_HELD
    bb:holders            set    agents whose held hash may be non-empty, for the reconciler
    bb:due                zset   "w:<order id>" scored by its next widening step, "c:<order
                                 id>" by its next clock action (escalate, close), in ms: the
                                 sweepers' work list (both kinds in one key, so that announcing
                                 an order schedules both in one command)
    bb:reconcile-lock     string one process at a time rebuilds Redis from Postgres
    bb:events             pubsub every order change, for every server process's fan-out
    bb:auth               pubsub revocations, for every server process's auth cache
    bb:{r:<name>}         string a fixed-window rate counter (RATE)
    bb:{presence}:procs   zset   server process id scored by when its list below expires (ms)
    bb:{presence}:p:<proc> set   agent ids connected to that process (expires with it)

The limit on held orders cannot live in the order's script (the agent's key is in another
slot), so a claim first *reserves* a place in the agent's hash (RESERVE, in
:mod:`dispatcher.board.held_scripts`), then runs :data:`CLAIM`, then turns the reservation
into a holding if Postgres recorded the win, or drops it otherwise (SET_HELD).  Each step is
atomic on its own key; a process that dies
between them leaves a pending place that lapses by itself, and RECONCILE_HELD makes
the hash agree with Postgres.  Claims that are never given the hold need no place:
:data:`CLAIM_MANY` decides them, many at once, by the same rule as :data:`CLAIM`.

Redis arbitrates who may try to record a claim (``holder``); Postgres records the winner.  The
``version`` in Redis always comes from Postgres, and SYNC never lets it go backwards
(:mod:`dispatcher.board.sync_scripts`).
"""

from __future__ import annotations

from dispatcher.board.held_scripts import TAKE_PLACE

PREFIX = "bb:"
EVENTS_CHANNEL = "bb:events"
AUTH_CHANNEL = "bb:auth"
"""Revocations (``{"token_id"}`` or ``{"agent_id"}``, msgpack), for every process's auth cache."""
DUE = "bb:due"
"""The sweepers' work list: members :func:`due_member` scored by when they fall due (ms)."""
WIDEN = "w"
"""The kind of :data:`DUE` member of an order's next widening step."""
CLOCK = "c"
"""The kind of :data:`DUE` member of an order's next clock action (escalate, close)."""
HOLDERS = "bb:holders"
RECONCILE_LOCK = "bb:reconcile-lock"
# The names above (and RECONCILE_MARK below) are the *unprefixed* layout, the namespace "":
# a server uses them through :class:`Keys`, which puts its namespace in.


# Presence (dispatcher.board.presence): one hash tag, so SUNION runs on Redis Cluster too.
PRESENCE_PROCS = "bb:{presence}:procs"


class Keys:
    """Every key and channel name of one deployment (``BANGBAN_NAMESPACE``).

    Pub/sub ignores the database number, and two deployments may share one database too, so
    every name carries the namespace: ``bb:<ns>:{o:<id>}``, ``bb:<ns>:events``.  The hash tags
    are untouched, so one order's keys (and one agent's) stay in one cluster slot.  The empty
    namespace is the unprefixed layout (the module's constants).
    """

    __slots__ = ("namespace", "prefix")

    def __init__(self, namespace: str = "") -> None:
        if "{" in namespace or "}" in namespace:
            raise ValueError("a namespace must not contain braces (they are hash tags)")
        self.namespace = namespace
        self.prefix = f"{PREFIX}{namespace}:" if namespace else PREFIX

    def of(self, name: str) -> str:
        """The namespaced form of one of the module's global names (``bb:events`` …)."""
        if not name.startswith(PREFIX):
            raise ValueError(f"not a key name of ours: {name!r}")
        return self.prefix + name[len(PREFIX) :]

    def order(self, order_id: int) -> str:
        return f"{self.prefix}{{o:{order_id}}}"

    def held(self, agent_id: int) -> str:
        return f"{self.prefix}{{a:{agent_id}}}:held"

    def rate(self, name: str) -> str:
        """A fixed-window rate counter (``name``: what is counted and for whom, ``file:7``)."""
        return f"{self.prefix}{{r:{name}}}"

    def presence(self, process: str) -> str:
        """The agents connected to one process (one hash tag with PRESENCE_PROCS, so SUNION
        runs on Redis Cluster too)."""
        return f"{self.prefix}{{presence}}:p:{process}"

    @property
    def events(self) -> str:
        return self.of(EVENTS_CHANNEL)

    @property
    def auth(self) -> str:
        return self.of(AUTH_CHANNEL)


_PLAIN = Keys()
order_key, held_key = _PLAIN.order, _PLAIN.held


def due_member(kind: str, order_id: int) -> str:
    """The :data:`DUE` member of ``order_id``'s deadline of ``kind`` (:data:`WIDEN`,
    :data:`CLOCK`)."""
    return f"{kind}:{order_id}"


def due_entry(member: str) -> tuple[str, int]:
    """(kind, order id) of a :data:`DUE` member (:func:`due_member`'s inverse)."""
    kind, _, order_id = member.partition(":")
    return kind, int(order_id)


rate_key, presence_key = _PLAIN.rate, _PLAIN.presence


# Outcomes of CLAIM that are not final answers.
HOLD = "hold"  # you hold the order: record it in Postgres, then FINISH_CLAIM or RELEASE_HOLD
BUSY = "busy"  # your own other request holds it right now: answer `unavailable`
HELD = "held"  # another agent's claim holds it right now: `taken` (remembered so), told once
# the holder's outcome is heard, so that the winner hears `won` first

_CLAIM_RULE = """
-- The claim rule: the Lua twin of orders.decide_claim, shared by CLAIM and CLAIM_MANY.
-- o: HMGET of the order hash (ORDER_FIELDS); agent: the agent id; grids: its grid codes;
-- now, hold_ms: numbers; field: the claim's answer field ("<agent>:<request_id>").  A repeat
-- of the very request that holds the order (a retry after a lost reply) finds it 'open'
-- again, so that CLAIM is safe to repeat.
-- Returns a final answer 'won' | 'taken' | 'not_offered', 'held' (another agent's claim is
-- being recorded right now: 'taken', which the caller tells after the winner's 'won'), 'busy'
-- (the agent's own other request holds the order right now), 'outside' (the order is open, but
-- not to this agent as far as Redis knows: answered 'not_offered' and never remembered, since
-- Redis may be behind Postgres, which the caller asks), or 'open' (the order is open to
-- the agent and nobody holds it: only CLAIM may act on that).
local function rule(o, agent, grids, now, hold_ms, field)
  local status = o[1]
  if status ~= 'offered' and status ~= 'widened' then
    -- Claimed and every later state name their agent; cancelled and escalated are no one's.
    if status == 'cancelled' or not o[4] or o[4] == '' then return 'not_offered' end
    if o[4] == agent then return 'won' end
    return 'taken'
  end
  local eligible = (o[3] == 'all')
  if not eligible then
    local reach = o[2] or ''
    for _, g in ipairs(grids) do
      if string.find(reach, ',' .. g .. ',', 1, true) then eligible = true; break end
    end
  end
  if eligible and o[7] and string.find(o[7], ',' .. agent .. ',', 1, true) then
    eligible = false  -- this agent released the order
  end
  if not eligible then return 'outside' end
  if o[5] and o[5] ~= '' and tonumber(o[6]) + hold_ms > now then
    -- Someone is recording a claim in Postgres right now.
    if o[5] == agent then
      if field ~= '' and o[8] == field then return 'open' end
      return 'busy'
    end
    return 'held'  -- 'taken' (remembered so), told once the holder's outcome is heard
  end
  return 'open'
end
local function order_fields(key, ...)
  -- (and the answer fields given, from the 9th on)
  return redis.call('HMGET', key, 'status', 'reach', 'scope', 'claimed_by', 'holder',
                    'holder_at', 'excluded', 'holder_req', ...)
end
"""

_RESERVING = """
-- A place among the agent's held orders, reserved by the claim itself (single server only):
-- flag 'R<limit>' instead of '0'/'1', and KEYS[2] the agent's held hash.
local function place_for(flag, order_key, held_key, now, hold_ms)
  local order = string.match(order_key, '{o:(%d+)}')
  return take_place(held_key, order, now, tonumber(string.sub(flag, 2)), hold_ms)
end
"""

CLAIM = (
    _CLAIM_RULE
    + TAKE_PLACE
    + _RESERVING
    + """
-- Decide a claim atomically.
-- KEYS[1] order hash
-- ARGV[1] agent id, ARGV[2] answer field ("<agent>:<request_id>"), ARGV[3] now (ms),
-- ARGV[4] hold lifetime (ms): a holder older than this is presumed dead and may be replaced,
-- ARGV[5] '1' when the agent holds as many orders as allowed (its place was reserved by
-- RESERVE: '0' when not at its limit), or 'R<limit>' to reserve the place here, in KEYS[2]
-- the agent's held hash (a single server: see _RESERVING), ARGV[6..] the agent's grid codes
-- Returns {outcome}: 'hold' (caller must now record the claim in Postgres), 'busy',
-- 'limit_reached' (the order is open to the agent but it is at its limit), or a final answer
-- 'won' | 'taken' | 'held' (remembered as 'taken') | 'not_offered' | 'unknown_order'.  Final
-- answers except 'unknown_order'
-- and the 'not_offered' of an open order are remembered under ARGV[2] in the order hash
-- (which expires once the order is closed: SYNC), so a repeated request gets the same
-- answer; 'limit_reached' is not (after handing an order on, the
-- agent may retry the same request and win).  With 'R<limit>', 'hold' comes with the place:
-- {'hold', 'ok'} (reserved here: SET_HELD it either way) or {'hold', 'already'}.
local o = order_fields(KEYS[1], ARGV[2])
if o[9] then return {o[9]} end
if not o[1] then return {'unknown_order'} end
local grids = {}
for i = 6, #ARGV do grids[#grids + 1] = ARGV[i] end
local answer = rule(o, ARGV[1], grids, tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[2])
if answer == 'busy' then return {'busy'} end
if answer == 'outside' then return {'not_offered'} end
if answer == 'open' then
  if ARGV[5] == '1' then return {'limit_reached'} end
  local place = ''
  if string.sub(ARGV[5], 1, 1) == 'R' then
    place = place_for(ARGV[5], KEYS[1], KEYS[2], ARGV[3], tonumber(ARGV[4]))
    if place == 'full' then return {'limit_reached'} end
  end
  redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'holder_at', ARGV[3], 'holder_req', ARGV[2])
  return {'hold', place}
end
redis.call('HSET', KEYS[1], ARGV[2], answer == 'held' and 'taken' or answer)
return {answer}
"""
)

CLAIM_MANY = (
    _CLAIM_RULE
    + TAKE_PLACE
    + _RESERVING
    + """
-- Decide many claims on one order at once, in order, as CLAIM would one after another; only
-- the first may take the hold (only it reserved a place).  For claims that arrived together.
-- KEYS[1] order hash
-- ARGV[1] now (ms), ARGV[2] hold lifetime (ms), ARGV[3] the first claim: '1' may take the
-- hold, 'L' its agent is at its limit, 'R<limit>' may take the hold if a place is free in
-- KEYS[2], the first agent's held hash (reserved here: a single server), '' as the others;
-- then for each claim: agent id, answer field, n, and the agent's
-- n grid codes.  With 'R<limit>' one more answer follows the claims' own: the place, as
-- CLAIM returns it with 'hold' ('ok', 'already', or '' when nothing was reserved).
-- Returns one answer per claim: a remembered answer, a final answer (remembered as CLAIM
-- remembers it), 'busy', for the first also 'hold', 'limit_reached' or 'unknown_order' as
-- CLAIM answers them, or '' where only CLAIM can decide (the order is open to the agent and
-- nobody holds it, or Redis does not know the order: the caller must run CLAIM for that
-- claim).
local o = order_fields(KEYS[1])
local now, hold_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local out, place = {}, ''
local reserving = string.sub(ARGV[3], 1, 1) == 'R'
local i = 4
while i <= #ARGV do
  local agent, field, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local grids = {}
  for j = 1, n do grids[j] = ARGV[i + 2 + j] end
  i = i + 3 + n
  local answer = redis.call('HGET', KEYS[1], field)
  if not answer then
    if not o[1] then
      answer = (#out == 0 and ARGV[3] ~= '') and 'unknown_order' or ''
    else
      answer = rule(o, agent, grids, now, hold_ms, field)
      if answer == 'open' then
        if #out == 0 and reserving then
          place = place_for(ARGV[3], KEYS[1], KEYS[2], ARGV[1], hold_ms)
        end
        if #out == 0 and (ARGV[3] == '1' or (reserving and place ~= 'full')) then
          redis.call('HSET', KEYS[1], 'holder', agent, 'holder_at', ARGV[1], 'holder_req', field)
          o[5], o[6], o[8] = agent, ARGV[1], field
          answer = 'hold'
        elseif #out == 0 and (ARGV[3] == 'L' or reserving) then
          if place == 'full' then place = '' end
          answer = 'limit_reached'
        else
          answer = ''
        end
      elseif answer == 'outside' then
        answer = 'not_offered'
      elseif answer ~= 'busy' then
        redis.call('HSET', KEYS[1], field, answer == 'held' and 'taken' or answer)
      end
    end
  end
  out[#out + 1] = answer
end
if reserving then out[#out + 1] = place end
return out
"""
)

RELEASE_HOLD = """
-- Give up a hold that could not be recorded (Postgres unavailable), or clear a stale one.
-- KEYS[1] order hash
-- ARGV[1] agent id ('' = any holder), ARGV[2] now (ms), ARGV[3] hold lifetime (ms; 0 = now)
-- Returns 1 when a hold was removed, else 0.
local o = redis.call('HMGET', KEYS[1], 'holder', 'holder_at')
if not o[1] or o[1] == '' then return 0 end
if ARGV[1] ~= '' and o[1] ~= ARGV[1] then return 0 end
if tonumber(o[2]) + tonumber(ARGV[3]) > tonumber(ARGV[2]) and ARGV[3] ~= '0' then return 0 end
redis.call('HDEL', KEYS[1], 'holder', 'holder_at', 'holder_req')
return 1
"""

PROBE = """
-- Health probe: proves scripts run.  No keys.  Returns 'ok'.
return 'ok'
"""

# --- the reconciler's watermark (dispatcher/flows/reconciler.py) ---------------------------

RECONCILE_MARK = "bb:reconcile-mark"
"""string  "<epoch>:<xid>:<audit>": the reconciler's watermark, kept next to the data it vouches
for.  It has no expiry, so it vanishes exactly when Redis loses its data (FLUSHALL, a restart
without persistence); a snapshot restored brings back the watermark of that snapshot."""

SWAP = """
-- Replace a string key's value only if it is still the value the caller read.
-- KEYS[1] the key
-- ARGV[1] the value read ('': the key was absent), ARGV[2] the new value
-- Returns 1 when replaced, 0 when the key holds something else now (nothing written).
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


# RATE: take a share of a fixed window's limit, atomically, for every server process.
# KEYS[1] the rate key   ARGV[1] window (ms)   ARGV[2] limit   ARGV[3] the share wanted (>= 1)
# Returns {granted, ms left in the window}: granted 0 (refused) or 1..wanted, the events this
# process may count itself until the window ends (a share of one is used at once, so its ms
# left is 0: not read).  One command for a share of one that is allowed (INCRBY; the window's
# first share also sets its expiry), two for a larger one (and PTTL).  A share refused still
# counts, which changes nothing, since the window ends at a fixed time and the count is only
# ever compared with the limit; a share granted in part leaves the count over the limit, the
# same.  A counter that lost its expiry (or was written by hand) starts a new window.
RATE = """
local window, limit, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local n = redis.call('INCRBY', KEYS[1], want)
if n == want then
  redis.call('PEXPIRE', KEYS[1], window)
  local granted = math.min(want, limit)
  return {granted, granted > 1 and window or 0}
end
local granted = math.min(want, limit - (n - want))
local left = 0
if granted <= 0 or want > 1 then left = redis.call('PTTL', KEYS[1]) end
if left < 0 then
  granted = math.min(want, limit)
  redis.call('SET', KEYS[1], want, 'PX', window)
  return {granted, granted > 1 and window or 0}
end
if granted <= 0 then return {0, left} end
return {granted, want > 1 and left or 0}
"""
