-- Budget alerts that fired.
CREATE OR REPLACE TEMP VIEW budget_alerts AS
SELECT * FROM raw_budget_alert;
