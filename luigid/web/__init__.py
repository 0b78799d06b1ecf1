"""The HTTP layer: the base handler every route derives from (``base``), errors, access,
request validation, the API and UI handlers, the UI's static files and templates, and the
application's one routing table (``app``)."""
