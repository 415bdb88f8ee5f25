"""High availability, end to end: two AZs, the real bootstrap script and agent on each NAT,
moto_server as AWS, the VPC router following the route tables. A private host probes the
internet every 100 ms; the egress gaps it sees are measured (figures: `python -m bench`).

Needs root; CI runs as root and must run these.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from testbed.ha import ECHO_PORT, ZONES, HaLab, Watch
from tests import needs

pytestmark = pytest.mark.datapath

needs.network_namespaces("HA data-path tests")

QUIET = 6.0  # seconds without a route change after which the start has settled
FAILOVER_BOUND = 10.0  # seconds; the target (the limit is 30)
FAILBACK_BOUND = 2.0
A, B = ZONES["a"], ZONES["b"]


@pytest.fixture
def lab() -> Iterator[HaLab]:
    with HaLab(failback_after=5, replace_after=5) as built:
        settle(built)
        yield built


def settle(lab: HaLab, timeout: float = 40) -> None:
    """Both NATs healthy and each AZ on its own NAT, for good: at a first boot a NAT that has
    not yet heard from the other takes the other AZ's table, which fails back once its own
    NAT has been healthy for the failback delay. The routes at the start are already "each
    AZ on its own NAT", so that alone proves nothing: the routes must also stay put for a
    while after both NATs are healthy (an agent hears its peers every second)."""
    lab.wait_until(lambda: lab.healthy("a") and lab.healthy("b"), timeout, "both NATs healthy")
    healthy_since = time.monotonic()

    def settled() -> bool:
        last = max([healthy_since, *(t for t, _, _ in lab.route_events)])
        return lab.applied == {"a": "a", "b": "b"} and time.monotonic() - last > QUIET
    lab.wait_until(settled, timeout, "both AZs on their own NAT, routes quiet")


def route_of(lab: HaLab, letter: str) -> str | None:
    return lab.applied.get(letter)


def test_a_dead_nat_fails_over_in_seconds_and_back_to_a_fresh_one(lab: HaLab) -> None:
    watcher = lab.watch("a", 120)
    time.sleep(2)
    killed = lab.kill_nat("a")
    failed_over = lab.wait_until(lambda: route_of(lab, "a") == "b", 30, "AZ a via NAT b")
    time.sleep(2)
    booted = time.monotonic()
    lab.replace_instance("a")  # the group's new instance, on the same interface
    lab.wait_until(lambda: route_of(lab, "a") == "a", 30, "AZ a back on its own NAT")
    failback = next(t for t, private, nat in lab.route_events
                    if private == "a" and nat == "a" and t > booted)
    time.sleep(2)
    seen = HaLab.watched(watcher)

    assert seen.leaks == []
    failover_gap = seen.gap_around(killed)
    assert 1.0 <= failover_gap <= FAILOVER_BOUND, failover_gap  # a real gap, and a short one
    assert failed_over - killed <= FAILOVER_BOUND
    assert B.public_ip in seen.seen_after(failed_over)  # through NAT b, as NAT b
    assert seen.gap_around(failback) <= FAILBACK_BOUND, seen.gap_around(failback)
    # the fresh NAT has the AZ's Elastic IP (it lives on the AZ's interface)
    assert seen.successes(failback + 1)[-1][1] == A.public_ip
    # NAT b's AZ never noticed
    assert all(nat == "a" for _, private, nat in lab.route_events if private == "a" and
               _ > failback)


def test_a_nat_that_stops_forwarding_fails_over_and_asks_to_be_replaced(lab: HaLab) -> None:
    watcher = lab.watch("a", 120)
    time.sleep(2)
    stopped = lab.stop_forwarding("a")  # it still answers its peer and the API
    failed_over = lab.wait_until(lambda: route_of(lab, "a") == "b", 30, "AZ a via NAT b")
    instance = lab.nats["a"].instance_id
    asked = lab.wait_until(lambda: lab.instance_health(instance) == "Unhealthy", 30,
                           "NAT a asks its group for a new instance")
    seen = HaLab.watched(watcher)
    assert seen.leaks == []
    assert failed_over - stopped <= FAILOVER_BOUND
    assert 1.0 <= seen.gap_around(stopped) <= FAILOVER_BOUND
    assert asked - stopped >= lab.replace_after  # not before the fault had lasted
    log = lab.nats["a"].log.read_text()
    assert "data path broken" in log and "asking the Auto Scaling group" in log


def test_one_lost_probe_moves_nothing(lab: HaLab) -> None:
    before = len(lab.route_events)
    # one second without NAT a's self-test answers and without the NATs' status messages
    blackout = [("igw", ["FORWARD", "-s", A.nat_address, "-p", "tcp", "--dport",
                         str(ECHO_PORT), "-j", "DROP"]),
                ("router", ["FORWARD", "-p", "udp", "--dport", "7654", "-j", "DROP"])]
    for namespace, rule in blackout:
        lab.ns(namespace, "iptables", "-I", *rule)
    time.sleep(1.2)
    for namespace, rule in blackout:
        lab.ns(namespace, "iptables", "-D", *rule)
    time.sleep(8)
    assert lab.route_events[before:] == [], lab.nats["a"].log.read_text()[-2000:]


def test_a_partition_settles_in_a_working_state_and_does_not_oscillate(lab: HaLab) -> None:
    before = len(lab.route_events)
    watchers = {letter: lab.watch(letter, 120) for letter in ZONES}
    with lab.partition() as cut:
        time.sleep(20)
        during = lab.route_events[before:]
    healed = time.monotonic()
    lab.wait_until(lambda: lab.applied == {"a": "a", "b": "b"}, 30, "back to normal")
    seen = {letter: HaLab.watched(w) for letter, w in watchers.items()}

    # each NAT took the other's AZ (it cannot tell a cut from a death), once, early
    assert len(during) <= 2
    assert all(t - cut <= FAILOVER_BOUND for t, _, _ in during)
    # and nothing moved for the rest of the cut: no flapping
    # both AZs kept working egress all along, whoever carried them
    for letter, watched in seen.items():
        assert watched.leaks == []
        assert watched.longest_gap(cut + FAILOVER_BOUND, healed) <= 1.0, letter
    assert len(lab.route_events[before:]) <= 4  # and back, once each


@pytest.fixture
def rolling_lab() -> Iterator[HaLab]:
    """The agents look at their group's release every 2 s instead of every minute."""
    with HaLab(failback_after=5, replace_after=5, rollout_check=2) as built:
        settle(built)
        yield built


