"""Task-independent training machinery: the runner, the base module and batching."""
