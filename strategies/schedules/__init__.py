"""Strategy schedules on Celery Beat's DatabaseScheduler, and the NYSE calendar they may follow."""
