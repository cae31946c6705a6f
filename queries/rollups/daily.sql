-- The daily rollup: one row per (day, model, provider, request_type, task_category) for the UTC days
-- since..until (inclusive), from the event views. Written by jobs/rollup/daily.py, one file per day.
-- params: since DATE = 1970-01-01, until DATE = 2999-12-31
--
-- Every source is aggregated on its own (each event counts on its own UTC day) under k, a 64-bit hash
-- of the five key columns (cheap to group by; NULL-safe), and the partial rows are stacked and summed
-- per k: no joins on nullable keys. Sums of floats go through DECIMAL so
-- the result does not depend on DuckDB's thread scheduling (rebuild == incremental, byte for byte).
-- day is the UTC day number (floor of epoch microseconds / 86400e6): the same day as CAST(ts AS DATE)
-- under TimeZone UTC at a third of the cost (no calendar arithmetic per event); it becomes a DATE
-- once per output row.
-- model is the model that answered (served_model) when known, else the one requested.
-- requests = requests whose first attempt (attempt 1, always on the primary model) is in the row, plus
-- requests that reached the row's model as a fallback (distinct request ids among fallback attempts).
-- retries = attempts - requests. Each day's rows depend on that day's files only.
-- Usage counters of events written before usage schema 2 (cache writes, audio/image tokens, web
-- searches, upstream cost) are NULL and count as 0; a BYOK event without an upstream cost counts in
-- byok_upstream_unknown. cost_usd is what OpenRouter charged: for BYOK requests only its fee
-- (byok_fee_usd, included in cost_usd); byok_upstream_usd is the providers' bill on the users' own
-- keys, paid outside OpenRouter and never included in cost_usd.
-- latency_values / ttft_values: the row's successful attempts' values. jobs/rollup/daily.py sorts and turns
-- them into the exact P50/P95/P99 (interpolated like quantile_cont) and the mergeable histogram
-- (jobs/rollup/histogram.py) in one vectorised pass: one sort here instead of a quantile_cont per column
-- plus a (row, bucket) group-by per histogram, which cost a third of the query.
WITH calls AS MATERIALIZED (
    SELECT
        hash(CAST(fdiv(epoch_us(ts), 86400000000) AS INTEGER), coalesce(served_model, model), provider, request_type, task_category) AS k,
        CAST(fdiv(epoch_us(ts), 86400000000) AS INTEGER) AS day, coalesce(served_model, model) AS model, provider, request_type,
        task_category, request_id, attempt, status, status = 'ok' AS ok, fallback_index, latency_ms, ttft_ms
    FROM api_calls
    WHERE ts >= CAST($since AS TIMESTAMPTZ) AND ts < CAST($until AS TIMESTAMPTZ) + INTERVAL 1 DAY
),
call_rows AS (
    SELECT
        k, any_value(day) AS day, any_value(model) AS model, any_value(provider) AS provider,
        any_value(request_type) AS request_type, any_value(task_category) AS task_category,
        count(*) FILTER (WHERE attempt = 1) AS first_attempts,
        count(*) AS attempts,
        count(*) FILTER (WHERE ok) AS successes,
        count(*) FILTER (WHERE NOT ok) AS errors
    FROM calls
    GROUP BY k
),
value_rows AS (
    -- kept out of the stacked group-by below, which would copy every list once more; a NaN (a
    -- broken clock, never a measurement) would sort last and break the histogram's bucket order
    -- unsorted: jobs/rollup/daily.py sorts each row's values in numpy (a list ORDER BY here is a
    -- list_sort per row: a fifth of the query's CPU)
    SELECT k, list(latency_ms) FILTER (WHERE NOT isnan(latency_ms)) AS latency_values,
           list(ttft_ms) FILTER (WHERE NOT isnan(ttft_ms)) AS ttft_values
    FROM calls WHERE ok
    GROUP BY k
),
fallback_rows AS (
    -- few attempts are fallbacks: counting their distinct requests separately is cheap
    SELECT k, count(DISTINCT request_id) AS fallbacks FROM calls WHERE fallback_index > 0 GROUP BY k
),
error_rows AS (
    SELECT k, list(status ORDER BY status) AS error_statuses, list(n ORDER BY status) AS error_counts
    FROM (SELECT k, status, count(*) AS n FROM calls WHERE NOT ok GROUP BY k, status)
    GROUP BY k
),
usage_events AS MATERIALIZED (
    -- usage is scanned once for its two aggregates (DuckDB streams a MATERIALIZED CTE to its readers):
    -- a second scan for the rare parts decoded every row's filter columns again (-6% CPU per batch)
    SELECT
        hash(CAST(fdiv(epoch_us(ts), 86400000000) AS INTEGER), model, provider, request_type, task_category) AS k,
        CAST(fdiv(epoch_us(ts), 86400000000) AS INTEGER) AS day, model, provider, request_type, task_category,
        prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_usd, cost_source,
        cache_write_tokens, prompt_audio_tokens, prompt_image_tokens, completion_audio_tokens,
        completion_image_tokens, web_search_requests, is_byok, upstream_cost_usd
    FROM usage
    WHERE ts >= CAST($since AS TIMESTAMPTZ) AND ts < CAST($until AS TIMESTAMPTZ) + INTERVAL 1 DAY
),
usage_rows AS (
    SELECT
        k, any_value(day) AS day, any_value(model) AS model, any_value(provider) AS provider,
        any_value(request_type) AS request_type, any_value(task_category) AS task_category,
        count(*) AS usage_events,
        sum(prompt_tokens) AS prompt_tokens,
        sum(completion_tokens) AS completion_tokens,
        sum(reasoning_tokens) AS reasoning_tokens,
        sum(cached_tokens) AS cached_tokens,
        sum(CAST(cost_usd AS DECIMAL(38, 12))) AS cost_usd,
        sum(CAST(cost_usd AS DECIMAL(38, 12))) FILTER (WHERE cost_source = 'billed') AS cost_billed_usd,
        sum(CAST(cost_usd AS DECIMAL(38, 12))) FILTER (WHERE cost_source = 'estimated') AS cost_estimated_usd,
        count(*) FILTER (WHERE cost_usd IS NULL) AS cost_unknown
    FROM usage_events
    GROUP BY k
),
usage_extra_rows AS (
    -- the rare parts of usage (BYOK, cache writes, media tokens, web searches) summed over the rows
    -- that have any: the rest add 0. Aggregated with usage_rows they cost a third more of its work.
    SELECT
        k,
        sum(cache_write_tokens) AS cache_write_tokens,
        sum(prompt_audio_tokens) AS prompt_audio_tokens,
        sum(prompt_image_tokens) AS prompt_image_tokens,
        sum(completion_audio_tokens) AS completion_audio_tokens,
        sum(completion_image_tokens) AS completion_image_tokens,
        sum(web_search_requests) AS web_search_requests,
        count(*) FILTER (WHERE is_byok) AS byok_requests,
        sum(CAST(cost_usd AS DECIMAL(38, 12))) FILTER (WHERE is_byok) AS byok_fee_usd,
        sum(CAST(upstream_cost_usd AS DECIMAL(38, 12))) FILTER (WHERE is_byok) AS byok_upstream_usd,
        count(*) FILTER (WHERE is_byok AND upstream_cost_usd IS NULL) AS byok_upstream_unknown
    FROM usage_events
    WHERE is_byok OR cache_write_tokens > 0 OR prompt_audio_tokens > 0 OR prompt_image_tokens > 0
          OR completion_audio_tokens > 0 OR completion_image_tokens > 0 OR web_search_requests > 0
    GROUP BY k
),
stream_keys AS (
    -- stream_outcome has no provider: it takes the provider of the call rows with the same
    -- (day, model, request_type, task_category) when there is exactly one, else stays NULL.
    -- (Joining each stream to its request's attempts costs more than the rest of the rollup.)
    SELECT hash(day, model, request_type, task_category) AS k4,
           CASE WHEN count(DISTINCT provider) = 1 AND count(provider) = count(*) THEN min(provider) END AS provider
    FROM call_rows
    GROUP BY k4
),
stream_agg AS (
    SELECT
        hash(CAST(fdiv(epoch_us(ts), 86400000000) AS INTEGER), model, request_type, task_category) AS k4,
        any_value(CAST(fdiv(epoch_us(ts), 86400000000) AS INTEGER)) AS day, any_value(model) AS model,
        any_value(request_type) AS request_type, any_value(task_category) AS task_category,
        count(*) AS streams,
        count(*) FILTER (WHERE outcome = 'cancelled') AS streams_cancelled,
        count(*) FILTER (WHERE outcome = 'truncated') AS streams_truncated,
        sum(CAST(tokens_per_s AS DECIMAL(38, 6))) AS tokens_per_s_sum,
        count(tokens_per_s) AS tokens_per_s_n
    FROM stream_outcomes
    WHERE ts >= CAST($since AS TIMESTAMPTZ) AND ts < CAST($until AS TIMESTAMPTZ) + INTERVAL 1 DAY
    GROUP BY k4
),
stream_rows AS (
    SELECT
        hash(s.day, s.model, p.provider, s.request_type, s.task_category) AS k,
        s.day, s.model, p.provider, s.request_type, s.task_category,
        s.streams, s.streams_cancelled, s.streams_truncated, s.tokens_per_s_sum, s.tokens_per_s_n
    FROM stream_agg AS s
    LEFT JOIN stream_keys AS p USING (k4)
),
stacked AS (
    SELECT * FROM call_rows
    UNION ALL BY NAME SELECT * FROM fallback_rows
    UNION ALL BY NAME SELECT * FROM error_rows
    UNION ALL BY NAME SELECT * FROM usage_rows
    UNION ALL BY NAME SELECT * FROM usage_extra_rows
    UNION ALL BY NAME SELECT * FROM stream_rows
),
totals AS (
SELECT
    k, DATE '1970-01-01' + any_value(day) AS day, any_value(model) AS model, any_value(provider) AS provider,
    any_value(request_type) AS request_type, any_value(task_category) AS task_category,
    (coalesce(sum(first_attempts), 0) + coalesce(sum(fallbacks), 0))::BIGINT AS requests,
    coalesce(sum(attempts), 0)::BIGINT AS attempts,
    coalesce(sum(successes), 0)::BIGINT AS successes,
    coalesce(sum(errors), 0)::BIGINT AS errors,
    (coalesce(sum(attempts), 0) - coalesce(sum(first_attempts), 0) - coalesce(sum(fallbacks), 0))::BIGINT AS retries,
    coalesce(sum(fallbacks), 0)::BIGINT AS fallbacks,
    coalesce(any_value(error_statuses), []::VARCHAR[]) AS error_statuses,
    coalesce(any_value(error_counts), []::BIGINT[]) AS error_counts,
    coalesce(sum(usage_events), 0)::BIGINT AS usage_events,
    coalesce(sum(prompt_tokens), 0)::BIGINT AS prompt_tokens,
    coalesce(sum(completion_tokens), 0)::BIGINT AS completion_tokens,
    coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens,
    coalesce(sum(cached_tokens), 0)::BIGINT AS cached_tokens,
    coalesce(sum(cache_write_tokens), 0)::BIGINT AS cache_write_tokens,
    coalesce(sum(prompt_audio_tokens), 0)::BIGINT AS prompt_audio_tokens,
    coalesce(sum(prompt_image_tokens), 0)::BIGINT AS prompt_image_tokens,
    coalesce(sum(completion_audio_tokens), 0)::BIGINT AS completion_audio_tokens,
    coalesce(sum(completion_image_tokens), 0)::BIGINT AS completion_image_tokens,
    coalesce(sum(web_search_requests), 0)::BIGINT AS web_search_requests,
    coalesce(CAST(sum(cost_usd) AS DOUBLE), 0) AS cost_usd,
    coalesce(CAST(sum(cost_billed_usd) AS DOUBLE), 0) AS cost_billed_usd,
    coalesce(CAST(sum(cost_estimated_usd) AS DOUBLE), 0) AS cost_estimated_usd,
    coalesce(sum(cost_unknown), 0)::BIGINT AS cost_unknown,
    coalesce(sum(byok_requests), 0)::BIGINT AS byok_requests,
    coalesce(CAST(sum(byok_fee_usd) AS DOUBLE), 0) AS byok_fee_usd,
    coalesce(CAST(sum(byok_upstream_usd) AS DOUBLE), 0) AS byok_upstream_usd,
    coalesce(sum(byok_upstream_unknown), 0)::BIGINT AS byok_upstream_unknown,
    coalesce(sum(streams), 0)::BIGINT AS streams,
    coalesce(sum(streams_cancelled), 0)::BIGINT AS streams_cancelled,
    coalesce(sum(streams_truncated), 0)::BIGINT AS streams_truncated,
    coalesce(CAST(sum(tokens_per_s_sum) AS DOUBLE), 0) AS tokens_per_s_sum,
    coalesce(sum(tokens_per_s_n), 0)::BIGINT AS tokens_per_s_n
FROM stacked
GROUP BY k
)
SELECT t.* EXCLUDE (k),
       coalesce(v.latency_values, []::DOUBLE[]) AS latency_values,
       coalesce(v.ttft_values, []::DOUBLE[]) AS ttft_values
FROM totals AS t LEFT JOIN value_rows AS v USING (k)
ORDER BY day, model, provider NULLS FIRST, request_type NULLS FIRST, task_category NULLS FIRST
