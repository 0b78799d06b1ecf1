"""luigid: a drop-in replacement for Luigi's central scheduler daemon."""

__version__ = "0.1.0"
