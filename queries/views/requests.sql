-- One row per logical request: its attempts, final status, the model that answered, and its usage.
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
)
SELECT
    c.*,
    u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, u.cached_tokens,
    u.cost_usd, u.cost_source
FROM calls AS c
LEFT JOIN usage AS u USING (request_id);
