# The workshop's hub-side configuration on Zero to JupyterHub (z2jh).
#
# generate_values.py copies this file, as it is, into `hub.extraConfig` of the values file;
# z2jh's own jupyterhub_config.py runs it last, with `c` defined. Everything static (paths,
# roles, the dashboard service) is plain values; this file holds only what needs code:
#
# - users.txt stays the one list of people. The hub reads it from a Kubernetes Secret
#   mounted as a directory (so a `kubectl apply` of the Secret reaches the pod without a
#   restart), through our own UsersFileAuthenticator, baked into the hub image under
#   /srv/services. On one machine the users-sync service keeps the `instructors` and
#   `participants` groups in step; here the authenticator does it (JupyterHub's
#   `manage_groups`) at every login and every auth refresh, so a changed instructor mark or
#   a removed participant applies within `Authenticator.auth_refresh_age` seconds.
# - The dashboard is a hub-managed service in the hub pod. JupyterHub tells a managed
#   service to listen on the host of its `url`, and the proxy (another pod) routes to that
#   same url, so it must be this pod's own address: POD_IP, set in hub.extraEnv from the
#   pod's status. Participants' servers reach the dashboard through the hub Service's
#   extra port instead (singleuser.extraEnv.WORKSHOP_EVENTS_URL).
# ruff: noqa: F821  (`c` is provided by z2jh's jupyterhub_config.py, which runs this file)

import os
import sys
from urllib.parse import urlsplit

sys.path.insert(0, "/srv/services")

from workshop.authenticator import UsersFileAuthenticator
from workshop.roster import RosterUnavailable

INSTRUCTORS = "instructors"
PARTICIPANTS = "participants"


class KubeUsersFileAuthenticator(UsersFileAuthenticator):
    """UsersFileAuthenticator that also sets each user's group from users.txt."""

    def groups_for(self, name: str) -> list[str] | None:
        """The groups of `name` per users.txt, or None when not listed (any more)."""
        roster = self.current_roster()  # the last good list while users.txt is held back
        if roster is None:
            raise RosterUnavailable("users.txt cannot be read and no good list is known")
        account = roster.accounts.get(name)
        if account is None:
            return None
        return [INSTRUCTORS if account.instructor else PARTICIPANTS]

    async def authenticate(self, handler, data):  # type: ignore[override]
        user = await super().authenticate(handler, data)
        if user is None:
            return None
        try:
            groups = self.groups_for(user["name"])
        except RosterUnavailable:
            return None
        if groups is None:  # removed between the password check and now
            return None
        return {**user, "groups": groups}

    async def refresh_user(self, user, handler=None, **kwargs):  # type: ignore[override]
        try:
            groups = self.groups_for(user.name)
        except RosterUnavailable as e:
            # Unreadable for a moment (a Secret being replaced): keep what the user had.
            self.log.warning("users.txt unreadable, keeping %s as is: %s", user.name, e)
            return True
        if groups is None:
            self.log.info("%s is no longer in users.txt: login required", user.name)
            return False
        return {"name": user.name, "groups": groups}


c.JupyterHub.authenticator_class = KubeUsersFileAuthenticator


def dashboard_on_pod_ip(services: list[dict], pod_ip: str) -> None:
    """Point the dashboard service's url at this pod's address (same scheme and port)."""
    for service in services:
        if service.get("name") == "dashboard" and service.get("url"):
            url = urlsplit(service["url"])
            host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
            service["url"] = url._replace(netloc=f"{host}:{url.port or 80}").geturl()


dashboard_on_pod_ip(c.JupyterHub.services, os.environ["POD_IP"])
