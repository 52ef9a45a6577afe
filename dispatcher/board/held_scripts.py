"""The Lua scripts of the orders each agent holds (``BANGBAN_MAX_HELD``).

They run on the agent's own key, ``bb:<ns>:{a:<id>}:held`` (:meth:`.scripts.Keys.held`), which
is another cluster slot than the orders' keys, so a claim reserves its place here (RESERVE)
before it runs CLAIM on the order's key (:mod:`dispatcher.board.scripts`), and the place
becomes a holding (SET_HELD) once Postgres recorded the win.  Run by
:class:`dispatcher.board.held.HeldOrders`.  Each script states its KEYS, ARGV and return.
"""

TAKE_PLACE = """
-- take_place(key, order, now, limit, pending_ms): RESERVE's rule, shared with CLAIM and
-- CLAIM_MANY when they reserve on a single Redis server (the agent's key and the order's
-- are then in one script, which a cluster would refuse).  Returns 'ok' (a pending place
-- 'p:<now>' is reserved: the caller must SET_HELD it either way; also when this very call is
-- repeated, a retry after a lost reply), 'already' (the order is in the hash already: held,
-- or being claimed by another request of the agent; nothing reserved) or 'full' (nothing
-- reserved).  Lapsed pendings are dropped; tombstones ('d:') are left for the reconciler.
local function live(v, now, pending_ms)
  local kind = string.sub(v, 1, 1)
  return kind == 'h' or (kind == 'p' and tonumber(string.sub(v, 3)) + pending_ms > now)
end
local function take_place(key, order, now, limit, pending_ms)
  -- now: the ms as the caller sent it (a string: the pending entry repeats it exactly)
  local all = redis.call('HGETALL', key)  -- (the order's own entry is found in it too)
  local cur = nil
  for i = 1, #all, 2 do
    if all[i] == order then cur = all[i + 1]; break end
  end
  if cur == 'p:' .. now then return 'ok' end  -- this very call, repeated (a lost reply)
  local t = tonumber(now)
  if cur and live(cur, t, pending_ms) then return 'already' end
  local n = 0
  for i = 1, #all, 2 do
    if live(all[i + 1], t, pending_ms) then
      n = n + 1
    elseif string.sub(all[i + 1], 1, 1) == 'p' then
      redis.call('HDEL', key, all[i])
    end
  end
  if n >= limit then return 'full' end
  redis.call('HSET', key, order, 'p:' .. now)
  return 'ok'
end
"""

RESERVE = (
    TAKE_PLACE
    + """
-- Reserve a place among the orders an agent holds, before it claims one (on a cluster; a
-- single server reserves inside CLAIM).
-- KEYS[1] the agent's held hash
-- ARGV[1] order id, ARGV[2] now (ms), ARGV[3] the limit, ARGV[4] pending lifetime (ms)
-- Returns take_place's answer.
return take_place(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
"""
)

SET_HELD_RULE = """
-- set_held(key, order, value, only_pending, now, holders, agent, channel, event): SET_HELD's
-- rule, shared with ANNOUNCE (KEYS and ARGV as SET_HELD's below; holders nil on a cluster).
local function set_held(key, order, value, only_pending, now, holders, agent, channel, event)
  if value ~= '' then
    redis.call('HSET', key, order, value)
  else
    local cur = redis.call('HGET', key, order)
    if cur and string.sub(cur, 1, 1) == 'p' then
      redis.call('HDEL', key, order)
    elseif only_pending ~= '1' then
      redis.call('HSET', key, order, 'd:' .. now)
    end
  end
  local n = 0
  for _, v in ipairs(redis.call('HVALS', key)) do
    if string.sub(v, 1, 1) == 'h' then n = n + 1 end
  end
  if holders then
    if value ~= '' then redis.call('SADD', holders, agent) end
    redis.call('PUBLISH', channel, event .. cmsgpack.pack({{tonumber(agent), n}}))
  end
  return n
end
"""

SET_HELD = (
    SET_HELD_RULE
    + """
-- Record that an agent holds an order, or no longer does (or no longer reserves a place).
-- KEYS[1] the agent's held hash
-- ARGV[1] order id, ARGV[2] 'h:<now>' (holds it) or '' (remove), ARGV[3] '1': remove only a
-- pending reservation (a claim that was not won), ARGV[4] now (ms)
-- A holding removed leaves a tombstone 'd:<now>', so that a reconciler that read Postgres
-- just before cannot bring it back (RECONCILE_HELD clears tombstones older than its read).
-- With KEYS[2] (single server only: the holders set) ARGV[5] agent id, ARGV[6] channel,
-- ARGV[7] a change event (msgpack): also SADD the agent to the holders (when it holds the
-- order) and PUBLISH the event followed by a second msgpack object, [[agent, count]], the
-- agent's held count (so the event carries the count without another round trip).
-- Returns how many orders the agent holds now.
return set_held(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], KEYS[2], ARGV[5], ARGV[6],
                ARGV[7])
"""
)

RECONCILE_HELD = """
-- Make an agent's held hash agree with Postgres.
-- KEYS[1] the agent's held hash
-- ARGV[1] when Postgres was read (ms), ARGV[2] now (ms), ARGV[3] pending lifetime (ms),
-- ARGV[4..] the orders Postgres says the agent holds
-- Entries changed before Postgres was read are made to agree with it; entries changed after
-- are newer than what it says and are kept: a holding marked later (its claim committed after
-- the read), a tombstone written later (the order left the agent after the read).  Lapsed
-- pendings are dropped; holdings Postgres knows and Redis lacks (lost data) are added.
-- Returns {changes, how many orders the agent holds now, entries left}.
local read_at = tonumber(ARGV[1])
local want = {}
for i = 4, #ARGV do want[ARGV[i]] = true end
local all = redis.call('HGETALL', KEYS[1])
local changed, n = 0, 0
for i = 1, #all, 2 do
  local f, v = all[i], all[i + 1]
  local kind, at = string.sub(v, 1, 1), tonumber(string.sub(v, 3))
  if want[f] then
    want[f] = nil
    if kind == 'h' then
      n = n + 1
    elseif kind == 'd' and at >= read_at then
      -- left the agent after the read: Postgres is behind
    else
      redis.call('HSET', KEYS[1], f, 'h:' .. ARGV[1]); changed = changed + 1; n = n + 1
    end
  elseif kind == 'p' then
    if at + tonumber(ARGV[3]) <= tonumber(ARGV[2]) then
      redis.call('HDEL', KEYS[1], f); changed = changed + 1
    end
  elseif at < read_at then
    redis.call('HDEL', KEYS[1], f)
    if kind == 'h' then changed = changed + 1 end
  elseif kind == 'h' then
    n = n + 1
  end
end
for f, _ in pairs(want) do
  redis.call('HSET', KEYS[1], f, 'h:' .. ARGV[1]); changed = changed + 1; n = n + 1
end
return {changed, n, redis.call('HLEN', KEYS[1])}
"""
