-- Quality ratings per (task_category, model) over the ratings given since..until (UTC days,
-- inclusive): count, mean and sample variance, for the suggestions' non-inferiority test.
-- The model is the one the rating names, else the model that answered the rated request.
-- params: since DATE, until DATE
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
)
SELECT a.task_category, coalesce(r.model, a.model) AS model,
       count(*) AS n, avg(r.score) AS mean, coalesce(var_samp(r.score), 0) AS var
FROM rated AS r
JOIN answered AS a USING (request_id)
WHERE a.task_category IS NOT NULL
GROUP BY ALL
ORDER BY 1, 2
