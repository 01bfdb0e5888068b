"""The run: the Trainer and its builder, the training step, the schedule, checkpoints, the
output folder's lock, launching processes, and the test run."""
