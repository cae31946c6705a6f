-- One row per logical request: its attempts (over the whole fallback chain), final status, the
-- model that answered, and its usage summed over every billed model of the chain.
CREATE OR REPLACE TEMP VIEW requests AS
WITH calls AS (
    SELECT
        request_id,
        min(ts) AS ts,
        count(*) AS attempts,
        arg_max(status, (fallback_index, attempt)) AS final_status,
        arg_max(coalesce(served_model, model), (fallback_index, attempt)) AS model,
        arg_max(provider, (fallback_index, attempt)) AS provider,
        any_value(request_type) AS request_type,
        any_value(task_category) AS task_category,
        any_value(app) AS app,
        max(fallback_index) AS fallback_index,
        sum(latency_ms) AS total_latency_ms
    FROM api_calls
    GROUP BY request_id
),
billed AS (
    SELECT
        request_id,
        sum(prompt_tokens) AS prompt_tokens,
        sum(completion_tokens) AS completion_tokens,
        sum(reasoning_tokens) AS reasoning_tokens,
        sum(cached_tokens) AS cached_tokens,
        sum(cost_usd) AS cost_usd,
        CASE
            WHEN bool_or(cost_source = 'unknown') THEN 'unknown'
            WHEN bool_or(cost_source = 'estimated') THEN 'estimated'
            ELSE 'billed'
        END AS cost_source
    FROM usage
    GROUP BY request_id
)
SELECT c.*, b.prompt_tokens, b.completion_tokens, b.reasoning_tokens, b.cached_tokens, b.cost_usd, b.cost_source
FROM calls AS c
LEFT JOIN billed AS b USING (request_id);
