-- Requests sent without max_tokens, per (task_category, model), since..until (UTC days, inclusive):
-- how many, the output they actually produced (P50/P99 completion tokens), what they cost, and
-- the cost of the tokens beyond that P99 (what a cap at the P99 would have saved). Only writers
-- of api_call schema version 2 or later record max_tokens; older events are left out.
-- params: since DATE, until DATE
WITH first_calls AS (
    SELECT request_id, task_category, coalesce(served_model, model) AS model, max_tokens
    FROM api_calls
    WHERE ts >= CAST($since AS TIMESTAMPTZ) AND ts < CAST($until AS TIMESTAMPTZ) + INTERVAL 1 DAY
      AND attempt = 1 AND fallback_index = 0 AND schema_version >= 2
      AND request_type NOT IN ('benchmark', 'test')
),
billed AS (  -- a fallback chain may bill more than one usage event: one row per request
    SELECT request_id, sum(completion_tokens) AS completion_tokens, sum(cost_usd) AS cost_usd
    FROM usage
    GROUP BY request_id
),
answers AS (
    SELECT f.task_category, f.model, f.max_tokens IS NULL AS uncapped, b.completion_tokens, b.cost_usd
    FROM first_calls AS f
    LEFT JOIN billed AS b USING (request_id)
),
tail AS (
    SELECT task_category, model,
           quantile_cont(completion_tokens, 0.99) FILTER (WHERE uncapped) AS p99_tokens
    FROM answers
    GROUP BY ALL
)
SELECT
    a.task_category, a.model,
    count(*) AS requests,
    count(*) FILTER (WHERE a.uncapped) AS uncapped,
    quantile_cont(a.completion_tokens, 0.5) FILTER (WHERE a.uncapped) AS p50_tokens,
    any_value(t.p99_tokens) AS p99_tokens,
    coalesce(sum(a.cost_usd) FILTER (WHERE a.uncapped), 0) AS uncapped_cost_usd,
    -- tokens beyond the P99, priced at this group's cost per completion token
    coalesce(sum(greatest(a.completion_tokens - t.p99_tokens, 0)) FILTER (WHERE a.uncapped), 0)
        * coalesce(sum(a.cost_usd) / nullif(sum(a.completion_tokens), 0), 0) AS tail_cost_usd
FROM answers AS a
JOIN tail AS t ON a.model = t.model AND a.task_category IS NOT DISTINCT FROM t.task_category
GROUP BY a.task_category, a.model
HAVING count(*) FILTER (WHERE a.uncapped) > 0
ORDER BY uncapped DESC, a.model
