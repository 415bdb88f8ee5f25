"""nat/design/rules.py: the guide's table expanded for one deployment, rule by rule."""

from __future__ import annotations

from ipaddress import IPv4Network

from nat.design.rules import GUIDE_RULES, NAT_SECURITY_GROUP, expand_rules

PRIVATE = [IPv4Network("10.0.128.0/20"), IPv4Network("10.0.144.0/20")]
P1, P2 = "10.0.128.0/20", "10.0.144.0/20"


def expanded(*args: object, **options: bool) -> list[tuple[str, str, str, int, int]]:
    return [(r.direction, r.cidr, r.protocol, r.from_port, r.to_port)
            for r in expand_rules(*args, **options)]  # type: ignore[arg-type]


def test_plain_deployment() -> None:
    assert expanded(PRIVATE, None, False) == [
        ("inbound", P1, "tcp", 80, 80), ("inbound", P2, "tcp", 80, 80),
        ("inbound", P1, "tcp", 443, 443), ("inbound", P2, "tcp", 443, 443),
        ("outbound", "0.0.0.0/0", "tcp", 80, 80), ("outbound", "0.0.0.0/0", "tcp", 443, 443)]


def test_every_optional_row() -> None:
    assert expanded(PRIVATE, IPv4Network("198.51.100.0/24"), True, high_availability=True) == [
        ("inbound", P1, "tcp", 80, 80), ("inbound", P2, "tcp", 80, 80),
        ("inbound", P1, "tcp", 443, 443), ("inbound", P2, "tcp", 443, 443),
        ("inbound", "198.51.100.0/24", "tcp", 22, 22),
        ("outbound", "0.0.0.0/0", "tcp", 80, 80), ("outbound", "0.0.0.0/0", "tcp", 443, 443),
        # ICMP rows have no port: -1..-1 is "all ICMPv4" to AWS
        ("inbound", P1, "icmp", -1, -1), ("inbound", P2, "icmp", -1, -1),
        ("outbound", "0.0.0.0/0", "icmp", -1, -1),
        ("outbound", P1, "tcp", 22, 22), ("outbound", P2, "tcp", 22, 22),
        ("inbound", NAT_SECURITY_GROUP, "udp", 7654, 7654),
        ("outbound", NAT_SECURITY_GROUP, "udp", 7654, 7654),
        ("inbound", NAT_SECURITY_GROUP, "tcp", 7654, 7654),
        ("outbound", NAT_SECURITY_GROUP, "tcp", 7654, 7654)]


def test_each_rule_says_why_in_its_rows_words() -> None:
    rules = expand_rules(PRIVATE, IPv4Network("198.51.100.0/24"), True, True, True)
    why = {row.why for row in GUIDE_RULES}
    assert {rule.description for rule in rules} == why
    assert rules[0].description == "HTTP from private servers"
    # test rules and HA rows only when asked for
    assert len(expand_rules(PRIVATE, None, True)) == 6 + 3 + 2
    assert len(expand_rules(PRIVATE, None, False, True)) == 6 + 4
    # conntrackd's two rows (a port range) only with keepConnections
    synced = [r for r in expand_rules(PRIVATE, None, False, True, True)
              if r.protocol == "udp" and r.from_port == 3780]
    assert len(expand_rules(PRIVATE, None, False, True, True)) == 6 + 4 + 2
    assert {(r.direction, r.to_port) for r in synced} == {("inbound", 3785),
                                                          ("outbound", 3785)}
