"""Network ACLs against what the NAT path needs (pure logic).

NACLs are stateless: each direction of each flow needs its own allow rule, and replies come
back to ephemeral ports. The flows follow the guide's security-group table (nat/design/rules.py):
the ports the NAT forwards are the ones its group lets private hosts send it and lets it send
to the internet.

Evaluation is AWS's: rules by number, the first that matches decides, and `*` denies the
rest. A rule decides a flow when its CIDR covers the flow's whole peer range; a narrower rule
(a blocklist of a few addresses, say) is not read as blocking the flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

from nat.design.rules import ANYWHERE, GUIDE_RULES
from nat.instance.agent import STATUS_PORT

EPHEMERAL = (1024, 65535)  # AWS's advice for NAT devices: replies come back to these
PROTOCOL_NUMBERS = {"tcp": "6", "udp": "17"}
INTERNET = IPv4Network(ANYWHERE)


@dataclass(frozen=True)
class Flow:
    egress: bool
    protocol: str  # "tcp" | "udp"
    from_port: int
    to_port: int
    peer: IPv4Network
    why: str

    def describe(self) -> str:
        ports = f"port {self.from_port}" if self.from_port == self.to_port else \
            f"ports {self.from_port}-{self.to_port}"
        where = "to" if self.egress else "from"
        return (f"{'outbound' if self.egress else 'inbound'} {self.protocol.upper()} {ports} "
                f"{where} {self.peer}")


@dataclass(frozen=True)
class Blocked:
    flow: Flow
    from_port: int
    to_port: int
    rule: str  # the rule number that denies, or "*" (nothing allows it)

    def describe(self) -> str:
        whole = (self.from_port, self.to_port) == (self.flow.from_port, self.flow.to_port)
        ports = "" if whole else (f" (ports {self.from_port}-{self.to_port})"
                                  if self.from_port != self.to_port
                                  else f" (port {self.from_port})")
        by = "no rule allows it (the final * rule denies)" if self.rule == "*" else \
            f"rule {self.rule} denies it"
        return f"{self.flow.describe()}{ports} ({self.flow.why}): {by}"


def forwarded_ports() -> list[int]:
    """The TCP ports the NAT forwards: the guide's private → NAT → internet rows."""
    inbound = {r.port for r in GUIDE_RULES if r.direction == "inbound" and
               r.peer == "private_subnets" and r.protocol == "tcp" and not r.test_only}
    outbound = {r.port for r in GUIDE_RULES if r.direction == "outbound" and
                r.peer == "anywhere" and r.protocol == "tcp" and not r.test_only}
    return sorted(p for p in inbound & outbound if p is not None)


def nat_subnet_flows(private_cidrs: Iterable[IPv4Network], ssh_cidr: IPv4Network | None,
                     other_nat_subnets: Sequence[IPv4Network] = ()) -> list[Flow]:
    """What the public subnet of a NAT must let through, both ways."""
    flows = []
    low, high = EPHEMERAL
    for cidr in sorted(set(private_cidrs)):
        for port in forwarded_ports():
            flows.append(Flow(False, "tcp", port, port, cidr,
                              f"private hosts' traffic to the NAT, port {port}"))
        flows.append(Flow(True, "tcp", low, high, cidr, "replies to the private hosts"))
    for port in forwarded_ports():
        flows.append(Flow(True, "tcp", port, port, INTERNET, "the NAT to the internet"))
    flows.append(Flow(False, "tcp", low, high, INTERNET, "replies from the internet"))
    if ssh_cidr is not None:
        flows.append(Flow(False, "tcp", 22, 22, ssh_cidr, "SSH from the operator network"))
        flows.append(Flow(True, "tcp", low, high, ssh_cidr, "SSH replies"))
    for cidr in sorted(set(other_nat_subnets)):
        for egress in (False, True):
            flows.append(Flow(egress, "udp", STATUS_PORT, STATUS_PORT, cidr,
                              "the NATs' status exchange (high availability)"))
    return flows


def private_subnet_flows() -> list[Flow]:
    """What a private subnet must let through for its hosts' egress through a NAT."""
    low, high = EPHEMERAL
    return [*(Flow(True, "tcp", port, port, INTERNET, f"private hosts to the internet, port "
                   f"{port}") for port in forwarded_ports()),
            Flow(False, "tcp", low, high, INTERNET, "replies from the internet")]


def blocked(entries: Sequence[Mapping[str, Any]], flow: Flow) -> list[Blocked]:
    """The parts of `flow` the ACL's `entries` (EC2's NetworkAcl Entries) do not allow."""
    undecided = [(flow.from_port, flow.to_port)]
    denied: list[Blocked] = []
    for entry in sorted(entries, key=lambda e: int(e["RuleNumber"])):
        if not undecided:
            break
        if bool(entry.get("Egress")) != flow.egress or not entry.get("CidrBlock"):
            continue  # the other direction, or IPv6
        if str(entry["Protocol"]) not in ("-1", PROTOCOL_NUMBERS[flow.protocol]):
            continue
        if not flow.peer.subnet_of(IPv4Network(entry["CidrBlock"])):
            continue
        ports = entry.get("PortRange") or {}
        low = int(ports.get("From", 0)) if str(entry["Protocol"]) != "-1" else 0
        high = int(ports.get("To", 65535)) if str(entry["Protocol"]) != "-1" else 65535
        rule = "*" if int(entry["RuleNumber"]) >= 32767 else str(entry["RuleNumber"])
        remaining = []
        for start, end in undecided:
            overlap = (max(start, low), min(end, high))
            if overlap[0] > overlap[1]:
                remaining.append((start, end))
                continue
            if entry["RuleAction"] != "allow":
                denied.append(Blocked(flow, overlap[0], overlap[1], rule))
            if start < overlap[0]:
                remaining.append((start, overlap[0] - 1))
            if overlap[1] < end:
                remaining.append((overlap[1] + 1, end))
        undecided = remaining
    denied += [Blocked(flow, start, end, "*") for start, end in undecided]
    return sorted(denied, key=lambda b: (b.from_port, b.rule))
