"""The NAT agent's decisions, as pure functions: health → route changes, replacement, rollout."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import time
from collections.abc import Mapping

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from nat.instance.agent import (
    BROKEN,
    DEGRADED,
    HEALTHY,
    STARTING,
    Change,
    Health,
    Peers,
    Settings,
    View,
    decide,
    desired_target,
    peers_up_to_date,
    replacement_due,
    reserved_address,
    rollout_due,
    sign,
)

A, B, C = "us-east-1a", "us-east-1b", "us-east-1c"
ORDER = [A, B, C]
RT = {A: "rtb-a", B: "rtb-b", C: "rtb-c"}
OWNERS = {RT[A]: A, RT[B]: B, RT[C]: C}


def view(me: str, healthy: dict[str, bool], routes: Mapping[str, str | None],
         reachable: dict[str, bool] | None = None, sees_me: dict[str, bool] | None = None,
         gone: dict[str, bool] | None = None, healthy_for: float = 0.0,
         order: list[str] | None = None, broken: dict[str, bool] | None = None,
         dead: dict[str, bool] | None = None, ratio: dict[str, float] | None = None,
         seen_healthy_for: dict[str, float] | None = None) -> View:
    """By default a NAT that is not healthy says so (broken) and one that is silent is dead:
    what the agent concludes once a NAT has judged itself and its kernel is checked."""
    order = order or ORDER
    reachable = reachable or dict.fromkeys(order, True)
    return View(me=me, order=order, healthy=healthy, reachable=reachable,
                sees_me=sees_me or dict.fromkeys(order, True), routes=dict(routes),
                owners={t: z for t, z in OWNERS.items() if z in order}, gone=gone or {},
                my_healthy_for=healthy_for, failback_after=60,
                broken=broken if broken is not None else {
                    z: not healthy.get(z, False) for z in order},
                dead=dead if dead is not None else {z: not reachable.get(z) for z in order},
                ratio=ratio or {}, seen_healthy_for=seen_healthy_for or {})


ALL_UP = dict.fromkeys(ORDER, True)
NORMAL = {RT[A]: A, RT[B]: B, RT[C]: C}


def test_all_healthy_nothing_moves() -> None:
    for me in ORDER:
        assert decide(view(me, ALL_UP, NORMAL, healthy_for=999)) == []


def test_desired_target_is_the_owner_else_the_next_healthy_in_ring_order() -> None:
    assert desired_target(A, ORDER, ALL_UP) == A
    assert desired_target(A, ORDER, {A: False, B: True, C: True}) == B
    assert desired_target(C, ORDER, {A: True, B: True, C: False}) == A  # wraps around
    assert desired_target(B, ORDER, {A: True, B: False, C: False}) == A
    assert desired_target(A, ORDER, dict.fromkeys(ORDER, False)) is None


def test_an_unhealthy_nat_is_taken_over_by_the_next_one_only() -> None:
    health = {A: False, B: True, C: True}
    # B, next after A, pulls A's route; C sees the same and leaves it to B
    assert decide(view(B, health, NORMAL)) == [
        Change(RT[A], B, f"the NAT in {A} is unhealthy")]
    assert decide(view(C, health, NORMAL)) == []
    # A, unhealthy but alive, pushes its own route to the same place
    assert decide(view(A, health, NORMAL)) == [
        Change(RT[A], B, f"the NAT in {A} is unhealthy")]


def test_an_unreachable_nat_is_taken_over() -> None:
    """Dead (or partitioned away): its AZ goes to the next NAT."""
    health = {A: False, B: True, C: True}
    changes = decide(view(B, health, NORMAL, reachable={A: False, B: True, C: True}))
    assert changes == [Change(RT[A], B, f"the NAT in {A} does not answer")]


def test_a_nat_cut_off_from_most_others_takes_nothing_for_their_silence() -> None:
    """A sees neither B nor C: with three NATs it is the odd one out, and keeps to itself;
    with two, one NAT seeing nobody may take over (it cannot tell death from a cut)."""
    alone = {A: True, B: False, C: False}
    assert decide(view(A, alone, NORMAL, reachable=alone)) == []
    two = [A, B]
    assert decide(view(A, {A: True, B: False}, {RT[A]: A, RT[B]: B},
                       reachable={A: True, B: False}, order=two)) == [
        Change(RT[B], A, f"the NAT in {B} does not answer")]
    # a NAT that answers and says it is broken is taken over whatever the quorum
    assert decide(view(A, {A: True, B: False, C: False}, NORMAL,
                       reachable={A: True, B: True, C: False})) == [
        Change(RT[B], A, f"the NAT in {B} is unhealthy"),
        Change(RT[C], A, f"the NAT in {C} does not answer")]  # B answering makes a quorum
    assert decide(view(A, {A: True, B: False, C: False}, {**NORMAL, RT[C]: C},
                       reachable={A: True, B: False, C: False})) == []


def test_both_unhealthy_means_no_move() -> None:
    """Nowhere better to go (the internet or a shared route is down): routes stay."""
    two = [A, B]
    down = {A: False, B: False}
    routes = {RT[A]: A, RT[B]: B}
    for me in two:
        assert decide(view(me, down, routes, order=two)) == []


def test_a_nat_whose_last_good_probe_predates_the_fault_is_no_target_yet() -> None:
    """One upstream failure seen a moment apart: A has judged itself broken, B has not probed
    since it saw that. Neither B (taking) nor A (handing over) moves A's AZ until B has
    passed a probe after seeing A in trouble; the blackhole and failback need no such word."""
    two = [A, B]
    routes = {RT[A]: A, RT[B]: B}
    health = {A: False, B: True}
    for me in two:
        unsure = dataclasses.replace(view(me, health, routes, order=two),
                                     vouches={A: frozenset(), B: frozenset()})
        assert decide(unsure) == [], me
        sure = dataclasses.replace(unsure, vouches={A: frozenset(), B: frozenset({A})})
        assert decide(sure) == [Change(RT[A], B, f"the NAT in {A} is unhealthy")], me
        # a peer that does not say (an earlier release) is taken at its word
        assert decide(dataclasses.replace(unsure, vouches={})) == decide(sure)
    # silent and dead, or gone: the same rule
    dead = dataclasses.replace(view(B, health, routes, order=two,
                                    reachable={A: False, B: True}),
                               vouches={B: frozenset()})
    assert decide(dead) == []
    assert decide(dataclasses.replace(dead, vouches={B: frozenset({A})})) == [
        Change(RT[A], B, f"the NAT in {A} does not answer")]
    gone = dataclasses.replace(view(B, health, {RT[A]: C, RT[B]: B, RT[C]: B},
                                    reachable={A: True, B: True, C: False}, gone={C: True}),
                               vouches={B: frozenset({A})})
    assert decide(gone) == []
    assert decide(dataclasses.replace(gone, vouches={B: frozenset({C})})) == [
        Change(RT[A], B, f"the NAT in {C} is gone")]
    # a blackhole route has no NAT to vouch for; a failback moves onto a NAT that works
    assert decide(dataclasses.replace(view(A, ALL_UP, {**NORMAL, RT[A]: None}),
                                      vouches={A: frozenset()})) == [
        Change(RT[A], A, "its route leads to no live NAT")]
    assert decide(dataclasses.replace(view(A, ALL_UP, {**NORMAL, RT[A]: B}, healthy_for=60),
                                      vouches={A: frozenset(), B: frozenset()})) == [
        Change(RT[A], A, "failback: healthy for 60 s")]


def test_a_blackhole_route_is_pulled_by_its_desired_nat() -> None:
    routes = {**NORMAL, RT[A]: None}
    assert decide(view(A, ALL_UP, routes)) == [
        Change(RT[A], A, "its route leads to no live NAT")]
    assert decide(view(B, ALL_UP, routes)) == []  # not B's to take: A is healthy
    health = {A: False, B: True, C: True}
    assert decide(view(B, health, routes)) == [
        Change(RT[A], B, "its route leads to no live NAT")]


def test_failback_needs_hysteresis_and_the_holders_confirmation() -> None:
    failed_over = {**NORMAL, RT[A]: B}
    # A is back: not yet healthy long enough
    assert decide(view(A, ALL_UP, failed_over, healthy_for=59)) == []
    # long enough, and B (holding the route) sees A healthy: A takes its AZ back
    assert decide(view(A, ALL_UP, failed_over, healthy_for=60)) == [
        Change(RT[A], A, "failback: healthy for 60 s")]
    # B does not see A yet: wait
    assert decide(view(A, ALL_UP, failed_over, healthy_for=600,
                       sees_me={B: False, C: True})) == []
    # nobody else moves it back on A's behalf, and B does not push it away
    assert decide(view(B, ALL_UP, failed_over, healthy_for=600)) == []
    assert decide(view(C, ALL_UP, failed_over, healthy_for=600)) == []


def test_a_holder_that_breaks_hands_the_route_on() -> None:
    failed_over = {**NORMAL, RT[A]: B}
    # A still down, B now reports a broken data path: C takes A's and B's AZs
    health = {A: False, B: False, C: True}
    assert decide(view(C, health, failed_over)) == [
        Change(RT[A], C, f"the NAT in {B} reports a broken data path"),
        Change(RT[B], C, f"the NAT in {B} is unhealthy")]
    # B pushes both itself
    assert decide(view(B, health, failed_over)) == [
        Change(RT[A], C, "handing over"), Change(RT[B], C, f"the NAT in {B} is unhealthy")]
    # A back and healthy: it takes its own AZ directly from the broken holder
    health = {A: True, B: False, C: True}
    assert decide(view(A, health, failed_over)) == [
        Change(RT[A], A, f"the NAT in {B} reports a broken data path")]


def test_a_holder_that_cannot_be_reached_keeps_the_route_unless_aws_says_it_is_gone() -> None:
    """The split-brain rule: unreachable is not proof of death."""
    failed_over = {**NORMAL, RT[A]: B}
    unreachable_b = {A: True, B: False, C: True}
    health = {A: True, B: False, C: True}
    # A keeps off its own AZ's route (B may be alive behind a cut); B's AZ is C's to take
    assert decide(view(A, health, failed_over, reachable=unreachable_b, healthy_for=999)) == []
    assert decide(view(C, health, failed_over, reachable=unreachable_b, healthy_for=999)) == [
        Change(RT[B], C, f"the NAT in {B} does not answer")]
    assert decide(view(A, health, failed_over, reachable=unreachable_b, healthy_for=999,
                       gone={B: True})) == [Change(RT[A], A, f"the NAT in {B} is gone")]


def test_a_single_lost_probe_changes_nothing() -> None:
    health = Health(threshold=3, state=HEALTHY)
    assert health.update(False, 1) is False and health.healthy and not health.last_ok
    assert health.update(True, 2) is False and health.healthy  # the streak resets
    assert health.update(False, 3) is False
    assert health.update(False, 4) is False
    assert health.update(False, 5) is True and health.state == BROKEN
    assert health.lasted(7) == 2
    # and coming back takes three good probes too
    assert [health.update(True, t) for t in (8, 9, 10)] == [False, False, True]
    assert health.healthy and health.ever_healthy


def test_a_starting_nat_has_no_verdict_until_its_first_probes() -> None:
    """A new agent (a restart, a new instance) judges nothing before it has probed: the first
    probe that passes makes it healthy, three failures in a row broken."""
    booting = Health(threshold=3)
    assert booting.state == STARTING and not booting.healthy and not booting.ever_healthy
    assert booting.update(True, 1) is True and booting.healthy and booting.ever_healthy
    failing = Health(threshold=3)
    assert [failing.update(False, t) for t in (1, 2, 3)] == [False, False, True]
    assert failing.state == BROKEN and not failing.ever_healthy
    stalled = Health(threshold=3, state=HEALTHY)
    stalled.restart(50)
    assert stalled.state == STARTING and stalled.lasted(55) == 5 and not stalled.results


def test_a_nat_losing_a_share_of_its_probes_is_degraded_and_recovers() -> None:
    """Over a window of 20 probes: below 85 % passed is degraded, healthy again from 95 %;
    one lost probe in twenty is nothing."""
    health = Health(threshold=3, window=20, state=HEALTHY)
    for t in range(20):
        health.update(t != 7, t)
    assert health.healthy and health.ratio == 0.95
    changes = [health.update(t % 3 != 0, 20 + t) for t in range(20)]  # a third lost
    assert health.state == DEGRADED and changes.count(True) == 1
    assert health.ratio < 0.85
    for t in range(40, 60):
        health.update(True, t)
    assert health.healthy and health.ratio >= 0.95
    # broken, then passing again: healthy only if the window is clean enough
    broken = Health(threshold=3, window=10, state=HEALTHY)
    for t, ok in enumerate([True] * 4 + [False] * 3 + [True] * 3):
        broken.update(ok, t)
    assert broken.state == DEGRADED  # 7 of 10 passed


# --- a NAT that says nothing is not a NAT that forwards nothing ---------------------------------
def test_a_starting_or_silent_but_alive_nat_keeps_its_routes() -> None:
    """An agent restarting (or its NAT just booted) has not judged its data path: neither
    its peers nor itself move its AZ. A silent agent whose kernel still answers keeps its AZ
    too, until silence_limit; only a dead one (its kernel silent too) is taken over."""
    starting = {A: False, B: True, C: True}
    not_broken = dict.fromkeys(ORDER, False)
    for me in ORDER:
        assert decide(view(me, starting, NORMAL, broken=not_broken)) == []
    silent = {A: False, B: True, C: True}
    assert decide(view(B, silent, NORMAL, reachable=silent, dead={A: False})) == []
    assert decide(view(B, silent, NORMAL, reachable=silent, dead={A: True})) == [
        Change(RT[A], B, f"the NAT in {A} does not answer")]


def test_a_degraded_nat_is_left_for_a_clearly_better_one_only() -> None:
    two = [A, B]
    routes = {RT[A]: A, RT[B]: B}
    unhealthy_a = {A: False, B: True}
    lossy = view(B, unhealthy_a, routes, order=two, broken={A: False, B: False},
                 ratio={A: 0.55, B: 1.0})
    lossy_change = [
        Change(RT[A], B, f"the NAT in {A} passes 55% of its probes, the one in {B} 100%")]
    assert decide(lossy) == lossy_change
    # A hands its own AZ over for the same reason
    assert decide(view(A, unhealthy_a, routes, order=two, broken={A: False, B: False},
                       ratio={A: 0.55, B: 1.0})) == lossy_change
    # not clearly worse (both lose probes: the cause is upstream), or no better NAT: stay
    assert decide(view(B, unhealthy_a, routes, order=two, broken={A: False, B: False},
                       ratio={A: 0.82, B: 0.97})) == []
    assert decide(view(B, {A: False, B: False}, routes, order=two,
                       broken={A: False, B: False}, ratio={A: 0.5, B: 0.6})) == []


def test_failback_counts_from_when_the_holder_saw_the_owner_healthy() -> None:
    """A NAT back from a freeze may think it has been healthy for long; the NAT holding its
    AZ has seen it healthy only since it answered again."""
    failed_over = {RT[A]: B, RT[B]: B}
    two = [A, B]
    up = {A: True, B: True}
    assert decide(view(A, up, failed_over, order=two, healthy_for=999,
                       seen_healthy_for={B: 2.0})) == []
    assert decide(view(A, up, failed_over, order=two, healthy_for=999,
                       seen_healthy_for={B: 61.0})) == [
        Change(RT[A], A, "failback: healthy for 999 s")]
    assert decide(view(A, up, failed_over, order=two, healthy_for=10,
                       seen_healthy_for={B: 61.0})) == []


# --- two NATs that cannot see each other: the routes settle ------------------------------------
def simulate(nats: list[str], sees: dict[tuple[str, str], bool], data_path: dict[str, bool],
             routes: dict[str, str | None], rounds: int = 20, gone: dict[str, bool] | None = None
             ) -> list[dict[str, str | None]]:
    """Every NAT decides on the shared route state, one after the other, round after round;
    the route state after each round."""
    history = []
    owners = {t: z for t, z in OWNERS.items() if z in nats}
    for round_number in range(rounds):
        for me in nats:
            reachable = {z: z == me or sees[(me, z)] for z in nats}
            healthy = {z: reachable[z] and data_path[z] for z in nats}
            sees_me = {z: sees[(z, me)] and data_path[me] for z in nats if z != me}
            # a silent NAT counts as dead here (its kernel unreachable too: a partition or a
            # dead instance); one that answers says whether its data path works
            for change in decide(View(me=me, order=nats, healthy=healthy, reachable=reachable,
                                      sees_me=sees_me, routes=routes, owners=owners,
                                      gone=gone or {}, my_healthy_for=round_number * 10.0,
                                      failback_after=60,
                                      broken={z: reachable[z] and not data_path[z]
                                              for z in nats},
                                      dead={z: not reachable[z] for z in nats})):
                routes[change.route_table] = change.target
        history.append(dict(routes))
    return history


def test_partition_settles_in_a_working_state_and_does_not_oscillate() -> None:
    two = [A, B]
    cut = {(A, B): False, (B, A): False, (A, A): True, (B, B): True}
    history = simulate(two, cut, {A: True, B: True}, {RT[A]: A, RT[B]: B})
    final = history[-1]
    # every AZ is served by a NAT whose data path works, and nothing moved after round 1
    assert all(target in two for target in final.values())
    assert all(state == history[0] for state in history)
    # when the partition heals, each AZ comes back to its own NAT after the hysteresis
    healed = {pair: True for pair in itertools.product(two, two)}
    history = simulate(two, healed, {A: True, B: True}, dict(final))
    assert history[-1] == {RT[A]: A, RT[B]: B}
    changes = sum(1 for before, after in itertools.pairwise(history) if before != after)
    assert changes <= 2


def test_partition_with_three_nats_settles() -> None:
    """A cut off from B and C; B and C see each other."""
    sees = {pair: True for pair in itertools.product(ORDER, ORDER)}
    for other in (B, C):
        sees[(A, other)] = sees[(other, A)] = False
    history = simulate(ORDER, sees, dict.fromkeys(ORDER, True), dict(NORMAL))
    assert all(state == history[-1] for state in history[1:])
    assert history[-1][RT[B]] == B and history[-1][RT[C]] == C  # B and C keep their AZs


def test_a_dead_nat_fails_over_and_a_fresh_one_fails_back() -> None:
    two = [A, B]
    sees = {pair: True for pair in itertools.product(two, two)}
    dead = {**sees, (B, A): False, (A, B): False}
    after_death = simulate(two, dead, {A: False, B: True}, {RT[A]: A, RT[B]: B}, rounds=3)
    assert after_death[0] == {RT[A]: B, RT[B]: B}
    back = simulate(two, sees, {A: True, B: True}, dict(after_death[-1]), rounds=10)
    assert back[-1] == {RT[A]: A, RT[B]: B}


def test_split_brain_never_flaps_whatever_the_health() -> None:
    """Any fixed view of the world: each route changes at most twice, then stays."""
    two = [A, B]
    for a_sees_b, b_sees_a, a_ok, b_ok in itertools.product([True, False], repeat=4):
        sees = {(A, A): True, (B, B): True, (A, B): a_sees_b, (B, A): b_sees_a}
        history = simulate(two, sees, {A: a_ok, B: b_ok}, {RT[A]: A, RT[B]: B}, rounds=30)
        moves = sum(1 for before, after in itertools.pairwise(history) if before != after)
        assert moves <= 2, (a_sees_b, b_sees_a, a_ok, b_ok, history)
        assert history[-1] == history[-5]


# --- replacement and rollout --------------------------------------------------------------------
SETTINGS = Settings(region="us-east-1", nats={}, route_tables={}, targets=[],
                    replace_after=60, never_healthy_grace=600)


@pytest.mark.parametrize(("unhealthy_for", "ever", "up_for", "peer", "direct", "due"), [
    (59, True, 999, True, False, False),   # not long enough
    (60, True, 999, True, False, True),    # a peer works: the fault is this NAT's
    (60, True, 999, False, True, True),    # this NAT reaches out itself, not by forwarding
    (600, True, 999, False, False, False),  # everything down: replacing would only churn
    (999, False, 599, True, True, False),  # never healthy: the grace since boot
    (999, False, 600, True, True, True),
])
def test_replacement_due(unhealthy_for: float, ever: bool, up_for: float, peer: bool,
                         direct: bool, due: bool) -> None:
    assert replacement_due(unhealthy_for, ever, up_for, peer, direct, SETTINGS) is due


@pytest.mark.parametrize(("me", "up_to_date", "healthy", "due"), [
    (A, {A: False, B: True, C: True}, ALL_UP, True),   # first AZ first
    (B, {A: False, B: False, C: False}, ALL_UP, False),  # waits for A
    (B, {A: True, B: False, C: False}, ALL_UP, True),
    (A, {A: False, B: True, C: True}, {A: True, B: False, C: True}, False),  # a peer is down
    (A, {A: True, B: False, C: False}, ALL_UP, False),  # nothing to roll here
])
def test_rollout_one_az_at_a_time(me: str, up_to_date: dict[str, bool],
                                  healthy: dict[str, bool], due: bool) -> None:
    assert rollout_due(me, ORDER, up_to_date, healthy) is due


def test_a_peer_is_up_to_date_by_the_release_it_runs() -> None:
    reports: dict[str, dict[str, object]] = {
        A: {"release": "r1", "up_to_date": True},   # has not yet seen the new tag: old
        B: {"release": "r2", "up_to_date": True},
        C: {"up_to_date": True},                     # says nothing of its release: old
    }
    assert peers_up_to_date("r2", reports) == {A: False, B: True, C: False}
    assert peers_up_to_date("", reports) == {A: False, B: False, C: False}


def test_two_nats_never_step_down_at_once_when_a_tag_changes() -> None:
    """The race seen on the test bed: Pulumi tags both groups; B looks first, while A's
    last report still says up to date (it had not looked yet). B must wait for A."""
    stale: dict[str, dict[str, object]] = {A: {"release": "r1", "up_to_date": True},
                                           C: {"release": "r1"}}
    up_to_date = {**peers_up_to_date("r2", stale), B: False}
    assert rollout_due(B, ORDER, up_to_date, ALL_UP) is False
    assert rollout_due(A, ORDER, {A: False, **peers_up_to_date("r2", {
        B: {"release": "r1"}, C: {"release": "r1"}})}, ALL_UP) is True


def test_a_lone_nat_never_steps_down_for_an_update() -> None:
    assert rollout_due(A, [A], {A: False}, {A: True}) is False


# --- the small facts -----------------------------------------------------------------------------
@pytest.mark.parametrize(("cidr", "address"), [
    ("10.0.0.10/20", "10.0.0.3"), ("10.0.16.10/20", "10.0.16.3"),
    ("100.64.3.200/24", "100.64.3.3")])
def test_the_probe_source_is_the_subnets_reserved_fourth_address(cidr: str,
                                                                  address: str) -> None:
    assert reserved_address(cidr) == address


def test_signature_matches_botocores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard-library signer against botocore's, on the same request and time."""
    body = b"Action=ReplaceRoute&Version=2016-11-15&RouteTableId=rtb-0123456789abcdef0"
    url = "https://ec2.eu-west-1.amazonaws.com/"
    when = datetime.datetime(2026, 11, 27, 12, 0, 0, tzinfo=datetime.UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when)
    for token in ("", "session-token"):
        mine = sign("POST", url, "eu-west-1", "ec2", body, ("AKIDEXAMPLE", "secret", token),
                    when)
        request = AWSRequest(method="POST", url=url, data=body,
                             headers={"Content-Type": mine["content-type"]})
        SigV4Auth(Credentials("AKIDEXAMPLE", "secret", token or None), "ec2",
                  "eu-west-1").add_auth(request)
        assert request.headers["X-Amz-Date"] == mine["x-amz-date"]
        assert mine["authorization"] == request.headers["Authorization"]


