"""The budget stage: spend from events, the ledger rebuild, alerts and webhooks, cost reconciliation."""
