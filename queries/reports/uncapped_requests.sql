-- Requests sent without max_tokens, per (task_category, model), since..until (UTC days, inclusive):
-- how many, the output they actually produced (P50/P99 completion tokens), what they cost, and
-- the cost of the tokens beyond that P99 (what a cap at the P99 would have saved). Only writers
-- of api_call schema version 2 or later record max_tokens; older events are left out.
-- params: since DATE, until DATE
--
-- The period's first calls are joined to their usage events first, and only the uncapped requests
-- are summed per request (a fallback chain may bill more than one usage event): grouping every
-- usage event of the store by request_id cost more than the rest of a monthly report.
WITH first_calls AS (
    SELECT request_id, task_category, coalesce(served_model, model) AS model, max_tokens IS NULL AS uncapped
    FROM api_calls
    WHERE ts >= CAST($since AS TIMESTAMPTZ) AND ts < CAST($until AS TIMESTAMPTZ) + INTERVAL 1 DAY
      AND attempt = 1 AND fallback_index = 0 AND schema_version >= 2
      AND request_type NOT IN ('benchmark', 'test')
),
calls AS (  -- per (task_category, model): requests and uncapped requests
    SELECT task_category, model, count(*) AS requests, count(*) FILTER (WHERE uncapped) AS uncapped
    FROM first_calls
    GROUP BY ALL
),
billed AS (  -- each usage event of a first call, with the call's group
    SELECT f.request_id, f.task_category, f.model, f.uncapped, u.completion_tokens, u.cost_usd
    FROM usage AS u
    JOIN first_calls AS f USING (request_id)
),
price AS (  -- the group's cost per completion token, over every billed request
    SELECT task_category, model, sum(cost_usd) / nullif(sum(completion_tokens), 0) AS usd_per_token
    FROM billed
    GROUP BY ALL
),
uncapped_answers AS (  -- one row per uncapped request that was billed
    SELECT any_value(task_category) AS task_category, any_value(model) AS model,
           sum(completion_tokens) AS completion_tokens, sum(cost_usd) AS cost_usd
    FROM billed
    WHERE uncapped
    GROUP BY request_id
),
tail AS (
    SELECT task_category, model,
           quantile_cont(completion_tokens, 0.5) AS p50_tokens,
           quantile_cont(completion_tokens, 0.99) AS p99_tokens,
           sum(cost_usd) AS cost_usd
    FROM uncapped_answers
    GROUP BY ALL
),
beyond AS (  -- tokens beyond the P99
    SELECT a.task_category, a.model, sum(greatest(a.completion_tokens - t.p99_tokens, 0)) AS tokens
    FROM uncapped_answers AS a
    JOIN tail AS t ON a.model = t.model AND a.task_category IS NOT DISTINCT FROM t.task_category
    GROUP BY ALL
)
SELECT
    c.task_category, c.model, c.requests, c.uncapped, t.p50_tokens, t.p99_tokens,
    coalesce(t.cost_usd, 0) AS uncapped_cost_usd,
    -- tokens beyond the P99, priced at this group's cost per completion token
    coalesce(b.tokens, 0) * coalesce(p.usd_per_token, 0) AS tail_cost_usd
FROM calls AS c
LEFT JOIN tail AS t ON c.model = t.model AND c.task_category IS NOT DISTINCT FROM t.task_category
LEFT JOIN beyond AS b ON c.model = b.model AND c.task_category IS NOT DISTINCT FROM b.task_category
LEFT JOIN price AS p ON c.model = p.model AND c.task_category IS NOT DISTINCT FROM p.task_category
WHERE c.uncapped > 0 AND c.model IS NOT NULL
ORDER BY c.uncapped DESC, c.model, c.task_category
