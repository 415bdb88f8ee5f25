"""The agent's connection handover (keepConnections) without a network: the ring of
conntrackd links, the files and rules it writes, which flows it announces, the packet it sends,
and the order of a takeover (connections, address, route), with AWS and the commands faked."""

from __future__ import annotations

import ipaddress
import socket
import struct
import subprocess
import time
from typing import Any

import pytest

from nat.instance import agent
from nat.instance.agent import (
    Change,
    Handover,
    Settings,
    bare_ack,
    carried_flows,
    conntrackd_config,
    handover_rules,
    neighbours,
    sync_port,
    tcp_checksum,
)

A, B, C, D = "us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"


@pytest.mark.parametrize(("order", "me", "expected"), [
    ([A, B], A, [B]), ([A, B], B, [A]), ([A], A, []),
    ([A, B, C], A, [B, C]), ([A, B, C], B, [A, C]), ([A, B, C, D], C, [B, D]),
])
def test_a_nat_syncs_with_the_azs_next_to_it_in_the_ring(order: list[str], me: str,
                                                          expected: list[str]) -> None:
    assert neighbours(order, me) == expected


def test_each_link_of_the_ring_has_one_port_both_ends_agree_on() -> None:
    for order in ([A, B], [A, B, C], [A, B, C, D]):
        links = {frozenset((order[i], order[(i + 1) % len(order)]))
                 for i in range(len(order))}
        ports = {link: sync_port(order, *sorted(link)) for link in links}
        for link, port in ports.items():
            one, other = sorted(link)
            assert sync_port(order, other, one) == port
        assert len(set(ports.values())) == len(links)
        assert set(ports.values()) <= set(range(agent.SYNC_PORT,
                                                agent.SYNC_PORT + agent.SYNC_LINKS))


def test_the_conntrackd_configuration_names_the_peer_and_its_own_files() -> None:
    text = conntrackd_config("10.0.0.10", "10.0.16.10", 3781, "ens5", "conntrackd-b")
    lines = [line.strip() for line in text.splitlines()]
    for expected in ("Mode FTFW {", "IPv4_address 10.0.0.10",
                     "IPv4_Destination_Address 10.0.16.10", "Port 3781", "Interface ens5",
                     f"LockFile {agent.STATE_DIR}/conntrackd-b.lock",
                     f"Path {agent.STATE_DIR}/conntrackd-b.ctl", "TCP", "UDP"):
        assert expected in lines
    assert text.count("{") == text.count("}")


def test_the_rules_translate_the_azs_traffic_home_and_rewrite_home_and_standby() -> None:
    text = handover_rules("ens5", "10.0.0.10", "10.0.16.20", ["10.0.128.0/20", "10.0.192.0/20"])
    assert 'oifname "ens5" ip saddr { 10.0.128.0/20, 10.0.192.0/20 } snat to 10.0.0.10' in text
    assert 'oifname "ens5" ip saddr 10.0.0.10 ip saddr set 10.0.16.20' in text
    assert 'iifname "ens5" ip daddr 10.0.16.20 ip daddr set 10.0.0.10' in text
    assert "priority srcnat - 10" in text and "priority srcnat + 10" in text and \
        "priority raw" in text
    assert text.startswith("table ip nat_handover\ndelete table ip nat_handover\n")


LISTING = """\
tcp      6 431990 ESTABLISHED src=10.0.128.10 dst=198.51.100.20 sport=40000 dport=9000 \
src=198.51.100.20 dst=10.0.0.10 sport=9000 dport=40000 [ASSURED] mark=0 use=1
tcp      6 431990 ESTABLISHED src=10.0.128.11 dst=198.51.100.20 sport=40000 dport=9000 \
src=198.51.100.20 dst=10.0.0.10 sport=9000 dport=1024 [ASSURED] mark=0 use=1
tcp      6 431990 ESTABLISHED src=10.0.144.10 dst=198.51.100.20 sport=40001 dport=9000 \
src=198.51.100.20 dst=10.0.16.10 sport=9000 dport=40001 [ASSURED] mark=0 use=1
tcp      6 118 TIME_WAIT src=10.0.16.3 dst=198.51.100.20 sport=5000 dport=8080 \
src=198.51.100.20 dst=10.0.16.10 sport=8080 dport=5000 [ASSURED] mark=0 use=1
udp      17 170 src=10.0.128.10 dst=198.51.100.20 sport=5353 dport=9000 \
src=198.51.100.20 dst=10.0.0.10 sport=9000 dport=5353 [ASSURED] mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 5 flow entries have been shown.
"""


