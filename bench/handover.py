"""Connection handover figures (keepConnections) on the two-AZ namespace test bed: long-lived
flows from both AZs' private hosts (testbed/flows.py: TCP talking every 0.2 s, TCP where only
the server talks, UDP) through a failover, a failback and a rollout, counting for each event
the flows that survive (no reset, answers again within 30 s), their pauses, and the addresses
the internet host saw. The internet gateway applies an Elastic IP move `ADDRESS_DELAY` s after
the call (AWS publishes no figure; the one measurement found is 5-6 s), and the security
groups' per-interface connection tracking is modelled (testbed.ha: what the internet side
sends on a flow new to an interface is dropped until the flow sent something out there).
Detection timings are production's; failback waits 5 s instead of 60."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

from testbed.flows import outcome
from testbed.ha import ZONES, HaLab

ADDRESS_DELAY = 6.0
RESUMED_WITHIN = 30.0
FAILBACK_AFTER = 5
PUBLIC = {letter: zone.public_ip for letter, zone in ZONES.items()}


def settle(lab: HaLab, timeout: float = 60) -> None:
    lab.wait_until(lambda: lab.healthy("a") and lab.healthy("b") and
                   lab.applied == {"a": "a", "b": "b"}, timeout, "both AZs on their own NAT")
    time.sleep(2)


def flow_figures(report: dict[str, Any], moment: float, letter: str) -> dict[str, Any]:
    """Survivors of an event at `moment` and their pauses (testbed.flows.outcome)."""
    flows = report["flows"]
    outcomes = [outcome(flow, moment, within=RESUMED_WITHIN) for flow in flows]
    pauses = sorted(pause for survived, pause in outcomes if survived)
    survived = len(pauses)
    seen = sorted({address for flow in flows for address in flow["addresses"]})
    return {"flows": len(flows), "survived": survived,
            "survived_pct": round(100 * survived / max(1, len(flows)), 2),
            "pause_median_s": round(statistics.median(pauses), 2) if pauses else None,
            "pause_p95_s": round(pauses[int(0.95 * (len(pauses) - 1))], 2) if pauses else None,
            "pause_max_s": round(pauses[-1], 2) if pauses else None,
            "addresses_seen": seen, "address_unchanged": seen == [PUBLIC[letter]]}


def start_flows(lab: HaLab, count: int, seconds: float) -> dict[str, subprocess.Popen[str]]:
    """`count` talking TCP flows from each AZ, a tenth as many server-talking ones and 4 UDP."""
    started = {}
    for letter in ("a", "b"):
        started[f"tcp_{letter}"] = lab.flows(letter, count, seconds)
        started[f"server_talks_{letter}"] = lab.flows(letter, max(1, count // 10), seconds,
                                                      "stream")
        started[f"udp_{letter}"] = lab.flows(letter, 4, seconds, "udp")
    return started


def figures(lab: HaLab, running: dict[str, subprocess.Popen[str]],
            moment: float) -> dict[str, Any]:
    return {name: flow_figures(HaLab.flows_report(process, timeout=300), moment, name[-1])
            for name, process in running.items()}


def killed(lab: HaLab, count: int) -> dict[str, Any]:
    """AZ a's NAT vanishes (its flows established 2 s and more before); new connections'
    egress gap from a private host probing every 0.1 s."""
    running = start_flows(lab, count, 2 + RESUMED_WITHIN + 8)
    watcher = lab.watch("a", 120)
    time.sleep(2)
    moment = lab.kill_nat("a")
    lab.wait_until(lambda: lab.applied.get("a") == "b", 30, "failover")
    time.sleep(RESUMED_WITHIN + 4)
    result = figures(lab, running, moment)
    seen = lab.watched(watcher)
    result["new_connections"] = {"egress_gap_s": round(seen.gap_around(moment), 2),
                                 "addresses_seen": sorted(seen.seen_after(moment))}
    return result


def new_connections_at_once(lab: HaLab) -> dict[str, Any]:
    """AZ a's NAT vanishes with the address move reaching the data path at once: the egress
    gap of new connections from AZ a (today's HA without keepConnections: 3.1 s median)."""
    watcher = lab.watch("a", 120)
    time.sleep(2)
    moment = lab.kill_nat("a")
    lab.wait_until(lambda: lab.applied.get("a") == "b", 30, "failover")
    time.sleep(8)
    seen = lab.watched(watcher)
    return {"egress_gap_s": round(seen.gap_around(moment), 2),
            "addresses_seen": sorted(seen.seen_after(moment))}


def failback(lab: HaLab, count: int) -> dict[str, Any]:
    """After `killed`: the group's new instance boots (on the spare address) and takes its AZ
    back, connections and address included."""
    lab.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=lab.nats["a"].instance_id, ShouldDecrementDesiredCapacity=False)
    lab.start_nat("a")
    lab.wait_until(lambda: lab.healthy("a"), 60, "the new NAT a healthy")
    running = start_flows(lab, count, 60)
    since = len(lab.route_events)
    lab.wait_until(lambda: any(private == "a" and nat == "a"
                               for _, private, nat in lab.route_events[since:]), 90, "failback")
    moment = next(t for t, private, nat in lab.route_events[since:]
                  if private == "a" and nat == "a")
    return figures(lab, running, moment)


