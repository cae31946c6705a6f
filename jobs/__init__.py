"""Batch work over events, one package per stage: rollup, rankings, budget, insights, reports, simulate.

Stages import one way, each only from those before it (``tests/test_imports.py`` finds no cycle)::

    rollup  <-  rankings, budget  <-  insights  <-  pipeline  <-  reports        simulate (alone)

:mod:`jobs.pipeline` runs the rollup and then the stages that read it (the ranking table, budget
alerts): ``hive-jobs rollup`` and the daily schedule call it, and the rollup never names them.
"""
