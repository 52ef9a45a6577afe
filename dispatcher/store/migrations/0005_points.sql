-- Points, pay and oversight (issue 14): classes given after closing, adjustments, approved
-- payouts, follow-up samples and calls, and fair-play records (offer deliveries, claim timings).

-- Append-only tables refuse UPDATE and DELETE (TRUNCATE, for tests and resets, still works).
CREATE FUNCTION points_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END
$$;

-- A class given by an operator to an order that closed without one (free text never
-- classified): the order earns from then on, in the month recorded if its quarter was frozen.
CREATE TABLE points_classes (
    order_id    bigint PRIMARY KEY REFERENCES orders (id),
    item_class  smallint NOT NULL CHECK (item_class IN (1, 2)),
    reason      text NOT NULL,
    by_whom     text NOT NULL,
    at          timestamptz NOT NULL
);
CREATE TRIGGER points_classes_append_only BEFORE UPDATE OR DELETE ON points_classes
    FOR EACH ROW EXECUTE FUNCTION points_append_only();

-- Operators' corrections: signed points for an agent and a month, with who, when and why.
CREATE TABLE points_adjustments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id    bigint NOT NULL REFERENCES agents (id),
    month       text NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    points      numeric(12, 2) NOT NULL CHECK (points <> 0),
    reason      text NOT NULL,
    by_whom     text NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX points_adjustments_by_month ON points_adjustments (month);
CREATE INDEX points_adjustments_by_at ON points_adjustments (at);
CREATE TRIGGER points_adjustments_append_only BEFORE UPDATE OR DELETE ON points_adjustments
    FOR EACH ROW EXECUTE FUNCTION points_append_only();

-- An approved quarter: frozen, with the payout as it was approved (per agent, per township).
CREATE TABLE payout_approvals (
    quarter      text PRIMARY KEY CHECK (quarter ~ '^[0-9]{4}-Q[1-4]$'),
    approved_at  timestamptz NOT NULL,
    by_whom      text NOT NULL,
    snapshot     jsonb NOT NULL
);
CREATE TRIGGER payout_approvals_append_only BEFORE UPDATE OR DELETE ON payout_approvals
    FOR EACH ROW EXECUTE FUNCTION points_append_only();

-- Follow-up calls (回访): one sample per month, reproducible from its seed and share.
CREATE TABLE followup_samples (
    month       text PRIMARY KEY CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    seed        bigint NOT NULL,
    share       numeric(6, 4) NOT NULL,
    candidates  integer NOT NULL,
    order_ids   bigint[] NOT NULL,
    by_whom     text NOT NULL,
    at          timestamptz NOT NULL
);

CREATE TABLE followup_calls (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     bigint NOT NULL REFERENCES orders (id),
    month        text NOT NULL REFERENCES followup_samples (month),
    reached      boolean NOT NULL,
    satisfied    boolean,
    comment      text,
    contradicts  boolean NOT NULL,
    by_whom      text NOT NULL,
    at           timestamptz NOT NULL
);
CREATE INDEX followup_calls_by_order ON followup_calls (order_id, id);

-- Fair play.  Deliveries are counted per agent, grid of the order, and local day (one row
-- per day, not per offer); each claim is one row, with the server's times.
CREATE TABLE offer_deliveries (
    day       date NOT NULL,
    agent_id  bigint NOT NULL,
    grid      text NOT NULL,
    offers    integer NOT NULL,
    PRIMARY KEY (day, agent_id, grid)
);

CREATE TABLE claim_timings (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id      bigint NOT NULL,
    order_id      bigint NOT NULL,
    delivered_at  timestamptz,           -- offer handed to the agent's connection; NULL: unknown
    received_at   timestamptz NOT NULL,  -- claim read by the server
    reaction_ms   integer,
    outcome       text NOT NULL,         -- a claim result; '' when ignored (too fast)
    ignored       boolean NOT NULL DEFAULT false
);
CREATE INDEX claim_timings_by_time ON claim_timings (received_at);

-- The ledger reads orders by when they closed.
CREATE INDEX order_events_closes ON order_events (at) WHERE kind IN ('rated', 'closed_unrated');
