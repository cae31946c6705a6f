-- The model that answered one request (the last attempt of the last fallback), from api_call events,
-- else the model its usage event names; no row when the request id is unknown.
-- params: request_id VARCHAR = 'x'
WITH calls AS (
    SELECT arg_max(coalesce(served_model, model), (fallback_index, attempt)) AS model, count(*) AS n
    FROM api_calls
    WHERE request_id = $request_id
),
billed AS (
    SELECT any_value(model) AS model, count(*) AS n FROM usage WHERE request_id = $request_id
)
SELECT coalesce(calls.model, billed.model) AS model
FROM calls, billed
WHERE calls.n > 0 OR billed.n > 0
