-- After the grab: the catalogue, the workflow states and their fields, clock deadlines.

-- The catalogue (事项目录), seeded from dispatcher/core/data/catalog.json on start: only items not
-- present are inserted, so operators' edits survive restarts.  Items are retired, never deleted.
CREATE TABLE catalog_items (
    code             text PRIMARY KEY,
    name             text NOT NULL,
    category         text NOT NULL,
    item_class       smallint NOT NULL CHECK (item_class IN (1, 2)),
    eligible         text NOT NULL,
    materials        text[] NOT NULL DEFAULT '{}',
    steps            text[] NOT NULL DEFAULT '{}',
    time_limit_days  smallint NOT NULL CHECK (time_limit_days BETWEEN 0 AND 365),
    fee              text NOT NULL,
    level            text NOT NULL CHECK (level IN ('village', 'township', 'county')),
    retired_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN (
    'offered', 'widened', 'claimed', 'accepted', 'awaiting_materials', 'replied', 'closed',
    'cancelled', 'escalated'));
-- An order being handled names its agent; an open or escalated one names none.  (A cancelled
-- or closed order keeps whoever had it.)
ALTER TABLE orders DROP CONSTRAINT orders_check;
ALTER TABLE orders ADD CONSTRAINT orders_agent_check CHECK (
    (status NOT IN ('claimed', 'accepted', 'awaiting_materials', 'replied')
        OR claimed_by IS NOT NULL)
    AND (status NOT IN ('offered', 'widened', 'escalated') OR claimed_by IS NULL));

ALTER TABLE orders
    ADD COLUMN offered_at       timestamptz,    -- the ladder counts from here (filing, release)
    ADD COLUMN escalate_at      timestamptz,    -- still open then: escalated to the operators
    ADD COLUMN excluded         bigint[] NOT NULL DEFAULT '{}',  -- agents who released it
    ADD COLUMN item_name        text,
    ADD COLUMN required         text[] NOT NULL DEFAULT '{}',    -- the item's materials
    ADD COLUMN time_limit_days  smallint,
    ADD COLUMN missing          text[] NOT NULL DEFAULT '{}',
    ADD COLUMN supply_by        timestamptz,
    ADD COLUMN accepted_at      timestamptz,
    ADD COLUMN due_at           timestamptz,
    ADD COLUMN replied_at       timestamptz,
    ADD COLUMN close_at         timestamptz,    -- replied and still unrated then: closed
    ADD COLUMN rating           text CHECK (rating IN (
        'very_satisfied', 'satisfied', 'fair', 'unsatisfied'));

UPDATE orders SET offered_at = created_at;
UPDATE orders SET escalate_at = created_at + interval '1 day'
    WHERE status IN ('offered', 'widened');

-- The clock's work lists (backstops for the Redis schedule), and the operators' views.
CREATE INDEX orders_escalate_due ON orders (escalate_at) WHERE status IN ('offered', 'widened');
CREATE INDEX orders_close_due ON orders (close_at) WHERE status = 'replied';
CREATE INDEX orders_by_status ON orders (status, id);
CREATE INDEX orders_held ON orders (claimed_by)
    WHERE status IN ('claimed', 'accepted', 'awaiting_materials');
-- Snapshot on (re)connect: status = 'widened' was covered by orders_widened already.

-- Widening happens once per rung *per offering*: after a release the ladder starts again, so
-- the rung is told apart by when its offering began.
DROP INDEX order_events_one_widen;
CREATE UNIQUE INDEX order_events_one_widen
    ON order_events (order_id, (details ->> 'step'), (details ->> 'offered_at'))
    WHERE kind = 'widened';
-- One ending per order: rated, or closed unrated, never both.
CREATE UNIQUE INDEX order_events_one_close ON order_events (order_id)
    WHERE kind IN ('rated', 'closed_unrated');
