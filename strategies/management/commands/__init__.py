"""`manage.py bootstrap`."""
