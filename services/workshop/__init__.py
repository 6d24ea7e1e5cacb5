"""Hub-side library of the workshop appliance.

One importable place for what the hub config, the users-sync service and the
dashboard share: the users.txt format, system accounts, materials hand-out.
"""
