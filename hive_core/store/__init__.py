"""The store: the event schema, file names, the data-directory map, atomic writes, locks and caches."""
