-- One row per request of A/B experiment $name: variant, model, final status, latency, cost, quality.
-- params: name VARCHAR
--
-- A request assigned but never sent (no api_call) has a NULL status; the report counts it apart.
-- latency_ms sums the request's attempts (what the caller waited); cost_usd is NULL when unbilled.
-- (The final status follows the `requests` view: the last attempt of the last model tried.)
WITH assigned AS (
    SELECT request_id, any_value(variant) AS variant, any_value(model) AS model, min(ts) AS ts
    FROM ab_assignments
    WHERE experiment = $name
    GROUP BY request_id
),
calls AS (
    SELECT request_id, arg_max(status, (fallback_index, attempt)) AS final_status, sum(latency_ms) AS latency_ms,
           count(*) AS attempts
    FROM api_calls
    WHERE request_id IN (SELECT request_id FROM assigned)
    GROUP BY request_id
),
costs AS (
    SELECT request_id, sum(cost_usd) AS cost_usd
    FROM usage
    WHERE request_id IN (SELECT request_id FROM assigned)
    GROUP BY request_id
),
ratings AS (
    SELECT request_id, avg(score) AS quality
    FROM quality_ratings
    WHERE request_id IN (SELECT request_id FROM assigned)
    GROUP BY request_id
)
SELECT a.variant, a.model, a.ts, c.final_status, c.latency_ms, c.attempts, k.cost_usd, r.quality
FROM assigned AS a
LEFT JOIN calls AS c USING (request_id)
LEFT JOIN costs AS k USING (request_id)
LEFT JOIN ratings AS r USING (request_id)
ORDER BY a.ts, a.variant
