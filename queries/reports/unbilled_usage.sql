-- Usage events whose cost was not billed (estimated or unknown), never superseded, with a
-- generation id to look up in /generation; with the stream outcome of their request. Oldest first.
-- params: none
SELECT u.event_id, u.request_id, u.generation_id, u.model, u.provider, u.request_type,
       u.task_category, u.app, u."user", u.tags, u.cost_source,
       (SELECT any_value(o.outcome) FROM raw_stream_outcome AS o WHERE o.request_id = u.request_id) AS outcome,
       u.ts, u.key_id
FROM raw_usage AS u
WHERE u.cost_source <> 'billed'
  AND u.supersedes IS NULL
  AND u.generation_id IS NOT NULL
  AND u.event_id NOT IN (SELECT supersedes FROM raw_usage WHERE supersedes IS NOT NULL)
ORDER BY u.ts
