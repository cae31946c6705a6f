-- Budget alerts already fired for periods starting on or after $since: the keys an alert run
-- checks so that each (scope, period, threshold) fires once.
-- params: since DATE
SELECT scope, period, period_start, kind, COALESCE(threshold_pct, -1) AS threshold_pct
FROM budget_alerts
WHERE period_start >= CAST($since AS VARCHAR)
