"""Ground truth: plain torch, computed in float64, for tests only."""
