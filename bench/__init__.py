"""Side-by-side benchmark of luigi 3.8.1's luigid and ours (run with ``python bench/run.py``).

Not part of the test suite: nothing here is named ``test_*`` and pytest only collects ``tests/``.
"""
