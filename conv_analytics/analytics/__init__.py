"""Rollups of the categorised conversations and the reports analysts read."""
