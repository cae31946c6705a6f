-- Ratings of answers (`hive rate`).
CREATE OR REPLACE TEMP VIEW quality_ratings AS
SELECT * FROM raw_quality_rating;
