"""Where the appliance listens and is reached (services/workshop/addresses.py)."""

from __future__ import annotations

import pytest

from workshop.addresses import Addresses


def test_defaults_are_loopback_ports_only_root_may_bind():
    a = Addresses.from_env({})
    assert a.proxy_url == "http://127.0.0.1:880"
    assert a.proxy_api_url == "http://127.0.0.1:881"
    assert a.hub_port == 882
    assert a.dashboard_url == "http://127.0.0.1:883"
    assert all(port < 1024 for port in a.internal_ports())


def test_participants_and_the_dashboard_get_origins_of_their_own():
    a = Addresses.from_env({"WORKSHOP_PUBLIC_URL": "https://lab.example.org/",
                            "WORKSHOP_PORT": "940"})
    assert a.hub("/hub/login") == "https://lab.example.org/hub/login"
    assert a.user("alice", "lab") == "https://alice.lab.example.org/user/alice/lab"
    assert a.service("dashboard") == \
        "https://dashboard--service.lab.example.org/services/dashboard/"
    # A name that is no DNS label gets JupyterHub's own encoding: still one label, so the
    # one wildcard certificate covers it.
    host = a.user_host("anna.b_c")
    assert host.endswith(".lab.example.org") and "." not in host.removesuffix(".lab.example.org")


def test_a_port_in_the_public_url_is_kept_for_every_origin():
    a = Addresses(port=980, public_url="http://localhost:980")
    assert a.user("bob") == "http://bob.localhost:980/user/bob/"


def test_without_subdomains_everything_shares_the_hubs_origin():
    a = Addresses.from_env({"WORKSHOP_PUBLIC_URL": "https://lab.example.org",
                            "WORKSHOP_SUBDOMAINS": "no"})
    assert a.user("alice") == "https://lab.example.org/user/alice/"
    assert a.service("dashboard") == "https://lab.example.org/services/dashboard/"


@pytest.mark.parametrize("env", [{"WORKSHOP_PUBLIC_URL": "lab.example.org"},
                                 {"WORKSHOP_PUBLIC_URL": "https://lab.example.org/hub"},
                                 {"WORKSHOP_PORT": "65534"},
                                 {"WORKSHOP_SUBDOMAINS": "maybe"}])
def test_bad_settings_are_refused_with_their_name(env):
    with pytest.raises(ValueError, match="WORKSHOP_"):
        Addresses.from_env(env)
