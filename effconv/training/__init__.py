"""Training: configuration, device batches, the loop, metrics and progress display."""
