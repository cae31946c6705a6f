-- Tokens and cost per request. A usage event superseded by a later correction
-- (`hive-jobs reconcile`) is left out, so each request is counted once. (queries.connect defines
-- usage as raw_usage itself when no event supersedes another: the same rows, without the anti-join.)
CREATE OR REPLACE TEMP VIEW usage AS
SELECT u.*
FROM raw_usage AS u
WHERE u.event_id NOT IN (SELECT supersedes FROM raw_usage WHERE supersedes IS NOT NULL);
