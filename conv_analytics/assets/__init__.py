"""The asset graph: source -> raw -> enriched -> categories -> rollups -> report."""
