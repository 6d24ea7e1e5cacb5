"""Usernames a participant can never have: names of system accounts and groups.

A participant becomes a Linux user with a group of the same name. A name that is already a
system group (`staff`, `sudo`, `docker`, ...) would either crash account creation (the
group's gid is below the participants' range) or, worse, hand that group to the
participant as their primary group. So such names are refused when users.txt is read, with
the line number, before anything is created.

This list is what a Debian image has before anything else is installed, plus the system
users and groups common packages and Docker hosts add. It is the static half of the check:
`accounts.ensure_system_user` also refuses any name that the running container's own
/etc/passwd or /etc/group holds below the participants' uid range.
"""

from __future__ import annotations

# Debian base-passwd 3.6 (passwd.master and group.master): every Debian and Ubuntu image,
# debian:trixie-slim (the appliance's base image) included.
BASE_PASSWD_USERS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
    "proxy", "www-data", "backup", "list", "irc", "_apt", "nobody",
    "gnats",  # in base-passwd before 3.6 (bookworm's older images)
})
BASE_PASSWD_GROUPS = frozenset({
    "root", "daemon", "bin", "sys", "adm", "tty", "disk", "lp", "mail", "news", "uucp",
    "man", "proxy", "kmem", "dialout", "fax", "voice", "cdrom", "floppy", "tape", "sudo",
    "audio", "dip", "www-data", "backup", "operator", "list", "irc", "src", "gnats",
    "shadow", "utmp", "video", "sasl", "plugdev", "staff", "games", "users", "nogroup",
})
# Added by systemd, udev, sshd, dbus, Docker and other usual packages of a server.
PACKAGE_ACCOUNTS = frozenset({
    "systemd-journal", "systemd-network", "systemd-timesync", "systemd-resolve",
    "systemd-coredump", "systemd-oom", "messagebus", "polkitd", "sshd", "_ssh", "ssl-cert",
    "crontab", "input", "kvm", "render", "sgx", "netdev", "lpadmin", "uuidd", "tss",
    "tcpdump", "_chrony", "ntp", "postfix", "postdrop", "docker", "containerd", "lxd",
    "wheel", "admin", "jupyterhub",
})

RESERVED_NAMES = BASE_PASSWD_USERS | BASE_PASSWD_GROUPS | PACKAGE_ACCOUNTS