def test_a_new_launch_template_rolls_out_one_az_at_a_time(rolling_lab: HaLab) -> None:
    lab = rolling_lab
    watchers = {letter: lab.watch(letter, 300) for letter in ZONES}
    time.sleep(1)
    start = time.monotonic()
    for letter in ZONES:
        lab.set_release(letter, "r2")  # what `pulumi up` does to both groups at once
    order = []
    for letter in ("a", "b"):  # the agents decide the order: AZ a first
        old = lab.nats[letter].instance_id
        lab.wait_until(lambda old=old: lab.instance_health(old) == "Unhealthy", 60,
                       f"NAT {letter} steps down")
        order.append(letter)
        other = "b" if letter == "a" else "a"
        # it asked for its replacement only once its AZ's route led to the other NAT
        assert lab.route_target(letter) == other, ("handed over before going", letter,
                                                   lab.nats["a"].log.read_text()[-1000:],
                                                   lab.nats["b"].log.read_text()[-1000:])
        assert lab.nats[other].release == "r1" or letter == "b"
        lab.replace_instance(letter)
        assert lab.nats[letter].release == "r2"
        lab.wait_until(lambda letter=letter: route_of(lab, letter) == letter, 40,
                       f"AZ {letter} back on its new NAT")
    finished = time.monotonic()
    seen: dict[str, Watch] = {letter: HaLab.watched(w) for letter, w in watchers.items()}
    assert order == ["a", "b"]
    for letter, watched in seen.items():
        assert watched.leaks == []
        # the rollout's cost to each AZ: the longest egress gap while it ran
        assert watched.longest_gap(start, finished) <= FAILBACK_BOUND, letter
