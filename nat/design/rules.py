"""The guide's NAT security-group table, kept once, as data.

The program builds one rule resource per expanded row, the verifier compares a live security
group against the same expansion, and the README's table is rendered from it (a test keeps the
README in step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

# the HA agents' UDP status exchange: the agent's port, admitted between the NATs only
from nat.instance.agent import STATUS_PORT, SYNC_LINKS, SYNC_PORT

ANYWHERE = "0.0.0.0/0"
# The peer of a rule that names the NAT security group itself (the NATs talking to each other)
NAT_SECURITY_GROUP = "nat-security-group"


@dataclass(frozen=True)
class GuideRule:
    direction: str  # "inbound" | "outbound"
    peer: str  # "private_subnets" | "operator_network" | "anywhere" | "nat_security_group"
    protocol: str  # "tcp" | "udp" | "icmp"
    port: int | None  # None: all ICMP types
    why: str
    test_only: bool = False  # the guide's "test your NAT" additions
    ha_only: bool = False  # high availability: the NATs ask each other for their status
    handover_only: bool = False  # keepConnections: conntrackd between the NATs
    to_port: int | None = None  # the last port of a range


GUIDE_RULES: tuple[GuideRule, ...] = (
    GuideRule("inbound", "private_subnets", "tcp", 80, "HTTP from private servers"),
    GuideRule("inbound", "private_subnets", "tcp", 443, "HTTPS from private servers"),
    GuideRule("inbound", "operator_network", "tcp", 22,
              "SSH to the NAT from the operator network (via the internet gateway)"),
    GuideRule("outbound", "anywhere", "tcp", 80, "HTTP to the internet"),
    GuideRule("outbound", "anywhere", "tcp", 443, "HTTPS to the internet"),
    GuideRule("inbound", "private_subnets", "icmp", None,
              "ping from private servers (guide's test)", test_only=True),
    GuideRule("outbound", "anywhere", "icmp", None,
              "ping to the internet (guide's test)", test_only=True),
    GuideRule("outbound", "private_subnets", "tcp", 22,
              "SSH from the NAT to private servers, NAT as bastion (guide's test)",
              test_only=True),
    GuideRule("inbound", "nat_security_group", "udp", STATUS_PORT,
              "status from the other NATs (high availability)", ha_only=True),
    GuideRule("outbound", "nat_security_group", "udp", STATUS_PORT,
              "status to the other NATs (high availability)", ha_only=True),
    # a silent agent is not a dead NAT: a peer's kernel answering (accepting or refusing)
    # a TCP handshake on the status port tells the two apart
    GuideRule("inbound", "nat_security_group", "tcp", STATUS_PORT,
              "is the NAT up, when its agent is silent (high availability)", ha_only=True),
    GuideRule("outbound", "nat_security_group", "tcp", STATUS_PORT,
              "is the other NAT up, when its agent is silent (high availability)",
              ha_only=True),
    # one port per link of the NATs' ring (conntrackd syncs with one peer per daemon)
    GuideRule("inbound", "nat_security_group", "udp", SYNC_PORT,
              "connection state from the other NATs (keepConnections)", handover_only=True,
              to_port=SYNC_PORT + SYNC_LINKS - 1),
    GuideRule("outbound", "nat_security_group", "udp", SYNC_PORT,
              "connection state to the other NATs (keepConnections)", handover_only=True,
              to_port=SYNC_PORT + SYNC_LINKS - 1),
)

PEER_LABELS = {
    "private_subnets": "private subnet CIDR(s)",
    "operator_network": "operator network (sshCidr)",
    "anywhere": ANYWHERE,
    "nat_security_group": "the NAT security group itself",
}


@dataclass(frozen=True, order=True)
class SecurityGroupRule:
    """One concrete rule: one direction, one peer (a CIDR, or NAT_SECURITY_GROUP), one protocol
    and port range."""

    direction: str
    cidr: str
    protocol: str
    from_port: int
    to_port: int
    description: str

    @property
    def slug(self) -> str:
        """A short stable name fragment, unique within one security group."""
        port = "all" if self.protocol == "icmp" else str(self.from_port)
        direction = "in" if self.direction == "inbound" else "out"
        cidr = "self" if self.cidr == NAT_SECURITY_GROUP else \
            self.cidr.replace("/", "-").replace(".", "-")
        return f"{direction}-{self.protocol}-{port}-{cidr}"


def expand_rules(private_cidrs: Sequence[IPv4Network], ssh_cidr: IPv4Network | None,
                 include_test_rules: bool, high_availability: bool = False,
                 keep_connections: bool = False) -> list[SecurityGroupRule]:
    """The guide's table for one deployment: each row times each CIDR of its peer."""
    peers: dict[str, list[str]] = {
        "private_subnets": [str(c) for c in private_cidrs],
        "operator_network": [str(ssh_cidr)] if ssh_cidr is not None else [],
        "anywhere": [ANYWHERE],
        "nat_security_group": [NAT_SECURITY_GROUP],
    }
    rules = []
    for row in GUIDE_RULES:
        if (row.test_only and not include_test_rules) or \
                (row.ha_only and not high_availability) or \
                (row.handover_only and not keep_connections):
            continue
        for cidr in peers[row.peer]:
            from_port, to_port = (-1, -1) if row.port is None else \
                (row.port, row.to_port or row.port)
            rules.append(SecurityGroupRule(row.direction, cidr, row.protocol, from_port,
                                           to_port, row.why))
    return rules


def guide_table_markdown() -> str:
    """The README's table, rendered from GUIDE_RULES."""
    lines = ["| direction | peer | protocol | port | why | when |",
             "|---|---|---|---|---|---|"]
    for row in GUIDE_RULES:
        port = "all ICMPv4" if row.port is None else str(row.port) + (
            f"-{row.to_port}" if row.to_port else "")
        when = "enableTestRules: true" if row.test_only else \
            "keepConnections: true" if row.handover_only else \
            "highAvailability: true" if row.ha_only else \
            "sshCidr set" if row.peer == "operator_network" else "always"
        lines.append(f"| {row.direction} | {PEER_LABELS[row.peer]} | {row.protocol.upper()} | "
                     f"{port} | {row.why} | {when} |")
    return "\n".join(lines)