def test_the_flows_announced_are_the_azs_tcp_flows_translated_to_its_home_address() -> None:
    assert carried_flows(LISTING, ["10.0.128.0/20"], "10.0.0.10") == [
        ("10.0.128.10", 40000, "198.51.100.20", 9000),
        ("10.0.128.11", 40000, "198.51.100.20", 9000)]
    assert carried_flows(LISTING, ["10.0.144.0/20"], "10.0.16.10") == [
        ("10.0.144.10", 40001, "198.51.100.20", 9000)]
    assert carried_flows(LISTING, ["10.0.128.0/20"], "10.0.16.10") == []
    assert carried_flows("tcp 6 1 src=broken", ["10.0.128.0/20"], "10.0.0.10") == []


def test_the_announcement_is_a_valid_bare_ack_from_the_private_host() -> None:
    packet = bare_ack("10.0.128.10", 40000, "198.51.100.20", 9000)
    version, _, length, _, flags, ttl, protocol, _, source, destination = struct.unpack(
        "!BBHHHBBH4s4s", packet[:20])
    assert (version, length, protocol, ttl) == (0x45, 40, socket.IPPROTO_TCP, 64)
    assert flags == 0x4000  # don't fragment
    assert socket.inet_ntoa(source) == "10.0.128.10"
    assert socket.inet_ntoa(destination) == "198.51.100.20"
    sport, dport, _, _, offset, tcp_flags = struct.unpack("!HHIIBB", packet[20:34])
    assert (sport, dport, offset >> 4, tcp_flags) == (40000, 9000, 5, 0x10)
    pseudo = struct.pack("!4s4sBBH", source, destination, 0, socket.IPPROTO_TCP, 20)
    assert tcp_checksum(pseudo + packet[20:]) == 0  # the checksum checks out


class FakeAws:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def call(self, service: str, action: str, params: dict[str, str]) -> Any:
        self.calls.append((service, action, params))


def settings(order: list[str]) -> Settings:
    nats = {zone: {"eni": f"eni-{zone[-1]}", "address": f"10.0.{16 * i}.10",
                   "standby": f"10.0.{16 * i}.20", "allocation": f"eipalloc-{zone[-1]}"}
            for i, zone in enumerate(order)}
    return Settings(region="us-east-1", nats=nats,
                    route_tables={f"rtb-{zone[-1]}": zone for zone in order},
                    failback_after=5, handover=True, spare="eipalloc-spare",
                    address_settle=7.0)


