"""Local market simulators that speak vendors' real protocols (demos and test fakes)."""
