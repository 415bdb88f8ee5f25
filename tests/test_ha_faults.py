"""High availability under the faults an operator meets (issue: HA that moves routes only for
real faults): each test counts the route changes and the longest egress gap of each AZ on
the two-AZ test bed, with the agents' production timings for detection.

Needs root; CI runs as root and must run these.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from testbed.ha import ZONES, HaLab, Watch
from tests import needs
from tests.test_ha_datapath import settle

pytestmark = pytest.mark.datapath

needs.network_namespaces("HA fault tests")

DETECTION_BOUND = 5.0  # seconds from a fault to its AZ's route moving: the target
SILENCE_LIMIT = 20.0  # the agent's: a peer silent this long is taken over though it lives
FAILBACK_AFTER = 5.0  # the test bed's failback hysteresis


@pytest.fixture
def lab() -> Iterator[HaLab]:
    with HaLab(failback_after=FAILBACK_AFTER, replace_after=5) as built:
        settle(built)
        yield built


def watch_both(lab: HaLab, seconds: float) -> dict[str, object]:
    return {letter: lab.watch(letter, seconds) for letter in ZONES}


def watched(watchers: dict[str, object]) -> dict[str, Watch]:
    return {letter: HaLab.watched(w) for letter, w in watchers.items()}  # type: ignore[arg-type]


def changes_since(lab: HaLab, count: int) -> list[tuple[float, str, str]]:
    return lab.route_events[count:]


def test_truncated_api_answers_crash_nothing_and_move_nothing(lab: HaLab) -> None:
    before = len(lab.route_events)
    watchers = watch_both(lab, 60)
    with lab.api_answers_cut_short() as start:
        time.sleep(20)
    time.sleep(5)
    seen = watched(watchers)
    assert changes_since(lab, before) == []
    for letter in ZONES:
        log = lab.agent_log(letter)
        assert "Traceback" not in log and "nat-agent exited" not in log, log[-3000:]
        # one line for the failure, one when it ends: not one a second
        assert log.count("failed, trying again") <= 4, log[-3000:]
        assert seen[letter].longest_gap(start, start + 25) <= 1.0


@pytest.mark.parametrize("after", [None, 0.0], ids=["crash-restart-after-2s", "restart-at-once"])
def test_an_agent_restart_leaves_a_forwarding_nat_its_routes(lab: HaLab,
                                                             after: float | None) -> None:
    before = len(lab.route_events)
    watchers = watch_both(lab, 60)
    time.sleep(1)
    killed = lab.restart_agent("a", after=after)
    lab.wait_until(lambda: lab.agent_log("a").count("probe namespace up") >= 2 or
                   lab.agent_log("a").count("probing [") >= 2, 20, "agent a running again")
    time.sleep(15)
    seen = watched(watchers)
    assert changes_since(lab, before) == [], lab.agent_log("b")[-2000:]
    assert seen["a"].longest_gap(killed - 1, killed + 15) <= 1.0


def test_a_frozen_agent_fails_back_only_after_the_hysteresis(lab: HaLab) -> None:
    """Frozen past the silence limit, its AZ moves; once it answers again, its AZ comes back
    only after failbackAfterSeconds counted from then, not from before the freeze."""
    before = len(lab.route_events)
    with lab.frozen_agent("a") as frozen:
        lab.wait_until(lambda: lab.applied.get("a") == "b", SILENCE_LIMIT + 10,
                       "AZ a taken over after the silence limit")
        moved = time.monotonic()
        assert moved - frozen >= SILENCE_LIMIT - 1  # not for a few seconds of silence
    resumed = time.monotonic()
    back = lab.wait_until(lambda: lab.applied.get("a") == "a", 40, "AZ a back on NAT a")
    assert back - resumed >= FAILBACK_AFTER, (back - resumed, lab.agent_log("a")[-2000:])
    assert len(changes_since(lab, before)) == 2


def test_with_both_nats_broken_routes_stay_and_the_first_back_serves_both(lab: HaLab) -> None:
    """One upstream failure, seen by the two NATs a moment apart (as it is: their probes are
    not in step): the one that sees it later is no place to move to."""
    before = len(lab.route_events)
    with lab.internet_cut("a"):
        time.sleep(1.5)
        with lab.internet_cut("b"):
            time.sleep(20)
            assert changes_since(lab, before) == [], (lab.agent_log("a")[-2000:],
                                                      lab.agent_log("b")[-2000:])
        # b comes back first (its cut ends): once it has passed 95 % of its last 20 probes
        # (about 18 s after a 20 s outage: a NAT back from a break is not trusted at once)
        lab.wait_until(lambda: lab.applied == {"a": "b", "b": "b"}, 40,
                       "both AZs on NAT b, the one that works")
        assert len(changes_since(lab, before)) == 1


@pytest.fixture
def busy_lab() -> Iterator[HaLab]:
    """The agents also call AWS every 2 s (their rollout check; production: every minute)."""
    with HaLab(failback_after=FAILBACK_AFTER, replace_after=5, rollout_check=2) as built:
        settle(built)
        yield built


def upstream_cut_fails_over_within_the_bound(lab: HaLab) -> None:
    before = len(lab.route_events)
    watchers = watch_both(lab, 60)
    time.sleep(1)
    with lab.internet_cut("a") as cut:
        moved = lab.wait_until(lambda: lab.applied.get("a") == "b", 15, "AZ a via NAT b")
        time.sleep(3)
    seen = watched(watchers)
    assert moved - cut <= DETECTION_BOUND, moved - cut
    assert seen["a"].gap_around(cut) <= DETECTION_BOUND + 1
    assert changes_since(lab, before)[0][1:] == ("a", "b")


def test_an_upstream_cut_fails_over_within_the_bound(lab: HaLab) -> None:
    """NAT a's internet side cut (its private side and its link to NAT b up; the API is on
    the internet, so NAT a cannot call it either, and its calls hang until their timeout)."""
    upstream_cut_fails_over_within_the_bound(lab)


def test_detection_does_not_wait_on_aws_calls(busy_lab: HaLab) -> None:
    """The same with the agents calling AWS every 2 s: a hung call must not delay the
    verdict (it did: 8.6 s with the test bed's former 2 s and 5 s AWS intervals)."""
    upstream_cut_fails_over_within_the_bound(busy_lab)


def test_a_nat_losing_a_quarter_of_its_packets_is_left(lab: HaLab) -> None:
    """25 % loss each way on NAT a's internet side: about half its new connections fail.
    Its AZ moves to the healthy NAT, once, and stays.

    When is chance: a probe fails only when both targets' handshakes do, about 1 in 5 here,
    and the NAT is degraded once 4 of its last 20 probes failed. Simulated, that takes over
    40 probes in 13 % of runs (CI met one), over 120 in 0.1 %: the bound is 120 s.
    """
    before = len(lab.route_events)
    with lab.lossy_internet("a", 25) as lossy:
        moved = lab.wait_until(lambda: lab.applied.get("a") == "b", 120, "AZ a via NAT b")
        time.sleep(10)
        assert changes_since(lab, before) == [changes_since(lab, before)[0]]
    assert moved - lossy <= 120, moved - lossy
