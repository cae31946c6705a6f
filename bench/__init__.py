"""`make bench`: the performance table, each figure side by side with a peer where one exists."""
