"""High-availability figures on the two-AZ namespace test bed (testbed/ha.py): the egress gaps a
private host sees when its AZ's NAT dies, stops forwarding, comes back, is rolled out, and the
route changes a partition causes; and the faults that must move nothing, or move only what is
broken: an agent restarted or frozen, API answers cut short, both NATs broken, packet loss on
one NAT's internet side. The agents run with their production timings for detection (one probe
a second, broken after three failures, degraded below 85 % of 20), except that failback waits
5 s instead of 60 (and the rollout looks at the release every 2 s)."""

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


def upstream_cut(lab: HaLab) -> dict[str, float]:
    """AZ a's NAT loses its internet side (and with it the API); its private side and its
    link to NAT b stay up."""
    watcher = lab.watch("a", 300)
    time.sleep(2)
    with lab.internet_cut("a") as cut:
        moved = lab.wait_until(lambda: lab.applied.get("a") == "b", 60, "failover")
        time.sleep(2)
    seen = lab.watched(watcher)
    return {"failover_gap_s": seen.gap_around(cut), "route_moved_after_s": moved - cut}


def agent_restart(after: float | None) -> Callable[[HaLab], dict[str, float]]:
    """AZ a's agent dies and is restarted (None: systemd's RestartSec, 0: at once); its NAT
    forwards all along."""
    def scenario(lab: HaLab) -> dict[str, float]:
        before = len(lab.route_events)
        watcher = lab.watch("a", 300)
        time.sleep(2)
        killed = lab.restart_agent("a", after=after)
        lab.wait_until(lambda: lab.agent_log("a").count("probing [") >= 2, 30, "agent back")
        time.sleep(15)
        seen = lab.watched(watcher)
        return {"route_changes": float(len(lab.route_events[before:])),
                "longest_gap_s": seen.longest_gap(killed - 1, killed + 15)}
    return scenario


def api_cut_short(lab: HaLab) -> dict[str, float]:
    """For 20 s every API answer is HTTP 200 with its body cut after 30 bytes."""
    before = len(lab.route_events)
    with lab.api_answers_cut_short():
        time.sleep(20)
    time.sleep(5)
    logs = lab.agent_log("a") + lab.agent_log("b")
    return {"route_changes": float(len(lab.route_events[before:])),
            "agent_exits": float(logs.count("nat-agent exited")),
            "failure_lines_logged": float(logs.count("failed, trying again"))}


def agent_frozen(lab: HaLab) -> dict[str, float]:
    """AZ a's agent stopped (SIGSTOP) past the silence limit, then resumed."""
    with lab.frozen_agent("a") as frozen:
        moved = lab.wait_until(lambda: lab.applied.get("a") == "b", 60, "taken over")
    resumed = time.monotonic()
    back = lab.wait_until(lambda: lab.applied.get("a") == "a", 60, "failback")
    return {"moved_after_s": moved - frozen, "failback_after_resume_s": back - resumed}


def both_broken(lab: HaLab) -> dict[str, float]:
    """Both NATs lose their internet side (NAT b 1.5 s after NAT a) for 20 s; then NAT b comes
    back first."""
    before = len(lab.route_events)
    with lab.internet_cut("a"):
        time.sleep(1.5)
        with lab.internet_cut("b"):
            time.sleep(20)
            broken_changes = len(lab.route_events[before:])
        restored = time.monotonic()
        served = lab.wait_until(lambda: lab.applied == {"a": "b", "b": "b"}, 60, "b serves")
    return {"route_changes_while_both_broken": float(broken_changes),
            "both_azs_on_b_after_s": served - restored}


def lossy(percent: int) -> Callable[[HaLab], dict[str, float]]:
    """`percent` of the packets lost each way on AZ a's NAT's internet side for 60 s."""
    def scenario(lab: HaLab) -> dict[str, float]:
        before = len(lab.route_events)
        with lab.lossy_internet("a", percent) as start:
            deadline = start + 60
            while time.monotonic() < deadline and lab.applied.get("a") != "b":
                time.sleep(0.2)
            moved = time.monotonic() if lab.applied.get("a") == "b" else None
            time.sleep(max(0.0, deadline - time.monotonic()))
        return {"moved": 1.0 if moved else 0.0,
                "moved_after_s": (moved - start) if moved else 60.0,
                "route_changes": float(len(lab.route_events[before:]))}
    return scenario


SCENARIOS: dict[str, Callable[[HaLab], dict[str, float]]] = {
    "dead_nat": dead_nat, "stopped_forwarding": stopped_forwarding, "rollout": rollout,
    "upstream_cut": upstream_cut, "agent_restart_after_2s": agent_restart(None),
    "agent_restart_at_once": agent_restart(0.0), "api_cut_short": api_cut_short,
    "agent_frozen": agent_frozen, "both_broken": both_broken,
    "loss_10_percent": lossy(10), "loss_25_percent": lossy(25)}
# the rollout waits for the agents' look at their group's release: every 2 s, not 60
ROLLOUT_CHECK: dict[str, float] = {"rollout": 2.0}


def measure(repetitions: int, step: Callable[[str], None]) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in [*SCENARIOS, "partition"]}
    for index in range(repetitions):
        for name, scenario in SCENARIOS.items():
            step(f"high availability: {name.replace('_', ' ')} ({index + 1}/{repetitions})")
            with HaLab(failback_after=FAILBACK_AFTER, replace_after=5,
                       rollout_check=ROLLOUT_CHECK.get(name)) as lab:
                settle(lab)
                runs[name].append(scenario(lab))
    step("high availability: partition (60 s)")
    with HaLab(failback_after=FAILBACK_AFTER, replace_after=5) as lab:
        settle(lab)
        runs["partition"].append(partition(lab))
    return {"failback_after_s": FAILBACK_AFTER, "runs": runs}
