"""`make demo`: the seed scenario end to end on a local stack."""
