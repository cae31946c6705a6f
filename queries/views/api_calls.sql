-- One row per HTTP attempt to OpenRouter.
CREATE OR REPLACE TEMP VIEW api_calls AS
SELECT * FROM raw_api_call;
