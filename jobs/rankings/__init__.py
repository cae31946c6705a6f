"""The rankings stage: the ranking table the selector reads, built from rollups and ratings."""
