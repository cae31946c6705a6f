"""The rollup stage: daily and monthly rollup files, their histograms and state, and readers of rollup rows."""
