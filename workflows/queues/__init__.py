"""The task queues as staff see them: lengths, workers, tasks; cancel and retry."""
