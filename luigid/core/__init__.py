"""The scheduler itself: luigi's task and worker rules, its indexes and its replies. Imports nothing
above it: no I/O, no HTTP, no files."""