def test_a_peer_is_unreachable_after_threshold_rounds_without_an_answer() -> None:
    peers = Peers(A, {A: {"address": "10.0.0.10"}, B: {"address": "10.0.16.10"}}, 3,
                  lambda: {}, port=0)
    try:
        peers.heard[B] = time.monotonic()  # B answers round 1
        peers.collect()
        assert peers.misses[B] == 0 and peers.reachable(B)
        for _ in range(2):  # then nothing: its old answer is not counted again
            peers.collect()
        assert peers.misses[B] == 2 and peers.reachable(B)
        peers.collect()
        assert not peers.reachable(B)
    finally:
        peers.socket.close()


def test_a_late_answer_counts_in_the_next_round() -> None:
    peers = Peers(A, {A: {"address": "10.0.0.10"}, B: {"address": "10.0.16.10"}}, 3,
                  lambda: {}, port=0)
    try:
        for _ in range(5):
            peers.collect()  # round n counted without B's answer…
            peers.heard[B] = time.monotonic()  # …which arrives just after
        peers.collect()
        assert peers.misses[B] == 0 and peers.reachable(B)
    finally:
        peers.socket.close()


def test_a_peers_new_verdict_is_pushed_and_wakes_the_listener() -> None:
    """A NAT whose health changes tells its peers at once (no waiting for their next ask);
    a report that says something new about a peer's health wakes the listener's prober."""
    import json
    import socket
    listener = Peers(A, {A: {"address": "10.0.0.10"}, B: {"address": "127.0.0.1"}}, 3,
                     lambda: {}, port=0)
    woken: list[bool] = []
    listener.on_news = lambda: woken.append(True)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        port = listener.socket.getsockname()[1]

        def report(state: str) -> None:
            sender.sendto(json.dumps({"report": {"state": state}}).encode(),
                          ("127.0.0.1", port))
            deadline = time.monotonic() + 5
            while listener.report(B).get("state") != state and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)
        report(HEALTHY)
        report(HEALTHY)  # nothing new
        report(BROKEN)
        assert woken == [True, True]
        assert listener.heard[B] > 0  # a pushed report is an answer too
    finally:
        listener.socket.close()
        sender.close()
    # and the pushing side: `tell` sends the report to every other NAT's status port
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    teller = Peers(B, {A: {"address": "127.0.0.1"}, B: {"address": "10.0.16.10"}}, 3,
                   lambda: {}, port=0)
    try:
        teller.port = receiver.getsockname()[1]  # A's status port, here
        teller.tell({"state": BROKEN})
        assert json.loads(receiver.recv(65535)) == {"report": {"state": BROKEN}}
    finally:
        teller.socket.close()
        receiver.close()


