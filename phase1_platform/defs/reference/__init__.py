"""Reference: the vendor's own bars of a partition and the parity checks against them."""
