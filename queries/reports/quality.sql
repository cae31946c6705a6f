-- Mean quality rating per (task_category, model), and per model with task_category '*', over the
-- ratings given since..until (UTC days, inclusive); see views/rated_answers for the attribution.
-- params: since DATE = 1970-01-01, until DATE = 2999-12-31
SELECT
    CASE WHEN grouping(task_category) = 1 THEN '*' ELSE task_category END AS task_category,
    model,
    avg(score) AS quality,
    count(*) AS quality_samples
FROM rated_answers
WHERE model IS NOT NULL
  AND ts >= CAST($since AS TIMESTAMPTZ) AND ts < CAST($until AS TIMESTAMPTZ) + INTERVAL 1 DAY
GROUP BY GROUPING SETS ((task_category, model), (model))
HAVING grouping(task_category) = 1 OR task_category IS NOT NULL
ORDER BY task_category, model
