"""natctl/cost.py: the whole estimate, line by line, against a made-up price table.

The figures are worked out by hand in the comments. Round made-up prices keep the arithmetic
checkable and make every factor (hours, counts, the cross-AZ share, rounding) visible in the
result, which the real dated table (tests/test_plan.py) does not always do.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from natctl.cost import PriceError, estimate, load_prices, monitoring_cost

PRICES: dict[str, Any] = {
    "region": "xx-test-1",
    "as_of": "2026-01-02",
    "hours_per_month": 700,
    "public_ipv4_per_hour": 0.01,
    "ebs_gp3_per_gb_month": 0.1,
    "root_volume_gb": 10,
    "nat_gateway_per_hour": 0.05,
    "nat_gateway_per_gb": 0.04,
    "cross_az_per_gb": 0.02,
    "internet_egress_per_gb_note": "Egress is the same either way.",
    "cloudwatch": {"metric_month": 0.3, "requests_per_1000": 0.01, "alarm_month": 0.1,
                   "dashboard_month": 3.0},
    "instances": {
        "t.small": {"per_hour": 0.02, "baseline_gbps": 0.05},
        "t.big": {"per_hour": 0.2, "baseline_gbps": 1.5},
    },
}
PRICE_NOTE = "Prices: xx-test-1 on-demand as of 2026-01-02; they change."


def lines(cost_lines: list[Any]) -> list[tuple[Any, ...]]:
    return [(x.item, x.quantity, x.unit, x.unit_price, x.monthly) for x in cost_lines]


def test_one_nat_for_three_azs_with_monitoring_and_no_elastic_ip() -> None:
    cost = estimate("t.small", nat_count=1, az_count=3, gb_per_month=300, elastic_ips=False,
                    single_nat=True, prices=PRICES, monitoring=2.5)
    # two AZs of three cross to the NAT's AZ: 300 GB × 2/3 = 200 GB
    assert lines(cost.nat_instances) == [
        ("EC2 t.small (NAT instance)", 700, "instance-hours", 0.02, 14.0),
        ("public IPv4 address", 700, "address-hours", 0.01, 7.0),
        ("EBS gp3 root volume", 10, "GB-months", 0.1, 1.0),
        ("data processed by the NAT", 300, "GB", 0.0, 0.0),
        ("CloudWatch monitoring (see below)", 1, "month", 2.5, 2.5),
        ("cross-AZ traffic (singleNat)", 200.0, "GB", 0.02, 4.0),
    ]
    assert lines(cost.nat_gateways) == [
        ("NAT Gateway", 700, "gateway-hours", 0.05, 35.0),
        ("public IPv4 address (Elastic IP)", 700, "address-hours", 0.01, 7.0),
        ("data processed by the NAT Gateway", 300, "GB", 0.04, 12.0),
        ("cross-AZ traffic (singleNat)", 200.0, "GB", 0.02, 4.0),
    ]
    assert cost.to_dict() | {"nat_instances": None, "nat_gateways": None} == {
        "region": "xx-test-1", "as_of": "2026-01-02", "gb_per_month": 300,
        "nat_instances": None, "nat_gateways": None,
        "nat_instances_total": 28.5, "nat_gateways_total": 58.0, "monthly_saving": 29.5,
        # fixed costs 24.5 (instance) < 42 (gateway): cheaper at any volume
        "break_even_gb": None,
        # 300 GB × 8000 Mbit/GB / (700 h × 3600 s) = 0.952…
        "average_mbps_needed": 0.95, "baseline_mbps_per_nat": 50.0, "within_baseline": True,
        "notes": ["Egress is the same either way.", PRICE_NOTE],
        "cross_az_per_gb": 0.02,
    }


@pytest.mark.parametrize("az_count, crossing_gb", [(2, 300.0), (4, 450.0), (6, 500.0)])
def test_cross_az_share_is_all_but_the_nats_own_az(az_count: int, crossing_gb: float) -> None:
    cost = estimate("t.small", 1, az_count, 600, single_nat=True, prices=PRICES)
    assert lines(cost.nat_instances)[-1] == ("cross-AZ traffic (singleNat)", crossing_gb,
                                             "GB", 0.02, round(crossing_gb * 0.02, 2))


def test_one_nat_per_az_has_no_cross_az_line_and_an_elastic_ip() -> None:
    cost = estimate("t.small", nat_count=3, az_count=3, gb_per_month=300, prices=PRICES)
    assert lines(cost.nat_instances) == [
        ("EC2 t.small (NAT instance)", 2100, "instance-hours", 0.02, 42.0),
        ("public IPv4 address (Elastic IP)", 2100, "address-hours", 0.01, 21.0),
        ("EBS gp3 root volume", 30, "GB-months", 0.1, 3.0),
        ("data processed by the NAT", 300, "GB", 0.0, 0.0),
    ]
    assert lines(cost.nat_gateways) == [
        ("NAT Gateway", 2100, "gateway-hours", 0.05, 105.0),
        ("public IPv4 address (Elastic IP)", 2100, "address-hours", 0.01, 21.0),
        ("data processed by the NAT Gateway", 300, "GB", 0.04, 12.0),
    ]
    assert (cost.nat_instances_total, cost.nat_gateways_total, cost.monthly_saving) == \
        (66.0, 138.0, 72.0)


def test_break_even_where_an_instance_costs_more_than_a_gateway() -> None:
    cost = estimate("t.big", nat_count=1, az_count=1, gb_per_month=0, prices=PRICES)
    # fixed: 140 + 7 + 1 = 148 against 35 + 7 = 42; the gateway's 0.04/GB closes 106 at 2650 GB
    assert cost.break_even_gb == 2650.0
    assert cost.nat_instances_total == 148.0 and cost.nat_gateways_total == 42.0
    assert cost.monthly_saving == -106.0


def test_break_even_counts_fixed_costs_only() -> None:
    # the traffic, and with one NAT its cross-AZ share, cost the same per GB in both columns
    for options in ({}, {"single_nat": True}):
        cost = estimate("t.big", nat_count=1, az_count=2, gb_per_month=1000, prices=PRICES,
                        **options)
        assert cost.break_even_gb == 2650.0, options


def test_break_even_to_a_tenth_of_a_gb() -> None:
    prices = copy.deepcopy(PRICES)
    prices["nat_gateway_per_gb"] = 0.03
    # 106 / 0.03 = 3533.33…
    assert estimate("t.big", 1, 1, 0, prices=prices).break_even_gb == 3533.3


def test_equal_fixed_costs_have_no_break_even() -> None:
    prices = copy.deepcopy(PRICES)
    prices["ebs_gp3_per_gb_month"] = 0.0
    prices["instances"]["t.even"] = {"per_hour": 0.05, "baseline_gbps": 1.0}
    cost = estimate("t.even", nat_count=1, az_count=1, gb_per_month=0, prices=prices)
    assert cost.nat_instances_total == cost.nat_gateways_total == 42.0
    assert cost.break_even_gb is None and cost.monthly_saving == 0.0


@pytest.mark.parametrize("gb_per_month, nat_count, within", [
    (47250, 3, True),   # 150 Mbit/s over 3 NATs: 50 each, exactly t.small's baseline
    (31500, 3, True),   # 100 Mbit/s in all, above one NAT's baseline but 33.3 each
    (50400, 3, False),  # 160 Mbit/s: 53.3 each
    (15750, 1, True),   # 50 Mbit/s on one NAT
    (16065, 1, False),  # 51 Mbit/s on one NAT
])
def test_baseline_is_judged_per_nat(gb_per_month: int, nat_count: int, within: bool) -> None:
    cost = estimate("t.small", nat_count, nat_count, gb_per_month, prices=PRICES)
    assert cost.within_baseline is within
    warnings = [note for note in cost.notes if "baseline" in note]
    if within:
        assert warnings == []
    else:
        per_nat = gb_per_month * 8000 / (700 * 3600) / nat_count
        assert warnings == [f"{gb_per_month} GB/month averages {per_nat:.1f} Mbit/s per NAT, "
                            "above t.small's baseline of 50 Mbit/s: choose a larger instance "
                            "type"]


def test_average_throughput_figure() -> None:
    # 31500 GB × 8000 / 2,520,000 s = 100 Mbit/s, whatever the number of NATs
    assert estimate("t.small", 3, 3, 31500, prices=PRICES).average_mbps_needed == 100.0
    assert estimate("t.small", 1, 1, 31500, prices=PRICES).average_mbps_needed == 100.0


def test_instance_type_missing_from_the_table() -> None:
    cost = estimate("m9.huge", nat_count=2, az_count=2, gb_per_month=100, prices=PRICES)
    assert lines(cost.nat_instances)[0] == ("EC2 m9.huge (NAT instance)", 1400,
                                            "instance-hours", None, None)
    assert cost.nat_instances_total is None and cost.monthly_saving is None
    assert cost.break_even_gb is None
    assert cost.baseline_mbps_per_nat is None and cost.within_baseline is None
    assert cost.nat_gateways_total == 70.0 + 14.0 + 4.0
    assert cost.notes == [
        "Egress is the same either way.", PRICE_NOTE,
        "m9.huge is not in the dated price table (prices.json, 2026-01-02): its hourly price "
        "and baseline bandwidth are unknown here, so are the NAT instances' total and the "
        "saving. See https://aws.amazon.com/ec2/pricing/on-demand/ and the type's network "
        "specifications"]


def test_no_traffic_is_a_valid_volume_and_negative_is_not() -> None:
    assert estimate("t.small", 1, 1, 0, prices=PRICES).average_mbps_needed == 0.0
    with pytest.raises(PriceError) as refused:
        estimate("t.small", 1, 1, -1, prices=PRICES)
    assert str(refused.value) == "--gb-per-month -1: must be 0 or more"


def test_the_dated_table_is_the_default() -> None:
    dated = load_prices()
    assert estimate("t4g.nano", 1, 1, 10).to_dict() == \
        estimate("t4g.nano", 1, 1, 10, prices=dated).to_dict()
    assert monitoring_cost(1, 2, 0, 4, 0, 300).to_dict() == \
        monitoring_cost(1, 2, 0, 4, 0, 300, prices=dated).to_dict()


def test_monitoring_cost_of_two_nats_with_a_dashboard() -> None:
    cost = monitoring_cost(nat_count=2, steady_metrics=5, event_metrics=3, alarms=7,
                           dashboards=1, publish_interval=60, prices=PRICES)
    # 2 NATs × 700 h × 3600 s / 60 s = 84,000 requests at $0.01 per 1000
    assert lines(cost.lines) == [
        ("CloudWatch metrics (each NAT's own)", 10, "metric-months", 0.3, 3.0),
        ("PutMetricData (one per NAT every 60 s)", 84000.0, "requests", 0.00001, 0.84),
        ("CloudWatch alarms", 7, "alarm-months", 0.1, 0.7),
        ("CloudWatch dashboard", 1, "dashboard-months", 3.0, 3.0),
    ]
    assert (cost.total, cost.per_nat, cost.event_metrics_ceiling) == (7.54, 3.77, 1.8)
    assert cost.notes == [
        "The account's CloudWatch free tier (10 metrics, 1M requests, 10 alarms, 3 dashboards) "
        "is not subtracted.",
        "Metrics sent only in minutes with events (port-allocation failures, drops by cause, "
        "failovers) add at most $1.80 in a month they all happen (billed by the hour of "
        "data)."]


def test_monitoring_cost_of_one_nat_without_dashboard_or_event_metrics() -> None:
    cost = monitoring_cost(nat_count=1, steady_metrics=2, event_metrics=0, alarms=4,
                           dashboards=0, publish_interval=300, prices=PRICES)
    # 700 h × 3600 s / 300 s = 8,400 requests
    assert lines(cost.lines) == [
        ("CloudWatch metrics (each NAT's own)", 2, "metric-months", 0.3, 0.6),
        ("PutMetricData (one per NAT every 300 s)", 8400.0, "requests", 0.00001, 0.08),
        ("CloudWatch alarms", 4, "alarm-months", 0.1, 0.4),
    ]
    assert cost.to_dict() | {"lines": None} == {
        "lines": None, "total": 1.08, "per_nat": 1.08, "event_metrics_ceiling": 0.0,
        "notes": ["The account's CloudWatch free tier (10 metrics, 1M requests, 10 alarms, 3 "
                  "dashboards) is not subtracted."]}


def test_monitoring_figures_are_rounded_to_cents() -> None:
    prices = copy.deepcopy(PRICES)
    prices["cloudwatch"]["metric_month"] = 0.3125
    # ceiling: 2 NATs × 3 metrics × 0.3125 = 1.875
    assert monitoring_cost(2, 0, 3, 0, 0, 60, prices=prices).event_metrics_ceiling == 1.88
    # 3 NATs: 0.90 metrics + 1.26 requests + 0.10 alarm = 2.26, 0.7533… a NAT
    cost = monitoring_cost(3, 1, 0, 1, 0, 60, prices=PRICES)
    assert (cost.total, cost.per_nat) == (2.26, 0.75)


def test_monitoring_ceiling_in_thousands_is_written_with_a_separator() -> None:
    cost = monitoring_cost(100, 1, 40, 0, 0, 60, prices=PRICES)
    assert cost.event_metrics_ceiling == 1200.0
    assert "add at most $1,200.00 in a month" in cost.notes[1]
    assert cost.per_nat == round(cost.total / 100, 2)


def test_the_address_line_says_how_many_per_nat() -> None:
    from natctl.cost import address_label
    assert address_label(True, 1) == "public IPv4 address (Elastic IP)"
    assert address_label(False, 1) == "public IPv4 address"
    assert address_label(True, 2) == "public IPv4 addresses (Elastic IPs), 2 per NAT"
