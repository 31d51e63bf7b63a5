"""The artifact store (a folder or MinIO) and a run's artifacts served to the browser."""
