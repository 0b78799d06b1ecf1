"""Where state goes: the state file format, atomic writes, forked snapshots and the change log."""
