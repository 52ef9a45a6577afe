-- Grids with boundaries (geo/), import generations, and the widening ladder on orders.

ALTER TABLE grids
    ADD COLUMN aliases     text[] NOT NULL DEFAULT '{}',
    ADD COLUMN geometry    jsonb,            -- GeoJSON geometry, WGS84 lon/lat; NULL: name only
    ADD COLUMN neighbours  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN generation  integer NOT NULL DEFAULT 0,
    ADD COLUMN retired_at  timestamptz;      -- dropped by a later import; orders keep it

-- One row per import: an import replaces the set of grids as a new generation.
CREATE TABLE grid_generations (
    generation  integer PRIMARY KEY,
    imported_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL DEFAULT '',
    grids       integer NOT NULL
);

ALTER TABLE orders
    ADD COLUMN routing       jsonb,          -- how the grid was found (input, method, detail)
    ADD COLUMN schedule      text,           -- the widening ladder fixed at filing
    ADD COLUMN step          smallint NOT NULL DEFAULT 0,
    ADD COLUMN reach_grids   text[],         -- grids offered to while scope = 'grid'
    ADD COLUMN next_step_at  timestamptz;    -- NULL once offered to all grids

UPDATE orders SET next_step_at = widen_at WHERE status = 'offered';

DROP INDEX orders_due;
CREATE INDEX orders_due ON orders (next_step_at) WHERE status = 'offered';

-- Exactly-once widening per rung of the ladder, enforced by the database too.
DROP INDEX order_events_one_widen;
CREATE UNIQUE INDEX order_events_one_widen ON order_events (order_id, ((details ->> 'step')))
    WHERE kind = 'widened';

UPDATE orders SET reach_grids = ARRAY[grid] WHERE reach_grids IS NULL;
ALTER TABLE orders ALTER COLUMN reach_grids SET NOT NULL;
-- Open orders by the grids they reach: the snapshot an agent gets on (re)connect.
DROP INDEX orders_open_by_grid;
CREATE INDEX orders_open_reach ON orders USING gin (reach_grids) WHERE status = 'offered';
