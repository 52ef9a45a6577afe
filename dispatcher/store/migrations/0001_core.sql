-- Core dispatch: grids, agents, tokens, orders and their trail.

CREATE TABLE grids (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    level       text NOT NULL DEFAULT 'grid',
    parent      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agents (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    phone       text NOT NULL UNIQUE,
    grids       text[] NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Tokens are stored as SHA-256 digests; the plain token is shown once, when created.
CREATE TABLE tokens (
    digest      bytea PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('admin', 'intake', 'agent', 'tracking')),
    name        text NOT NULL DEFAULT '',
    agent_id    bigint REFERENCES agents (id),
    order_id    bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK ((kind = 'agent') = (agent_id IS NOT NULL)),
    CHECK ((kind = 'tracking') = (order_id IS NOT NULL))
);

CREATE TABLE orders (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status          text NOT NULL
                    CHECK (status IN ('offered', 'widened', 'claimed', 'cancelled')),
    grid            text NOT NULL REFERENCES grids (code),
    item            text,
    text            text,
    item_class      smallint CHECK (item_class IN (1, 2)),
    applicant_name  text,
    applicant_phone text,
    created_at      timestamptz NOT NULL,
    widen_at        timestamptz NOT NULL,
    scope           text NOT NULL CHECK (scope IN ('grid', 'all')),
    claimed_by      bigint REFERENCES agents (id),
    claimed_at      timestamptz,
    version         integer NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- A claimed order always names its one winner; nothing else does.
    CHECK ((status = 'claimed') = (claimed_by IS NOT NULL)),
    CHECK (item IS NOT NULL OR text IS NOT NULL)
);

-- Open orders by grid: the snapshot an agent gets on (re)connect.
CREATE INDEX orders_open_by_grid ON orders (grid) WHERE status IN ('offered', 'widened');
CREATE INDEX orders_widened ON orders (id) WHERE status = 'widened';
-- The widening backstop sweep and the reconciler.
CREATE INDEX orders_due ON orders (widen_at) WHERE status = 'offered';
CREATE INDEX orders_updated ON orders (updated_at);

-- The trail (痕迹): append-only, one row per change.
CREATE TABLE order_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES orders (id),
    at          timestamptz NOT NULL,
    kind        text NOT NULL,
    actor       text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX order_events_by_order ON order_events (order_id, id);
-- Exactly-once widening, enforced by the database as well as by the conditional update.
CREATE UNIQUE INDEX order_events_one_widen ON order_events (order_id) WHERE kind = 'widened';
