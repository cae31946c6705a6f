-- Tokens and cost per request. A usage event superseded by a correction (`hive-jobs reconcile`) is
-- left out, so each request is counted once; when more than one correction supersedes the same
-- event (two reconciles that raced, or a foreign writer), only the one with the lowest event_id
-- counts. (queries.connect defines usage as raw_usage itself when no event supersedes another: the
-- same rows, without the anti-joins.)
CREATE OR REPLACE TEMP VIEW usage AS
SELECT u.*
FROM raw_usage AS u
WHERE u.event_id NOT IN (SELECT supersedes FROM raw_usage WHERE supersedes IS NOT NULL)
  AND (u.supersedes IS NULL
       OR u.event_id IN (SELECT min(event_id) FROM raw_usage WHERE supersedes IS NOT NULL GROUP BY supersedes));
