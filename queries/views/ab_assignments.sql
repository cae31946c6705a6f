-- A/B experiment assignments.
CREATE OR REPLACE TEMP VIEW ab_assignments AS
SELECT * FROM raw_ab_assignment;
