"""Both command-line tools (`hive`, `hive-jobs`): the composition root; nothing imports it."""
