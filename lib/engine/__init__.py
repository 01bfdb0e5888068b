"""The training engine: one training step, the Trainer that owns the loop, one evaluation loop."""
