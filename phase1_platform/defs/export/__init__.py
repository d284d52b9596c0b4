"""Export: the canonical bar CSV of a partition."""
