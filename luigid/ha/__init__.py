"""High availability on PostgreSQL (``[ha]``): one leader, warm standbys, takeover in seconds.

Nodes share one PostgreSQL database. The leader commits every change record there before
answering it (``store``), holding a lease renewed by PostgreSQL's clock and an epoch that
fences every commit (``election``); standbys load the latest snapshot (``snapshots``) and
follow the log (``follower``); ``node`` ties the roles together and ``handlers`` serves
``/leader`` and forwards a standby's API calls to the leader. Only ``config`` and
``handlers`` load without psycopg, so a daemon without ``[ha]`` never needs the driver.
"""
