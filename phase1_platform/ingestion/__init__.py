"""Live ingestion service: connectors -> normalizer -> landing table, and live bar broadcast."""
