"""How the handover tests and benchmark judge one flow through an event
(testbed.flows.outcome)."""

from __future__ import annotations

from typing import Any

from testbed.flows import outcome


def flow(gaps: list[list[Any]], ended: float | None = None) -> dict[str, Any]:
    return {"gaps": gaps, "ended": ended, "why": "", "addresses": {}}


def test_a_flow_whose_outage_ends_within_30_s_survives_with_that_pause() -> None:
    assert outcome(flow([[95.0, 20.0]]), 100.0) == (True, 20.0)
    # a planned move stops it before the route moves (the address first)
    assert outcome(flow([[91.0, 12.0]]), 100.0) == (True, 12.0)


def test_one_that_stays_silent_past_30_s_or_was_reset_does_not() -> None:
    assert outcome(flow([[99.0, 31.5]]), 100.0) == (False, 31.5)
    assert outcome(flow([], ended=105.0), 100.0)[0] is False


def test_gaps_of_other_events_do_not_count() -> None:
    # the next event's outage 20 s later, longer than the window left after this one
    assert outcome(flow([[99.0, 5.0], [120.0, 14.0]]), 100.0) == (True, 5.0)
    # an earlier event's, over before this one's window
    assert outcome(flow([[60.0, 40.0]]), 100.0) == (True, 0.0)


def test_a_silence_the_run_ended_in_is_not_survival() -> None:
    assert outcome(flow([[99.0, 11.0, "open"]]), 100.0) == (False, 11.0)
