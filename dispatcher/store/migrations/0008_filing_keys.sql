-- Idempotent filing (issue 11): every filing carries a key, the client's Idempotency-Key or
-- one the server made up, recorded in the same statement as the order.  A retried POST
-- /v1/orders with the same key finds the first order instead of filing a second; after a
-- write whose answer was lost, the server finds out by the key whether it was recorded.
CREATE TABLE filing_keys (
    filer       text        NOT NULL,   -- the filing token's actor ("intake:<id>", "admin")
    key         text        NOT NULL,
    fingerprint text        NOT NULL,   -- sha256 of the request body: a key reused for another
                                        -- body is refused
    order_id    bigint      NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (filer, key)
);
CREATE INDEX filing_keys_order ON filing_keys (order_id);
