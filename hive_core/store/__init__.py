"""The store: the event schema, file names, the data-directory map (DataDir), atomic writes, locks and caches."""