class FakeAgent:
    def __init__(self, routes: dict[str, str | None], reachable: set[str]) -> None:
        self.routes = routes
        self.answering = reachable
        self.peers = self
        self.answers: set[str] = set()

    def reachable(self, zone: str) -> bool:
        return zone in self.answering

    def kernel_answers(self, zone: str) -> bool:
        return zone in self.answers


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a takeover does, in order: commands, sleeps, nudges (threads run at once)."""
    done: list[str] = []

    def fake_run(*command: str, check: bool = True, stdin: str | None = None) -> Any:
        done.append(" ".join(command))
        return type("Done", (), {"returncode": 0, "stdout": ""})()

    monkeypatch.setattr(agent, "run", fake_run)
    # the agent's module uses the time module's sleep (patched for this test only)
    monkeypatch.setattr(time, "sleep", lambda seconds: done.append(f"sleep {seconds}"))
    monkeypatch.setattr(Handover, "nudge_soon",
                        lambda self, zone, after: done.append(f"nudge {zone} {list(after)}"))
    return done


def handover(order: list[str], me: str) -> tuple[Handover, FakeAws]:
    aws = FakeAws()
    return Handover(settings(order), me, aws, "ens5"), aws  # type: ignore[arg-type]


def test_a_failover_commits_the_dead_nats_connections_then_moves_the_address(
        steps: list[str]) -> None:
    taking, aws = handover([A, B], B)
    moved: set[str] = set()
    dead = FakeAgent({"rtb-a": A}, reachable=set())
    assert taking.take(dead, Change("rtb-a", B, "the NAT in a does not answer"), moved)  # type: ignore[arg-type]
    conf = f"{agent.STATE_DIR}/conntrackd-{A}.conf"
    assert steps == [f"conntrackd -C {conf} -c", f"nudge {A} [0.5, 7.0]"]  # no wait: it is dead
    assert aws.calls == [("ec2", "AssociateAddress", {
        "AllocationId": "eipalloc-a", "NetworkInterfaceId": "eni-b",
        "PrivateIpAddress": "10.0.16.20", "AllowReassociation": "true"})]
    assert moved == {A}
    # a second table of the same AZ in the same round: its connections are already here
    assert taking.take(dead, Change("rtb-a", B, "again"), moved)  # type: ignore[arg-type]
    assert len(aws.calls) == 1


def test_a_planned_move_asks_for_everything_waits_for_the_address_and_commits_again(
        steps: list[str]) -> None:
    owner, aws = handover([A, B], A)
    alive = FakeAgent({"rtb-a": B}, reachable={B})
    assert owner.take(alive, Change("rtb-a", A, "failback"), set())  # type: ignore[arg-type]
    conf = f"{agent.STATE_DIR}/conntrackd-{B}.conf"
    assert steps == [f"conntrackd -C {conf} -n", "sleep 0.5", f"conntrackd -C {conf} -c",
                     "sleep 7.0", f"conntrackd -C {conf} -n", "sleep 0.5",
                     f"conntrackd -C {conf} -c", f"nudge {A} [0.5, 7.0]"]
    assert aws.calls[0][2]["PrivateIpAddress"] == "10.0.0.10"  # its own: the primary


def test_a_nat_never_pushes_an_az_away_and_never_carries_an_address_it_has_no_slot_for(
        steps: list[str]) -> None:
    mine, aws = handover([A, B, C], A)
    assert not mine.take(FakeAgent({"rtb-a": A}, set()),  # type: ignore[arg-type]
                         Change("rtb-a", B, "handing over"), set())
    # A keeps a standby for C (the AZ before it), not for B
    assert mine.take(FakeAgent({"rtb-b": None}, set()),  # type: ignore[arg-type]
                     Change("rtb-b", A, "its route leads to no live NAT"), set())
    assert aws.calls == [] and steps == []


def test_the_spare_address_is_lent_once_to_the_returning_nat_while_its_az_is_carried(
        steps: list[str]) -> None:
    carrier, aws = handover([A, B], B)
    returning = FakeAgent({"rtb-a": B, "rtb-b": B}, reachable=set())
    carrier.lend_when_due(returning)  # type: ignore[arg-type]
    assert aws.calls == []  # nothing answers yet
    returning.answers.add(A)  # its kernel is up (booting)
    carrier.lend_when_due(returning)  # type: ignore[arg-type]
    carrier.lend_when_due(returning)  # type: ignore[arg-type]
    assert aws.calls == [("ec2", "AssociateAddress", {
        "AllocationId": "eipalloc-spare", "NetworkInterfaceId": "eni-a",
        "PrivateIpAddress": "10.0.0.10", "AllowReassociation": "true"})]
    returning.routes["rtb-a"] = A  # failback done: lent again the next time
    carrier.lend_when_due(returning)  # type: ignore[arg-type]
    assert carrier.lent_to == ""


def test_addresses_in_the_rules_are_addresses() -> None:
    text = handover_rules("ens5", "10.0.0.10", "10.0.16.20", ["10.0.128.0/20"])
    for word in text.replace("{", " ").replace("}", " ").replace(",", " ").split():
        if word[0].isdigit() and "." in word:
            ipaddress.ip_network(word, strict=False)


def test_an_address_that_cannot_move_does_not_stop_the_failover(
        steps: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    taking, aws = handover([A, B], B)

    def refuse(service: str, action: str, params: dict[str, str]) -> Any:
        raise agent.AwsError("UnauthorizedOperation", "not allowed")

    aws.call = refuse  # type: ignore[method-assign]
    assert taking.take(FakeAgent({"rtb-a": A}, set()),  # type: ignore[arg-type]
                       Change("rtb-a", B, "the NAT in a does not answer"), set())
    # the route moves (take said yes); the AZ's traffic leaves from b's own address
    assert "nft flush table ip nat_handover" in steps
    assert not any(step.startswith("nudge") for step in steps)
    assert "FAILED to move us-east-1a's Elastic IP here (UnauthorizedOperation: not allowed)" \
        in capsys.readouterr().out


def test_a_stopped_conntrackd_is_started_again_and_failures_reach_cloudwatch(
        steps: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    tending, aws = handover([A, B], B)
    tending.settings.metrics = agent.MetricsSettings(namespace="NatInstance", group="p/s/nat",
                                                     detailed=False, publish_every=300)
    started: list[list[str]] = []

    class Stopped:
        returncode = 1

        def poll(self) -> int:
            return 1

    class Running:
        def __init__(self, command: list[str], **_: Any) -> None:
            started.append(command)

        def poll(self) -> None:
            return None

    monkeypatch.setattr(subprocess, "Popen", Running)  # what the agent starts daemons with
    tending.processes = [Stopped()]  # type: ignore[list-item]
    quiet = FakeAgent({"rtb-a": A, "rtb-b": B}, reachable={A})
    tending.tend(quiet)  # type: ignore[arg-type]
    assert started == [["conntrackd", "-C", f"{agent.STATE_DIR}/conntrackd-{A}.conf"]]
    assert "conntrackd for us-east-1a exited (1): started again" in capsys.readouterr().out
    [(service, action, params)] = aws.calls
    assert (service, action) == ("monitoring", "PutMetricData")
    assert params["MetricData.member.1.MetricName"] == "ReplicationErrors"
    assert params["MetricData.member.1.Value"] == "1.0"
    assert params["MetricData.member.1.Dimensions.member.2.Value"] == B
    tending.tend(quiet)  # type: ignore[arg-type]
    assert len(aws.calls) == 1 and tending.errors == 0  # sent once; nothing new since


STATISTICS = """\
UDP traffic (active device=ens5):
                  64 Bytes sent                   {recv_bytes} Bytes recv
                   8 Pckts sent                    {recv} Pckts recv
                   0 Error send                    0 Error recv
