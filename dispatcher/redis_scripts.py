"""Redis key names and Lua scripts: the one place that knows Redis's layout.

Every key of one order carries the hash tag ``{o:<id>}`` so that all of them land in one
cluster slot, and every script touches only the keys of one order: the scripts run unchanged
on Redis Cluster.  Global keys (the widening schedule, the reconcile lock) are used only by
plain single-key commands, never inside a script together with an order's keys.

Layout::

    bb:{o:<id>}           hash   status, grid, scope, reach (",g1,g2,": the grids offered to while
                                 scope is grid), version, claimed_by, holder, holder_at
    bb:{o:<id>}:answers   hash   "<agent>:<request_id>" -> final claim answer (expires)
    bb:widen-due          zset   order id scored by its next widening step (ms): the sweepers'
                                 work list
    bb:reconcile-lock     string one process at a time rebuilds Redis from Postgres
    bb:events             pubsub every order change, for every server process's fan-out

Redis arbitrates who may try to record a claim (``holder``); Postgres records the winner.  The
``version`` in Redis always comes from Postgres, and :data:`SYNC` never lets it go backwards.
"""

from __future__ import annotations

PREFIX = "bb:"
EVENTS_CHANNEL = "bb:events"
WIDEN_DUE = "bb:widen-due"
RECONCILE_LOCK = "bb:reconcile-lock"


def order_key(order_id: int) -> str:
    return f"bb:{{o:{order_id}}}"


def answers_key(order_id: int) -> str:
    return f"bb:{{o:{order_id}}}:answers"


# Outcomes of CLAIM that are not final answers.
HOLD = "hold"  # you hold the order: record it in Postgres, then FINISH_CLAIM or RELEASE_HOLD
BUSY = "busy"  # your own other request holds it right now: answer `unavailable`

CLAIM = """
-- Decide a claim atomically.
-- KEYS[1] order hash, KEYS[2] answers hash
-- ARGV[1] agent id, ARGV[2] answer field ("<agent>:<request_id>"), ARGV[3] now (ms),
-- ARGV[4] hold lifetime (ms): a holder older than this is presumed dead and may be replaced,
-- ARGV[5] answer lifetime (ms), ARGV[6..] the agent's grid codes
-- Returns {outcome}: 'hold' (caller must now record the claim in Postgres), 'busy', or a
-- final answer 'won' | 'taken' | 'not_offered' | 'unknown_order'.  Final answers except
-- 'unknown_order' are remembered under ARGV[2], so a repeated request gets the same answer.
local prev = redis.call('HGET', KEYS[2], ARGV[2])
if prev then return {prev} end
local o = redis.call('HMGET', KEYS[1], 'status', 'reach', 'scope', 'claimed_by', 'holder',
                     'holder_at')
local status = o[1]
if not status then return {'unknown_order'} end
local answer
if status == 'claimed' then
  if o[4] == ARGV[1] then answer = 'won' else answer = 'taken' end
elseif status ~= 'offered' and status ~= 'widened' then
  answer = 'not_offered'
else
  local eligible = (o[3] == 'all')
  if not eligible then
    local reach = o[2] or ''
    for i = 6, #ARGV do
      if string.find(reach, ',' .. ARGV[i] .. ',', 1, true) then eligible = true; break end
    end
  end
  if not eligible then
    answer = 'not_offered'
  elseif o[5] and o[5] ~= '' and tonumber(o[6]) + tonumber(ARGV[4]) > tonumber(ARGV[3]) then
    -- Someone is recording a claim in Postgres right now.
    if o[5] == ARGV[1] then return {'busy'} end
    answer = 'taken'
  else
    redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'holder_at', ARGV[3])
    return {'hold'}
  end
end
redis.call('HSET', KEYS[2], ARGV[2], answer)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {answer}
"""

SYNC = """
-- Copy an order's state from Postgres into Redis, never backwards.
-- KEYS[1] order hash, KEYS[2] answers hash
-- ARGV[1] version, ARGV[2] status, ARGV[3] reach (",g1,g2,"), ARGV[4] scope,
-- ARGV[5] claimed_by ('' none),
-- ARGV[6] lifetime (ms) of the keys once the order is closed,
-- ARGV[7] answer field to remember ('' none), ARGV[8] the answer
-- Returns 1 when written, 0 when Redis already had this version or a newer one.
-- A closed order (not offered/widened) loses its holder and expires after ARGV[6]: claims
-- for it then fall back to Postgres.
local v = redis.call('HGET', KEYS[1], 'version')
local written = 0
if (not v) or tonumber(v) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'status', ARGV[2], 'reach', ARGV[3],
             'scope', ARGV[4], 'claimed_by', ARGV[5])
  written = 1
end
if ARGV[2] ~= 'offered' and ARGV[2] ~= 'widened' then
  redis.call('HDEL', KEYS[1], 'holder', 'holder_at')
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
else
  redis.call('PERSIST', KEYS[1])
end
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[7], ARGV[8])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
return written
"""

RELEASE_HOLD = """
-- Give up a hold that could not be recorded (Postgres unavailable), or clear a stale one.
-- KEYS[1] order hash
-- ARGV[1] agent id ('' = any holder), ARGV[2] now (ms), ARGV[3] hold lifetime (ms; 0 = now)
-- Returns 1 when a hold was removed, else 0.
local o = redis.call('HMGET', KEYS[1], 'holder', 'holder_at')
if not o[1] or o[1] == '' then return 0 end
if ARGV[1] ~= '' and o[1] ~= ARGV[1] then return 0 end
if tonumber(o[2]) + tonumber(ARGV[3]) > tonumber(ARGV[2]) and ARGV[3] ~= '0' then return 0 end
redis.call('HDEL', KEYS[1], 'holder', 'holder_at')
return 1
"""

PROBE = """
-- Health probe: proves scripts run.  No keys.  Returns 'ok'.
return 'ok'
"""
