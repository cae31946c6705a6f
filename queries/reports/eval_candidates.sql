-- Requests answered since..until (UTC days, inclusive) that a judge may grade: at least one
-- attempt succeeded, not a judge's own request, and not yet rated by $rater. One row per request
-- with the task category it was asked under and the model that answered (the last successful
-- attempt of the last fallback). `hive-jobs eval` keeps those whose text was stored.
-- params: since DATE, until DATE, rater VARCHAR = 'judge:x'
SELECT
    request_id,
    any_value(task_category) AS task_category,
    arg_max(coalesce(served_model, model), (fallback_index, attempt)) FILTER (WHERE status = 'ok') AS model
FROM api_calls
WHERE ts >= CAST($since AS TIMESTAMPTZ) AND ts < CAST($until AS TIMESTAMPTZ) + INTERVAL 1 DAY
  AND request_type <> 'judge'
  AND request_id NOT IN (SELECT request_id FROM quality_ratings WHERE rater = $rater)
GROUP BY request_id
HAVING bool_or(status = 'ok')
ORDER BY request_id
