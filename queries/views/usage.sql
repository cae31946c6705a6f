-- Tokens and cost per request. A usage event superseded by a later correction
-- (`hive-jobs reconcile`) is left out, so each request is counted once.
CREATE OR REPLACE TEMP VIEW usage AS
SELECT u.*
FROM raw_usage AS u
WHERE u.event_id NOT IN (SELECT supersedes FROM raw_usage WHERE supersedes IS NOT NULL);
