"""Dagster layer: partitions, resources, assets and checks (thin; the domain does the work)."""
