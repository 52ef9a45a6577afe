-- The reconciler's watermark (dispatcher/flows/reconciler.py): which transaction last wrote each
-- order, so a periodic pass reads only the orders written since the previous pass began.

-- Rows already here keep 0, older than any watermark: the first pass after this migration
-- finds no watermark in Redis and re-reads the open and recent orders in full.  (A constant
-- default adds the column without rewriting the table.)
ALTER TABLE orders ADD COLUMN changed_xid xid8 NOT NULL DEFAULT '0';

-- A trigger rather than a column in each statement: every write counts, including one made
-- by hand in psql or by a statement added later that forgets the column.
CREATE FUNCTION orders_changed_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_xid := pg_current_xact_id();
    RETURN NEW;
END
$$;
CREATE TRIGGER orders_changed_xid BEFORE INSERT OR UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_changed_xid();

-- The reconciler reads in pages by keyset: changed orders by (changed_xid, id), open orders
-- by id (the full pass and the rolling audit), recent orders by (updated_at, id).
CREATE INDEX orders_changed ON orders (changed_xid, id);
CREATE INDEX orders_open ON orders (id) WHERE status IN ('offered', 'widened');
DROP INDEX orders_updated;
CREATE INDEX orders_updated ON orders (updated_at, id);
