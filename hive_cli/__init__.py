"""Both command-line tools (`hive`, `hive-jobs`): the composition root; nothing imports it."""

import os

# Hive calls no BLAS routine (numpy draws, sorts and sums), but OpenBLAS starts a spinning thread per
# core when numpy is imported: ~80 ms of CPU per import, and a daily rollup's CPU went 0.61 -> 0.43 s
# with one thread (medians of 7 alternated runs; wall time unchanged). A value the user set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