def rollout(lab: HaLab, count: int) -> dict[str, Any]:
    """A new launch template for AZ a: its NAT hands its AZ over (planned), is replaced, and
    the new one takes the AZ back (planned). The event is the first route move."""
    running = start_flows(lab, count, 100)
    old = lab.nats["a"].instance_id
    since = len(lab.route_events)
    lab.set_release("a", "r2")
    lab.wait_until(lambda: lab.instance_health(old) == "Unhealthy", 90, "step down")
    handed = next(t for t, private, nat in lab.route_events[since:]
                  if private == "a" and nat == "b")
    lab.replace_instance("a")
    lab.wait_until(lambda: lab.applied.get("a") == "a", 90, "back")
    back = next(t for t, private, nat in lab.route_events[since:]
                if private == "a" and nat == "a")
    reports = {name: HaLab.flows_report(process, timeout=300)
               for name, process in running.items()}
    return {"hand_over": {name: flow_figures(r, handed, name[-1]) for name, r in reports.items()},
            "take_back": {name: flow_figures(r, back, name[-1]) for name, r in reports.items()}}


def measure(repetitions: int, count: int, step: Callable[[str], None]) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"nat_killed": [], "failback": [], "rollout": [],
                                             "new_connections_address_at_once": []}
    for index in range(repetitions):
        step(f"handover: NAT killed, the address move at once ({index + 1}/{repetitions})")
        with HaLab(failback_after=FAILBACK_AFTER, replace_after=5, handover=True,
                   address_delay=0.0, group_tracking=True) as lab:
            settle(lab)
            runs["new_connections_address_at_once"].append(new_connections_at_once(lab))
        step(f"handover: NAT killed, then failback, {count} flows per AZ "
             f"({index + 1}/{repetitions})")
        with HaLab(failback_after=FAILBACK_AFTER, replace_after=5, handover=True,
                   address_delay=ADDRESS_DELAY, group_tracking=True) as lab:
            settle(lab)
            runs["nat_killed"].append(killed(lab, count))
            runs["failback"].append(failback(lab, count))
        step(f"handover: rollout of AZ a, {count} flows per AZ ({index + 1}/{repetitions})")
        with HaLab(failback_after=FAILBACK_AFTER, replace_after=5, handover=True,
                   address_delay=ADDRESS_DELAY, rollout_check=2.0, group_tracking=True) as lab:
            settle(lab)
            runs["rollout"].append(rollout(lab, count))
    return {"address_delay_s": ADDRESS_DELAY, "failback_after_s": FAILBACK_AFTER,
            "flows_per_az": count, "runs": runs}
