"""The model catalog: the synced /models snapshot, pricing, tiers and capabilities."""
