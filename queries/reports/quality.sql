-- Quality ratings per (task_category, model) and per model with task_category '*', apart for
-- judges (rater judge:<model>, `hive-jobs eval`) and people (`hive rate`), over the ratings given
-- since..until (UTC days, inclusive): count, mean and sample variance. The rankings and the
-- suggestions weigh the two (jobs.rankings.quality); see views/rated_answers for the attribution.
-- params: since DATE = 1970-01-01, until DATE = 2999-12-31
SELECT
    CASE WHEN grouping(task_category) = 1 THEN '*' ELSE task_category END AS task_category,
    model,
    judged,
    avg(score) AS quality,
    count(*) AS quality_samples,
    coalesce(var_samp(score), 0) AS quality_var
FROM (SELECT *, starts_with(coalesce(rater, ''), 'judge:') AS judged FROM rated_answers)
WHERE model IS NOT NULL
  AND ts >= CAST($since AS TIMESTAMPTZ) AND ts < CAST($until AS TIMESTAMPTZ) + INTERVAL 1 DAY
GROUP BY GROUPING SETS ((task_category, model, judged), (model, judged))
HAVING grouping(task_category) = 1 OR task_category IS NOT NULL
ORDER BY task_category, model, judged
