-- Budget alerts that fired since..until (UTC days, inclusive), oldest first, for the reports.
-- params: since DATE, until DATE
SELECT ts, scope, kind, message
FROM budget_alerts
WHERE ts >= CAST($since AS TIMESTAMPTZ) AND ts < CAST($until AS TIMESTAMPTZ) + INTERVAL 1 DAY
ORDER BY ts
