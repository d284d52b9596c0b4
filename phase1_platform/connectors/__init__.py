"""Connectors bring ticks (or vendor bars) from sources into the core's raw tick frame."""
