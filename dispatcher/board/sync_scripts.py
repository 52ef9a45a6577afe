"""The Lua scripts that copy an order's state from Postgres into Redis (SYNC) and announce a
change (ANNOUNCE: SYNC, the schedules and the publish in one call on a single server).

They run on the order's hash (:meth:`.scripts.Keys.order`, which also holds the claim
answers remembered); ANNOUNCE also on the global schedules and the winner's held hash, which
only a single server allows in one script.  Run by :class:`dispatcher.board.board.Board`.
Each script states its KEYS, ARGV and return.
"""

from __future__ import annotations

from dispatcher.board.held_scripts import SET_HELD_RULE

_SYNC_RULE = """
-- sync(order hash, a): SYNC's rule, shared with ANNOUNCE; a[1..9] are SYNC's ARGV[1..9].
-- Returns 1 when written, 0 when Redis already had this version or a newer one.
local function open(status) return status == 'offered' or status == 'widened' end
local function sync(k, a)
  local cur = redis.call('HMGET', k, 'version', 'status')
  local answer = {}
  if a[7] ~= '' then answer = {a[7], a[8]} end
  if cur[1] and tonumber(cur[1]) >= tonumber(a[1]) then
    if a[7] ~= '' then redis.call('HSET', k, a[7], a[8]) end
    return 0
  end
  if open(a[2]) then
    redis.call('HSET', k, 'version', a[1], 'status', a[2], 'reach', a[3], 'scope', a[4],
               'claimed_by', a[5], 'excluded', a[9], unpack(answer))
    if cur[2] and not open(cur[2]) then redis.call('PERSIST', k) end
  else
    redis.call('HSET', k, 'version', a[1], 'status', a[2], 'reach', a[3], 'scope', a[4],
               'claimed_by', a[5], 'excluded', a[9], 'holder', '', 'holder_at', '',
               'holder_req', '', unpack(answer))
    redis.call('PEXPIRE', k, a[6])
  end
  return 1
end
"""

SYNC = (
    _SYNC_RULE
    + """
-- Copy an order's state from Postgres into Redis, never backwards.
-- KEYS[1] order hash
-- ARGV[1] version, ARGV[2] status, ARGV[3] reach (",g1,g2,"), ARGV[4] scope,
-- ARGV[5] claimed_by ('' none),
-- ARGV[6] lifetime (ms) of the order hash once the order is closed,
-- ARGV[7] answer field to remember in the order hash ('' none), ARGV[8] the answer,
-- ARGV[9] excluded (",7,9,": agents who released the order; '' none),
-- ARGV[10] a channel and ARGV[11] a change event (optional): published only when written
-- (a filing's offer, announced after its 201, must not follow a claim that synced first)
-- Returns 1 when written, 0 when Redis already had this version or a newer one.
-- A closed order (not offered/widened) loses its holder (the fields emptied: '' is no
-- holder to every script) and expires after ARGV[6]: claims for it then fall back to
-- Postgres.  An order open again after it was closed (released) no longer expires.  An older
-- version than Redis has changes nothing but the answer remembered.
local written = sync(KEYS[1], ARGV)
if ARGV[10] and written == 1 then redis.call('PUBLISH', ARGV[10], ARGV[11]) end
return written
"""
)

ANNOUNCE = (
    _SYNC_RULE
    + SET_HELD_RULE
    + """
-- A change announced on a single server, in one call: SYNC, the order's two schedules, and
-- the publish, or SET_HELD of the winner, which publishes with the winner's held count (a
-- cluster runs these apart: the schedules and the agent's hash are in other slots).
-- KEYS[1] order hash, KEYS[2] the schedules (DUE), KEYS[3] the winner's held hash and KEYS[4]
-- the holders set (with a winner)
-- ARGV[1..9] as SYNC's, ARGV[10] channel, ARGV[11] the change event (msgpack),
-- ARGV[12] '1': publish only when written (a filing's offer: see SYNC),
-- ARGV[13] order id, ARGV[14] when it widens (ms; '': not scheduled: member 'w:<id>'),
-- ARGV[15] its clock's next deadline (ms; '': none: member 'c:<id>'), ARGV[16] the winner's
-- agent id ('' none), ARGV[17] since (ms)
-- Returns the winner's held count, or -1 (no winner).
local written = sync(KEYS[1], ARGV)
local add, drop = {}, {}
for kind, at in pairs({w = ARGV[14], c = ARGV[15]}) do
  if at ~= '' then
    add[#add + 1] = at; add[#add + 1] = kind .. ':' .. ARGV[13]
  else
    drop[#drop + 1] = kind .. ':' .. ARGV[13]
  end
end
if #add > 0 then redis.call('ZADD', KEYS[2], unpack(add)) end
if #drop > 0 then redis.call('ZREM', KEYS[2], unpack(drop)) end
if ARGV[16] ~= '' then
  return set_held(KEYS[3], ARGV[13], 'h:' .. ARGV[17], '0', ARGV[17], KEYS[4], ARGV[16],
                  ARGV[10], ARGV[11])
end
if ARGV[12] ~= '1' or written == 1 then redis.call('PUBLISH', ARGV[10], ARGV[11]) end
return -1
"""
)
