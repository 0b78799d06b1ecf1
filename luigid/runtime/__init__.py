"""Running the daemon: the server lifecycle (startup, main loop, signals, shutdown) and its stall watch."""