"""


def test_a_sync_link_that_receives_nothing_while_the_peer_answers_is_down(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert agent.packets_received(STATISTICS.format(recv_bytes=0, recv=12)) == 12
    assert agent.packets_received("cache internal:\n") is None
    received = iter([5, 5, 5, 9])

    def statistics(*command: str, check: bool = True, stdin: str | None = None) -> Any:
        count = next(received)
        return type("Done", (), {"returncode": 0,
                                 "stdout": STATISTICS.format(recv_bytes=8 * count,
                                                             recv=count)})()

    monkeypatch.setattr(agent, "run", statistics)
    checking, _ = handover([A, B], B)
    peer_up = FakeAgent({}, reachable={A})
    checking.check_channels(peer_up)  # type: ignore[arg-type]  # the first look: a baseline
    checking.check_channels(peer_up)  # type: ignore[arg-type]  # nothing since: down
    checking.check_channels(peer_up)  # type: ignore[arg-type]  # still down: counted, not said
    checking.check_channels(peer_up)  # type: ignore[arg-type]  # received again
    out = capsys.readouterr().out
    assert out.count("nothing received from us-east-1a's conntrackd in 30 s") == 1
    assert "UDP 3780-3785 from itself" in out and "works again" in out
    assert checking.errors == 2 and not checking.channel_down


def test_a_silent_link_to_a_silent_peer_is_the_peers_fault_not_the_links(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent, "run", lambda *command, **_: type("Done", (), {
        "returncode": 0, "stdout": STATISTICS.format(recv_bytes=0, recv=3)})())
    checking, _ = handover([A, B], B)
    gone = FakeAgent({}, reachable=set())
    checking.check_channels(gone)  # type: ignore[arg-type]
    checking.check_channels(gone)  # type: ignore[arg-type]
    assert checking.errors == 0
