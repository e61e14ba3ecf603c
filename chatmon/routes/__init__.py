"""HTTP handlers behind the routes table in chatmon/api.py, one module per concern."""
