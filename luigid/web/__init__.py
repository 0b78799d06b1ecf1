"""The HTTP layer: handlers, request validation, the UI's static files and templates."""
