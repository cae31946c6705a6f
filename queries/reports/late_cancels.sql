-- Streams the caller cancelled after most of a typical answer had arrived, per (task_category,
-- model), since..until (UTC days, inclusive). "Most" = at least $share of the typical completion
-- tokens (the mean) of that model's completed streams in the same task: paid for, then thrown away.
-- params: since DATE, until DATE, share DOUBLE
WITH s AS (
    SELECT model, task_category, outcome, completion_tokens
    FROM stream_outcomes
    WHERE ts >= CAST($since AS TIMESTAMPTZ) AND ts < CAST($until AS TIMESTAMPTZ) + INTERVAL 1 DAY
      AND request_type NOT IN ('benchmark', 'test')
),
typical AS (
    SELECT model, task_category, avg(completion_tokens) AS typical_tokens
    FROM s WHERE outcome = 'completed'
    GROUP BY ALL
)
SELECT s.task_category, s.model,
       count(*) FILTER (WHERE s.outcome = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE s.outcome = 'cancelled' AND s.completion_tokens >= $share * t.typical_tokens) AS late,
       coalesce(sum(s.completion_tokens) FILTER (WHERE s.outcome = 'cancelled' AND s.completion_tokens >= $share * t.typical_tokens), 0) AS late_tokens,
       count(*) AS streams
FROM s
JOIN typical AS t ON s.model = t.model AND s.task_category IS NOT DISTINCT FROM t.task_category
GROUP BY ALL
HAVING count(*) FILTER (WHERE s.outcome = 'cancelled') > 0
ORDER BY late DESC, s.model
