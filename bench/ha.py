"""High-availability figures on the two-AZ namespace test bed (testbed/ha.py): the egress gaps a
private host sees when its AZ's NAT dies, stops forwarding, comes back, is rolled out, and the
route changes a partition causes. The agents run with their production timings (one probe a
second, unhealthy after three), except that failback waits 5 s instead of 60."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from testbed.ha import HaLab

FAILBACK_AFTER = 5  # seconds; production default 60 (it only delays the return)


def settle(lab: HaLab, timeout: float = 60) -> None:
    lab.wait_until(lambda: lab.healthy("a") and lab.healthy("b") and
                   lab.applied == {"a": "a", "b": "b"}, timeout, "both AZs on their own NAT")
    lab.wait_until(lambda: not lab.route_events or
                   time.monotonic() - lab.route_events[-1][0] > 2, 20, "routes quiet")


def dead_nat(lab: HaLab) -> dict[str, float]:
    """AZ a's NAT vanishes; then the group's new instance comes up."""
    watcher = lab.watch("a", 300)
    time.sleep(2)
    killed = lab.kill_nat("a")
    moved = lab.wait_until(lambda: lab.applied.get("a") == "b", 60, "failover")
    time.sleep(2)
    booted = time.monotonic()
    lab.replace_instance("a")
    lab.wait_until(lambda: lab.applied.get("a") == "a", 60, "failback")
    back = next(t for t, private, nat in lab.route_events
                if private == "a" and nat == "a" and t > booted)
    time.sleep(2)
    seen = lab.watched(watcher)
    return {"failover_gap_s": seen.gap_around(killed), "route_moved_after_s": moved - killed,
            "failback_gap_s": seen.gap_around(back), "failback_after_boot_s": back - booted}


def stopped_forwarding(lab: HaLab) -> dict[str, float]:
    """AZ a's NAT answers its peer and the API but forwards nothing."""
    watcher = lab.watch("a", 300)
    time.sleep(2)
    stopped = lab.stop_forwarding("a")
    moved = lab.wait_until(lambda: lab.applied.get("a") == "b", 60, "failover")
    instance = lab.nats["a"].instance_id
    asked = lab.wait_until(lambda: lab.instance_health(instance) == "Unhealthy", 60,
                           "replacement asked")
    seen = lab.watched(watcher)
    return {"failover_gap_s": seen.gap_around(stopped), "route_moved_after_s": moved - stopped,
            "replacement_asked_after_s": asked - stopped}


def rollout(lab: HaLab) -> dict[str, float]:
    """A new launch template for both AZs: the agents roll it out one AZ at a time."""
    watchers = {letter: lab.watch(letter, 600) for letter in ("a", "b")}
    time.sleep(1)
    start = time.monotonic()
    for letter in ("a", "b"):
        lab.set_release(letter, "r2")
    for letter in ("a", "b"):
        old = lab.nats[letter].instance_id
        lab.wait_until(lambda old=old: lab.instance_health(old) == "Unhealthy", 120, "step down")
        lab.replace_instance(letter)
        lab.wait_until(lambda letter=letter: lab.applied.get(letter) == letter, 60, "back")
    finished = time.monotonic()
    seen = {letter: lab.watched(w) for letter, w in watchers.items()}
    return {"duration_s": finished - start,
            "longest_gap_az_a_s": seen["a"].longest_gap(start, finished),
            "longest_gap_az_b_s": seen["b"].longest_gap(start, finished)}


def partition(lab: HaLab, seconds: float = 60) -> dict[str, float]:
    """The NATs cannot hear each other for `seconds`; each still reaches the internet."""
    before = len(lab.route_events)
    watchers = {letter: lab.watch(letter, 600) for letter in ("a", "b")}
    with lab.partition() as cut:
        time.sleep(seconds)
        changes = lab.route_events[before:]
    healed = time.monotonic()
    seen = {letter: lab.watched(w) for letter, w in watchers.items()}
    return {"cut_s": seconds, "route_changes": float(len(changes)),
            "settled_after_s": max((t - cut for t, _, _ in changes), default=0.0),
            "longest_gap_after_settling_s": max(
                w.longest_gap(cut + 10, healed) for w in seen.values())}


SCENARIOS: dict[str, Callable[[HaLab], dict[str, float]]] = {
    "dead_nat": dead_nat, "stopped_forwarding": stopped_forwarding, "rollout": rollout}


def measure(repetitions: int, step: Callable[[str], None]) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in [*SCENARIOS, "partition"]}
    for index in range(repetitions):
        for name, scenario in SCENARIOS.items():
            step(f"high availability: {name.replace('_', ' ')} ({index + 1}/{repetitions})")
            with HaLab(failback_after=FAILBACK_AFTER, replace_after=5) as lab:
                settle(lab)
                runs[name].append(scenario(lab))
    step("high availability: partition (60 s)")
    with HaLab(failback_after=FAILBACK_AFTER, replace_after=5) as lab:
        settle(lab)
        runs["partition"].append(partition(lab))
    return {"failback_after_s": FAILBACK_AFTER, "runs": runs}
