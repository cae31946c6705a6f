-- One row per quality rating with the model and task it rates: the model the rating names, else
-- the model that answered the rated request; the task is the request's; rater says who rated
-- (a person's name, or judge:<model> for `hive-jobs eval`).
CREATE OR REPLACE TEMP VIEW rated_answers AS
WITH answered AS (
    SELECT
        request_id,
        arg_max(coalesce(served_model, model), (fallback_index, attempt)) AS model,
        any_value(task_category) AS task_category
    FROM api_calls
    WHERE request_id IN (SELECT request_id FROM quality_ratings)
    GROUP BY request_id
)
SELECT r.ts, r.request_id, r.score, coalesce(r.model, a.model) AS model, a.task_category, r.rater
FROM quality_ratings AS r
LEFT JOIN answered AS a USING (request_id);
