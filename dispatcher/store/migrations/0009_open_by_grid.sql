-- The open-order cap per grid (BANGBAN_GRID_OPEN_CAP) is counted inside every filing's
-- insert.  Since 0002 dropped orders_open_by_grid, that count read every open order of every
-- grid (orders_open) and the heap behind each, dead versions included: 348 shared blocks and
-- 0.70 ms of Postgres per filing in the throughput bench (pg_stat_statements), most of
-- Postgres's cost per order.  Counting one grid's open orders needs an index on the grid.
CREATE INDEX orders_open_by_grid ON orders (grid) WHERE status IN ('offered', 'widened');
