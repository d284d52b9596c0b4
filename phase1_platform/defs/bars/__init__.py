"""Bars: every bar timeframe of a partition from one build, with the quality checks."""
