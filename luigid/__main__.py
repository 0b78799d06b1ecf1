"""``python -m luigid`` runs the daemon exactly like the ``luigid`` console script."""

from luigid.cmdline import luigid

if __name__ == "__main__":
    luigid()
