-- The selector's choice per request.
CREATE OR REPLACE TEMP VIEW selections AS
SELECT * FROM raw_selection;
