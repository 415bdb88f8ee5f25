"""Several public addresses per NAT (instance.public_addresses), on the real data path.

The NAT's interface has secondary private addresses, each mapped 1:1 to its own public address
by the internet gateway (as an Elastic IP is); the bootstrap script spreads new connections
over all of them. Ports below 512 are translated within 1-511 (the kernel keeps privileged
source ports privileged), which makes a small, fast stand-in for the 64,512 ports of an
address: the benchmark (`python -m bench --only addresses`) measures the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from nat.instance import agent
from testbed.topology import INTERNET_HOST, PRIVATE_HOST, Topology
from tests import needs

pytestmark = pytest.mark.datapath

needs.network_namespaces("data-path tests")

EXTRA_SOURCES = ("10.0.128.11", "10.0.128.12", "10.0.128.13", "10.0.128.14")


@pytest.fixture
def four() -> Iterator[Topology]:
    with Topology(public_addresses=4) as built:
        yield built


def bootstrapped(topology: Topology, addresses: int) -> None:
    result = topology.bootstrap(env={"NAT_PUBLIC_ADDRESSES": str(addresses),
                                     "NAT_ADDRESS_WAIT": "2"})
    assert result.returncode == 0, result.output
    topology.start(topology.internet, "serve", "8080")


def connect_many(topology: Topology, sources: tuple[str, ...], first: int,
                 count: int) -> dict[str, object]:
    result = topology.probe(topology.private, "many", INTERNET_HOST, "8080", ",".join(sources),
                            str(first), str(count), wait=3)
    assert result.returncode == 0, result.stdout + result.stderr
    outcome: dict[str, object] = json.loads(result.stdout)
    return outcome


def conntrack_stat(topology: Topology) -> dict[str, int]:
    """What the agent reads: port_allocation becomes ErrorPortAllocation, table_full
    PacketsDropTableFull."""
    return agent.parse_conntrack_stat(
        topology.ns(topology.nat, "cat", agent.CONNTRACK_STAT).stdout)


def test_one_hosts_connections_to_one_destination_use_every_address(four: Topology) -> None:
    bootstrapped(four, 4)
    outcome = connect_many(four, (PRIVATE_HOST,), 20000, 40)
    seen = outcome["seen"]
    assert isinstance(seen, dict)
    public = [public for _, public in four.zone.address_pairs]
    # in turn: a hash of the source (or of source and destination) would pin this host to one
    assert seen == dict.fromkeys(public, 10), outcome
    assert outcome["failed"] == 0


def test_the_rules_name_each_address_once_per_vpc_range(four: Topology) -> None:
    bootstrapped(four, 4)
    rules = [line for line in four.rules().splitlines() if "NAT_POSTROUTING -s" in line]
    privates = [private for private, _ in four.zone.address_pairs]
    assert [line.rsplit(" ", 1)[-1] for line in rules] == privates
    assert ["--every 4 --packet 0" in rules[0], "--every 3" in rules[1],
            "--every 2" in rules[2], "statistic" not in rules[3]] == [True] * 4
    assert "MASQUERADE" not in four.rules()


def test_past_every_addresses_ports_connections_fail_and_are_counted() -> None:
    # two addresses: 2 × 511 privileged ports to one destination; five sources ask 1,250
    with Topology(public_addresses=2) as topology:
        bootstrapped(topology, 2)
        for address in EXTRA_SOURCES:
            topology.ns(topology.private, "ip", "addr", "add", f"{address}/20", "dev", "eth0")
        before = conntrack_stat(topology)
        outcome = connect_many(topology, (PRIVATE_HOST, *EXTRA_SOURCES), 100, 250)
        seen = outcome["seen"]
        assert isinstance(seen, dict) and isinstance(outcome["failed"], int)
        held = sum(seen.values())
        assert set(seen) == {public for _, public in topology.zone.address_pairs}
        assert held >= 2 * 511 * 0.97 and held + outcome["failed"] == 1250, outcome
        after = conntrack_stat(topology)
        assert after["port_allocation"] - before["port_allocation"] >= outcome["failed"] > 0
        assert after["table_full"] == before["table_full"]  # the table was never full


def test_one_address_masquerades_as_before(four: Topology) -> None:
    # the default: the primary address alone, whatever else the interface holds
    bootstrapped(four, 1)
    outcome = connect_many(four, (PRIVATE_HOST,), 20000, 8)
    assert outcome["seen"] == {four.zone.public_ip: 8}
    assert "-j MASQUERADE" in four.rules() and "SNAT" not in four.rules()


def test_addresses_missing_on_the_interface_stop_the_script(four: Topology) -> None:
    result = four.bootstrap(env={"NAT_PUBLIC_ADDRESSES": "5", "NAT_ADDRESS_WAIT": "1"})
    assert result.returncode != 0
    assert "has 4 IPv4 address(es)" in result.output and \
        "expected NAT_PUBLIC_ADDRESSES=5" in result.output
    assert "NAT_POSTROUTING" not in four.rules()


@pytest.mark.parametrize("count", ["0", "three", "100"])
def test_a_bad_address_count_stops_the_script(four: Topology, count: str) -> None:
    result = four.bootstrap(env={"NAT_PUBLIC_ADDRESSES": count})
    assert result.returncode != 0
    assert f"NAT_PUBLIC_ADDRESSES: '{count}' is not a count from 1 to 99" in result.output
