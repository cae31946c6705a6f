-- Requests sent over budget on purpose (`--over-budget`).
CREATE OR REPLACE TEMP VIEW budget_overrides AS
SELECT * FROM raw_budget_override;
