-- SMS (issue 13): short codes on orders, the texter's work list, the outbox, inbound texts.

-- The code an agent replies with.  Unique among orders still in play (open, held, escalated,
-- replied): a held order keeps its code reserved, so releasing it can never collide; a closed
-- or cancelled order frees its code.  NULL for orders filed before this migration.
ALTER TABLE orders ADD COLUMN short_code text;
CREATE UNIQUE INDEX orders_short_code_live ON orders (short_code)
    WHERE short_code IS NOT NULL AND status NOT IN ('closed', 'cancelled');

-- Work for the texter, written in the same statement as the change that causes it (filing, a
-- widening, a release: kind 'offer'; an applicant's step: the event kind).  The sender loop of
-- any process expands a trigger into texts (who is offline, caps, quiet hours) and marks it
-- done in one transaction, so a trigger is expanded exactly once.
CREATE TABLE sms_triggers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES orders (id),
    kind        text NOT NULL,
    step        smallint,
    offered_at  timestamptz,
    grids       text[],          -- offer: the grids reached now (NULL: all grids)
    prev_grids  text[] NOT NULL DEFAULT '{}',  -- offer: the grids reached before (texted then)
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,  -- the event's details
    at          timestamptz NOT NULL,
    done_at     timestamptz
);
CREATE INDEX sms_triggers_pending ON sms_triggers (id) WHERE done_at IS NULL;

-- The outbox: one row per text.  `id` is what the gateway gets (and dedupes on); `dedupe` makes
-- each text exist once whatever expands or handles its cause twice: one offer per agent per
-- order, offering and rung; one reply per inbound text; one applicant text per trigger.
-- A sender claims due texts ('queued' -> 'sending' with a lease, FOR UPDATE SKIP LOCKED) in a
-- short transaction, posts them with no transaction open, then records the answer; a claim
-- whose lease lapsed (its process died mid-send) is claimed again: the same id, once more.
CREATE TABLE sms_outbox (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq           bigint GENERATED ALWAYS AS IDENTITY,  -- the order texts were made in
    dedupe        text NOT NULL UNIQUE,
    kind          text NOT NULL,
    to_phone      text NOT NULL,
    text          text NOT NULL,
    order_id      bigint REFERENCES orders (id),
    agent_id      bigint REFERENCES agents (id),
    step          smallint,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed',
                                    'skipped')),
    note          text,
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    next_at       timestamptz NOT NULL,    -- not sent before (retry backoff, quiet hours)
    lease_until   timestamptz,             -- 'sending': the sender's claim lapses then
    sent_at       timestamptz,
    delivered_at  timestamptz,
    error         text
);
CREATE INDEX sms_outbox_due ON sms_outbox (next_at, seq) WHERE status = 'queued';
CREATE INDEX sms_outbox_leased ON sms_outbox (lease_until) WHERE status = 'sending';
CREATE INDEX sms_outbox_by_order ON sms_outbox (order_id, created_at);
CREATE INDEX sms_outbox_by_phone ON sms_outbox (to_phone, created_at);
-- The caps count today's offers per agent and in all.
CREATE INDEX sms_outbox_offers ON sms_outbox (created_at, agent_id) WHERE kind = 'offer';

-- Inbound texts, by the gateway's id: a repeat gets the first answer and no second reply.
CREATE TABLE sms_inbound (
    id           text PRIMARY KEY,
    from_phone   text NOT NULL,
    text         text NOT NULL,
    received_at  timestamptz,
    agent_id     bigint REFERENCES agents (id),
    order_id     bigint REFERENCES orders (id),
    result       text,            -- NULL until handled
    created_at   timestamptz NOT NULL DEFAULT now(),
    handled_at   timestamptz
);
