"""The reports stage: period reports in text, JSON and HTML, and the report schedule."""
