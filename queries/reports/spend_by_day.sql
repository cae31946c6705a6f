-- Billed or estimated USD per (UTC day, app, model, virtual key) since $since (all time when NULL):
-- what the budget ledger and `hive budget show` count as spent. Superseded usage is excluded by the
-- view. key_id is the gateway's virtual key (NULL without one, and in usage events before schema 3).
-- params: since DATE (nullable)
SELECT CAST(ts AS DATE) AS day, app, model, key_id, SUM(cost_usd) AS cost_usd
FROM usage
WHERE cost_usd IS NOT NULL AND ($since IS NULL OR ts >= CAST($since AS TIMESTAMPTZ))
GROUP BY ALL
ORDER BY day
