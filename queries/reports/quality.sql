-- Mean quality rating per (task_category, model), and per model with task_category '*', over the
-- ratings given since..until (UTC days, inclusive). The model is the one the rating names, else the
-- model that answered the rated request; the task is the request's.
-- params: since DATE = 1970-01-01, until DATE = 2999-12-31
WITH rated AS (
    SELECT request_id, score, model
    FROM quality_ratings
    WHERE ts >= CAST($since AS TIMESTAMPTZ) AND ts < CAST($until AS TIMESTAMPTZ) + INTERVAL 1 DAY
),
answered AS (
    SELECT
        request_id,
        arg_max(coalesce(served_model, model), (fallback_index, attempt)) AS model,
        any_value(task_category) AS task_category
    FROM api_calls
    WHERE request_id IN (SELECT request_id FROM rated)
    GROUP BY request_id
),
joined AS (
    SELECT coalesce(r.model, a.model) AS model, a.task_category, r.score
    FROM rated AS r
    LEFT JOIN answered AS a USING (request_id)
)
SELECT
    CASE WHEN grouping(task_category) = 1 THEN '*' ELSE task_category END AS task_category,
    model,
    avg(score) AS quality,
    count(*) AS quality_samples
FROM joined
WHERE model IS NOT NULL
GROUP BY GROUPING SETS ((task_category, model), (model))
HAVING grouping(task_category) = 1 OR task_category IS NOT NULL
ORDER BY task_category, model
