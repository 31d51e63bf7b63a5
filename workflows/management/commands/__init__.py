"""`manage.py load_templates`, `manage.py graph_schema`."""
