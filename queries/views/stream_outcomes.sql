-- How each streamed request ended.
CREATE OR REPLACE TEMP VIEW stream_outcomes AS
SELECT * FROM raw_stream_outcome;
