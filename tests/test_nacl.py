"""Network ACL evaluation (pure): AWS's order, stateless directions, ephemeral replies."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

from natctl.nacl import (
    EPHEMERAL,
    Flow,
    blocked,
    forwarded_ports,
    nat_subnet_flows,
    private_subnet_flows,
)

PRIVATE = IPv4Network("10.0.128.0/20")
INTERNET = IPv4Network("0.0.0.0/0")
HTTPS_OUT = Flow(True, "tcp", 443, 443, INTERNET, "the NAT to the internet")
REPLIES_IN = Flow(False, "tcp", *EPHEMERAL, INTERNET, "replies from the internet")


def entry(number: int, action: str, egress: bool, cidr: str = "0.0.0.0/0",
          protocol: str = "6", ports: tuple[int, int] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"RuleNumber": number, "RuleAction": action, "Egress": egress,
                             "CidrBlock": cidr, "Protocol": protocol}
    if ports:
        found["PortRange"] = {"From": ports[0], "To": ports[1]}
    return found


DEFAULT = [entry(100, "allow", True, protocol="-1"), entry(100, "allow", False, protocol="-1"),
           entry(32767, "deny", True, protocol="-1"), entry(32767, "deny", False, protocol="-1")]


def test_the_default_acl_allows_everything_the_nat_needs() -> None:
    flows = nat_subnet_flows([PRIVATE], IPv4Network("198.51.100.0/24"),
                             [IPv4Network("10.0.16.0/20")]) + private_subnet_flows()
    assert all(blocked(DEFAULT, flow) == [] for flow in flows)


def test_the_flows_follow_the_guides_table() -> None:
    assert forwarded_ports() == [80, 443]
    flows = nat_subnet_flows([PRIVATE], None)
    assert Flow(False, "tcp", 443, 443, PRIVATE, "private hosts' traffic to the NAT, port 443") \
        in flows
    assert Flow(True, "tcp", 1024, 65535, PRIVATE, "replies to the private hosts") in flows
    assert not any(flow.protocol == "udp" or flow.from_port == 22 for flow in flows)
    ha = nat_subnet_flows([PRIVATE], None, [IPv4Network("10.0.16.0/20")])
    assert {(f.egress, f.protocol, f.from_port) for f in ha if f.protocol == "udp"} == {
        (False, "udp", 7654), (True, "udp", 7654)}


def test_the_first_matching_rule_decides() -> None:
    deny_first = [entry(90, "deny", True, ports=(443, 443)), entry(100, "allow", True, "0.0.0.0/0",
                                                                    "-1")]
    [found] = blocked(deny_first, HTTPS_OUT)
    assert (found.from_port, found.to_port, found.rule) == (443, 443, "90")
    assert found.describe() == ("outbound TCP port 443 to 0.0.0.0/0 (the NAT to the internet): "
                                "rule 90 denies it")
    allow_first = [entry(80, "allow", True, ports=(443, 443)), entry(90, "deny", True,
                                                                      protocol="-1")]
    assert blocked(allow_first, HTTPS_OUT) == []


def test_nothing_allowed_is_denied_by_the_final_rule() -> None:
    only_high = [entry(100, "allow", False, ports=(32768, 65535)),
                 entry(32767, "deny", False, protocol="-1")]
    [found] = blocked(only_high, REPLIES_IN)
    assert (found.from_port, found.to_port, found.rule) == (1024, 32767, "*")
    assert found.describe().endswith("(ports 1024-32767) (replies from the internet): no rule "
                                      "allows it (the final * rule denies)")
    assert blocked([], HTTPS_OUT)[0].rule == "*"


def test_the_direction_and_the_protocol_must_match() -> None:
    inbound_only = [entry(100, "allow", False, protocol="-1")]
    assert blocked(inbound_only, HTTPS_OUT)[0].rule == "*"
    udp_only = [entry(100, "allow", True, protocol="17")]
    assert blocked(udp_only, HTTPS_OUT)[0].rule == "*"


def test_a_narrower_block_list_does_not_fail_the_flow() -> None:
    """Denying a few addresses of the internet is a choice, not a broken NAT path."""
    rules = [entry(50, "deny", True, "203.0.113.0/24", "-1"), entry(100, "allow", True,
                                                                    protocol="-1")]
    assert blocked(rules, HTTPS_OUT) == []
    # but a rule must cover the whole peer to allow it
    half = [entry(100, "allow", False, "10.0.128.0/21", ports=(443, 443))]
    assert blocked(half, Flow(False, "tcp", 443, 443, PRIVATE, "x"))[0].rule == "*"


def test_ipv6_rules_are_not_read_as_ipv4() -> None:
    ipv6 = [{"RuleNumber": 100, "RuleAction": "allow", "Egress": True, "Protocol": "-1",
             "Ipv6CidrBlock": "::/0"}]
    assert blocked(ipv6, HTTPS_OUT)[0].rule == "*"


def test_a_single_port_blocked_inside_a_range_is_named_alone() -> None:
    rules = [entry(90, "deny", False, ports=(8080, 8080)),
             entry(100, "allow", False, protocol="-1")]
    [found] = blocked(rules, REPLIES_IN)
    assert (found.from_port, found.to_port) == (8080, 8080)
    assert found.describe() == ("inbound TCP ports 1024-65535 from 0.0.0.0/0 (port 8080) "
                                "(replies from the internet): rule 90 denies it")
