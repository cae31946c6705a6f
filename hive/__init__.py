"""Hive as a library, in one import: a Session that records into the event log and reads the store."""
