-- Quality ratings per (task_category, model) over the ratings given since..until (UTC days,
-- inclusive): count, mean and sample variance, for the suggestions' non-inferiority test.
-- See views/rated_answers for which model and task a rating counts for.
-- params: since DATE, until DATE
SELECT task_category, model, count(*) AS n, avg(score) AS mean, coalesce(var_samp(score), 0) AS var
FROM rated_answers
WHERE task_category IS NOT NULL AND model IS NOT NULL
  AND ts >= CAST($since AS TIMESTAMPTZ) AND ts < CAST($until AS TIMESTAMPTZ) + INTERVAL 1 DAY
GROUP BY ALL
ORDER BY 1, 2
