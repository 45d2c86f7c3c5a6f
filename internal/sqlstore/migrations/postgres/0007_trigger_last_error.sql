-- A trigger's last error: why its controller could not act on its pending
-- events (its spec no longer reads, a dataset it names is gone), shown by
-- `mloop trigger show` until the controller succeeds again.

ALTER TABLE triggers ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
