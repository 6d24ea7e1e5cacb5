"""The cloud firewall's rules: what is sent, and when an existing firewall counts as ours."""

from __future__ import annotations

import copy

from provision.firewall import Firewall, canonical, desired_rules

EVERYWHERE = {"addresses": ["0.0.0.0/0", "::/0"]}


def as_answered() -> Firewall:
    """Our firewall the way DigitalOcean lists it: other order, "0" for every port."""
    return Firewall.from_api({
        "id": "fb6045f1-cf1d-4ca3-bfac-18832663025b", "name": "workshop-lab",
        "droplet_ids": [8043964], "tags": [],
        "inbound_rules": [
            {"protocol": "tcp", "ports": p, "sources": {"addresses": ["::/0", "0.0.0.0/0"]}}
            for p in ("443", "80", "22")],
        "outbound_rules": [
            {"protocol": "icmp", "ports": "0", "destinations": EVERYWHERE},
            {"protocol": "udp", "ports": "0", "destinations": EVERYWHERE},
            {"protocol": "tcp", "ports": "0", "destinations": EVERYWHERE}],
    })


def test_what_is_sent():
    inbound, outbound = desired_rules()
    assert [(r["protocol"], r["ports"], r["sources"]) for r in inbound] == [
        ("tcp", "22", EVERYWHERE), ("tcp", "80", EVERYWHERE), ("tcp", "443", EVERYWHERE)]
    assert [(r["protocol"], r.get("ports"), r["destinations"]) for r in outbound] == [
        ("tcp", "1-65535", EVERYWHERE), ("udp", "1-65535", EVERYWHERE),
        ("icmp", None, EVERYWHERE)]


def test_the_api_s_spelling_of_our_rules_is_ours():
    wall = as_answered()
    assert wall.rules_ok() and wall.differences(8043964) == []
    assert wall.differences(1) == ["droplets"]


def test_anything_that_lets_more_in_or_less_out_differs():
    def changed(edit) -> Firewall:
        data = {"id": "x", "name": "workshop-lab", "droplet_ids": [1], "tags": [],
                "inbound_rules": copy.deepcopy(as_answered().inbound),
                "outbound_rules": copy.deepcopy(as_answered().outbound)}
        edit(data)
        return Firewall.from_api(data)

    more_in = changed(lambda d: d["inbound_rules"].append(
        {"protocol": "tcp", "ports": "8000", "sources": EVERYWHERE}))
    other_source = changed(lambda d: d["inbound_rules"][0]["sources"].update(tags=["web"]))
    denied = changed(lambda d: d["outbound_rules"][2].update(action="deny"))
    no_udp = changed(lambda d: d["outbound_rules"].pop(1))
    tagged = changed(lambda d: d["tags"].append("workshop-appliance"))
    for wall in (more_in, other_source, denied, no_udp, tagged):
        assert not wall.rules_ok()
        assert wall.differences(1) == ["rules"]


def test_canonical_ignores_order_empty_targets_and_icmp_ports():
    a = [{"protocol": "icmp", "ports": "0", "destinations": {"addresses": ["::/0"],
                                                            "droplet_ids": []}}]
    b = [{"protocol": "ICMP", "destinations": {"addresses": ["::/0"]}, "action": "allow"}]
    assert canonical(a, "destinations") == canonical(b, "destinations")
    assert canonical([{"protocol": "tcp", "ports": "all", "sources": EVERYWHERE}], "sources") \
        == canonical([{"protocol": "tcp", "ports": "0", "sources": EVERYWHERE}], "sources")
