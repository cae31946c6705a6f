-- The store at a glance: one header row (period, requests, spend, success rate), then the top
-- models by spend with latency percentiles over successful attempts.
-- params: none
WITH req AS (
    SELECT * FROM requests
),
head AS (
    SELECT
        coalesce(strftime(min(ts), '%Y-%m-%d') || '..' || strftime(max(ts), '%Y-%m-%d'), 'empty') AS label,
        count(*) AS requests,
        coalesce(sum(cost_usd), 0) AS cost,
        coalesce(avg(CASE WHEN final_status = 'ok' THEN 1.0 ELSE 0.0 END), 0) AS success,
        NULL::DOUBLE AS p50, NULL::DOUBLE AS p95, 0 AS ord
    FROM req
),
per_model AS (
    SELECT
        r.model AS label,
        count(*) AS requests,
        coalesce(sum(r.cost_usd), 0) AS cost,
        avg(CASE WHEN r.final_status = 'ok' THEN 1.0 ELSE 0.0 END) AS success,
        NULL::DOUBLE AS p50, NULL::DOUBLE AS p95, 1 AS ord
    FROM req AS r
    GROUP BY r.model
),
latency AS (
    SELECT coalesce(served_model, model) AS label,
           quantile_cont(latency_ms, 0.5) AS p50, quantile_cont(latency_ms, 0.95) AS p95
    FROM api_calls WHERE status = 'ok'
    GROUP BY 1
)
SELECT label, requests, cost, success, p50, p95 FROM head
UNION ALL
SELECT * FROM (
    SELECT m.label, m.requests, m.cost, m.success, l.p50, l.p95
    FROM per_model AS m LEFT JOIN latency AS l USING (label)
    ORDER BY m.cost DESC, m.label
    LIMIT 8
);