class StubProbe:
    """The probe namespace's answers, set by the test."""

    passes = True

    @staticmethod
    def primary() -> tuple[str, str]:
        return "ens5", "10.0.0.10/24"

    def alive(self) -> bool:
        return True

    def setup(self) -> str:
        return "ens5"

    def reach(self, targets: object, timeout: float) -> bool:
        return self.passes


class StubMetadata:
    def get(self, _: str) -> str:
        return "i-0123456789abcdef0"


def test_a_nat_vouches_for_a_peer_in_trouble_only_after_its_own_next_passing_probe() -> None:
    from nat.instance.agent import Agent

    settings = Settings(region="us-east-1", targets=[], route_tables={"rtb-a": A, "rtb-b": B},
                        failback_after=60, status_port=0, probe_interval=0.2,
                        nats={A: {"eni": "eni-a", "address": "10.0.0.10"},
                              B: {"eni": "eni-b", "address": "10.0.1.10"}})
    probe = StubProbe()
    nat = Agent(settings, None, StubMetadata(), probe)  # type: ignore[arg-type]
    targets = [("198.51.100.10", 80)]
    nat.probe_round(time.monotonic(), targets)  # a passing probe before B's trouble
    # one failed probe of B's is no verdict yet: no trouble, so no early vouch either
    nat.peers.reports[B] = {"state": HEALTHY, "healthy": True, "last_ok": False}
    nat.peers.misses[B] = 0
    nat.probe_soon.clear()
    nat._observe_peers(time.monotonic())
    assert B not in nat.trouble_seen and not nat.probe_soon.is_set()
    nat.gone[B] = (time.monotonic(), True)  # asked AWS before B was heard (at boot)
    nat.peers.reports[B] = {"state": BROKEN, "healthy": False, "vouches": [A]}
    nat.peers.misses[B] = 0
    nat._observe_peers(time.monotonic())
    assert B not in nat.gone  # B answers: that old word is stale
    assert nat.probe_soon.is_set()  # B's AZ may come here: probe again at once
    assert nat.vouches() == frozenset() and nat.status()["vouches"] == []
    probe.passes = False
    nat.probe_round(time.monotonic(), targets)
    assert nat.vouches() == frozenset()  # its probe since failed: no word for B
    probe.passes = True
    nat.probe_round(time.monotonic(), targets)
    assert nat.vouches() == frozenset({B}) and nat.status()["vouches"] == [B]
    assert nat.view().vouches == {A: frozenset({B}), B: frozenset({A})}
    # B healthy again: out of trouble, and a new trouble needs a new probe
    nat.peers.reports[B] = {"state": HEALTHY, "healthy": True, "last_ok": True}
    nat.peers.misses[B] = 0
    nat._observe_peers(time.monotonic())
    assert nat.vouches() == frozenset()
    assert nat.view().vouches == {A: frozenset()}  # B says nothing: an earlier release
