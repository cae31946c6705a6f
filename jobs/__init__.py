"""Batch work over events: rollups, rankings, budgets, suggestions, A/B, reports; the ``hive-jobs`` CLI."""
