-- The most recent request of the store that a person may rate (`hive rate last`): the latest
-- api_call that is not a judge's own request; no row on an empty store.
-- params: none
SELECT request_id
FROM api_calls
WHERE request_type <> 'judge'
ORDER BY ts DESC, attempt DESC
LIMIT 1
