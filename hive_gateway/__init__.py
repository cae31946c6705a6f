"""The gateway: an OpenAI-compatible HTTP server that records, budgets and routes every call.

Any app in any language points its OpenAI SDK at ``hive gateway`` instead of OpenRouter and its calls
land in the event log exactly as ``hive ask`` records them, under Hive's budgets, virtual keys and
routing (``model: "hive/auto"``). It drives ``hive_core``'s sans-I/O client core (answers, streams,
fallback chains, recording) with its own HTTP stack, so the server and its upstream leg are chosen
by measurement (README, "The gateway"). An optional extra: ``pip install hive[gateway]``.
"""
