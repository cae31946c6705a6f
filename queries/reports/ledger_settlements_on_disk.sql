-- The usage events on disk (superseded or not) that budget-ledger settlements came from:
-- `hive-jobs rebuild-ledger` counts those settlements from the events and keeps the others (events
-- still in a writer's buffer or a spill file) from the ledger. A settlement is found by the id of
-- the usage event that settled it, or, when it was settled without one, by request id and model.
-- params: event_ids VARCHAR[], request_ids VARCHAR[], since DATE (nullable: all time)
SELECT u.event_id, u.request_id, u.model
FROM raw_usage AS u
WHERE ($since IS NULL OR u.ts >= CAST($since AS TIMESTAMPTZ))
  AND (u.event_id IN (SELECT unnest(TRY_CAST($event_ids AS VARCHAR[])))
       OR u.request_id IN (SELECT unnest(TRY_CAST($request_ids AS VARCHAR[]))))
