"""The insights stage: cost analytics, performance, summaries, suggestions, A/B results and ratings."""
