"""Batch work over events, one package per stage: rollup, rankings, budget, insights, reports, simulate."""
