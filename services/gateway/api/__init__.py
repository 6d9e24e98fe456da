"""/api/v1: the REST API, one module per resource, routes as a table (api/routes.py)."""
