"""Ticks: raw_ticks (land the partition's tick files) and normalized_ticks, with their checks."""
