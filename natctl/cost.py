"""Monthly cost of a stack's NAT instances beside the same topology with NAT Gateways.

Pure arithmetic over the dated price table in natctl/prices.json.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PRICES_PATH = Path(__file__).with_name("prices.json")


class PriceError(ValueError):
    pass


def load_prices(path: Path = PRICES_PATH) -> dict[str, Any]:
    prices: dict[str, Any] = json.loads(path.read_text())
    return prices


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: float
    unit: str
    unit_price: float | None  # None: not in the dated price table
    monthly: float | None


@dataclass(frozen=True)
class CostEstimate:
    region: str
    as_of: str
    gb_per_month: float
    nat_instances: list[CostLine]
    nat_gateways: list[CostLine]
    nat_instances_total: float | None  # None: the instance type's price is unknown here
    nat_gateways_total: float
    monthly_saving: float | None
    break_even_gb: float | None  # None: NAT instances are cheaper at any volume (or unknown)
    average_mbps_needed: float
    baseline_mbps_per_nat: float | None
    within_baseline: bool | None
    notes: list[str]
    cross_az_per_gb: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _line(item: str, quantity: float, unit: str, unit_price: float | None) -> CostLine:
    return CostLine(item, quantity, unit, unit_price,
                    None if unit_price is None else round(quantity * unit_price, 2))


def _total(lines: list[CostLine]) -> float | None:
    monthly = [line.monthly for line in lines]
    return None if None in monthly else round(sum(m for m in monthly if m is not None), 2)


def address_label(elastic_ips: bool, per_nat: int) -> str:
    if per_nat > 1:
        return f"public IPv4 addresses (Elastic IPs), {per_nat} per NAT"
    return "public IPv4 address" + (" (Elastic IP)" if elastic_ips else "")


def estimate(instance_type: str, nat_count: int, az_count: int, gb_per_month: float,
             elastic_ips: bool = True, single_nat: bool = False,
             prices: dict[str, Any] | None = None, monitoring: float = 0.0,
             addresses_per_nat: int = 1, spare_addresses: int = 0) -> CostEstimate:
    """NAT instances vs NAT Gateways (one per NAT the stack has) for `gb_per_month` of egress.

    `monitoring` is the NATs' CloudWatch bill a month (`monitoring_cost`): a NAT Gateway's
    metrics are free, a NAT instance's are part of what it costs. `spare_addresses`: Elastic
    IPs the stack holds besides its NATs' (keepConnections' spare)."""
    prices = prices or load_prices()
    if gb_per_month < 0:
        raise PriceError(f"--gb-per-month {gb_per_month}: must be 0 or more")
    # A valid type the dated table lacks still gets a plan: its own price is unknown here.
    instance = prices["instances"].get(instance_type, {"per_hour": None, "baseline_gbps": None})
    hours = prices["hours_per_month"]
    nat_hours = nat_count * hours
    # Cross-AZ traffic: with one NAT for N AZs, (N-1)/N of the traffic crosses an AZ boundary.
    cross_az_gb = gb_per_month * (az_count - 1) / az_count if single_nat else 0.0

    instance_lines = [
        _line(f"EC2 {instance_type} (NAT instance)", nat_hours, "instance-hours",
              instance["per_hour"]),
        _line(address_label(elastic_ips, addresses_per_nat), nat_hours * addresses_per_nat,
              "address-hours", prices["public_ipv4_per_hour"]),
        _line("EBS gp3 root volume", nat_count * prices["root_volume_gb"], "GB-months",
              prices["ebs_gp3_per_gb_month"]),
        _line("data processed by the NAT", gb_per_month, "GB", 0.0),
    ]
    if spare_addresses:
        instance_lines.insert(2, _line("spare Elastic IP (keepConnections)",
                                       spare_addresses * hours, "address-hours",
                                       prices["public_ipv4_per_hour"]))
    if monitoring:
        instance_lines.append(_line("CloudWatch monitoring (see below)", 1, "month",
                                    monitoring))
    gateway_lines = [
        _line("NAT Gateway", nat_hours, "gateway-hours", prices["nat_gateway_per_hour"]),
        _line(address_label(True, addresses_per_nat), nat_hours * addresses_per_nat,
              "address-hours", prices["public_ipv4_per_hour"]),
        _line("data processed by the NAT Gateway", gb_per_month, "GB",
              prices["nat_gateway_per_gb"]),
    ]
    if cross_az_gb:
        for lines in (instance_lines, gateway_lines):
            lines.append(_line("cross-AZ traffic (singleNat)", cross_az_gb, "GB",
                               prices["cross_az_per_gb"]))
    instances_total = _total(instance_lines)
    gateways_total = _total(gateway_lines)
    assert gateways_total is not None

    fixed_instances = _total([line for line in instance_lines if line.unit != "GB"])
    fixed_gateways = _total([line for line in gateway_lines if line.unit != "GB"])
    assert fixed_gateways is not None
    break_even = None
    if fixed_instances is not None and fixed_instances > fixed_gateways:
        break_even = round((fixed_instances - fixed_gateways) / prices["nat_gateway_per_gb"], 1)

    average_mbps = gb_per_month * 8000 / (hours * 3600)  # GB (10^9 bytes) → Mbit/s
    baseline_mbps = None if instance["baseline_gbps"] is None else \
        instance["baseline_gbps"] * 1000
    per_nat_mbps = average_mbps / max(nat_count, 1)
    notes = [prices["internet_egress_per_gb_note"],
             f"Prices: {prices['region']} on-demand as of {prices['as_of']}; they change."]
    if instance["per_hour"] is None:
        notes.append(f"{instance_type} is not in the dated price table ({PRICES_PATH.name}, "
                     f"{prices['as_of']}): its hourly price and baseline bandwidth are unknown "
                     "here, so are the NAT instances' total and the saving. See "
                     "https://aws.amazon.com/ec2/pricing/on-demand/ and the type's network "
                     "specifications")
    if baseline_mbps is not None and per_nat_mbps > baseline_mbps:
        notes.append(f"{gb_per_month:g} GB/month averages {per_nat_mbps:.1f} Mbit/s per NAT, "
                     f"above {instance_type}'s baseline of {baseline_mbps:g} Mbit/s: choose a "
                     "larger instance type")
    return CostEstimate(
        region=prices["region"], as_of=prices["as_of"], gb_per_month=gb_per_month,
        nat_instances=instance_lines, nat_gateways=gateway_lines,
        nat_instances_total=instances_total, nat_gateways_total=gateways_total,
        monthly_saving=None if instances_total is None else
        round(gateways_total - instances_total, 2), break_even_gb=break_even,
        average_mbps_needed=round(average_mbps, 2), baseline_mbps_per_nat=baseline_mbps,
        within_baseline=None if baseline_mbps is None else per_nat_mbps <= baseline_mbps,
        notes=notes, cross_az_per_gb=prices["cross_az_per_gb"])


@dataclass(frozen=True)
class MonitoringCost:
    lines: list[CostLine]
    total: float
    per_nat: float
    event_metrics_ceiling: float  # more, at most, in months with drops or failovers
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def monitoring_cost(nat_count: int, steady_metrics: int, event_metrics: int, alarms: int,
                    dashboards: int, publish_interval: int,
                    prices: dict[str, Any] | None = None) -> MonitoringCost:
    """What CloudWatch bills for the NATs' metrics, alarms and dashboard, a month.

    `steady_metrics` per NAT get data every minute; `event_metrics` per NAT only in minutes
    with drops or failovers (CloudWatch bills a metric by the hours it gets data), so they are
    a ceiling, not part of the total.
    """
    prices = prices or load_prices()
    watch = prices["cloudwatch"]
    requests = nat_count * prices["hours_per_month"] * 3600 / publish_interval
    lines = [
        _line("CloudWatch metrics (each NAT's own)", nat_count * steady_metrics,
              "metric-months", watch["metric_month"]),
        _line(f"PutMetricData (one per NAT every {publish_interval} s)", requests, "requests",
              watch["requests_per_1000"] / 1000),
        _line("CloudWatch alarms", alarms, "alarm-months", watch["alarm_month"]),
    ]
    if dashboards:
        lines.append(_line("CloudWatch dashboard", dashboards, "dashboard-months",
                           watch["dashboard_month"]))
    total = _total(lines)
    assert total is not None
    ceiling = round(nat_count * event_metrics * watch["metric_month"], 2)
    notes = ["The account's CloudWatch free tier (10 metrics, 1M requests, 10 alarms, 3 "
             "dashboards) is not subtracted."]
    if ceiling:
        notes.append("Metrics sent only in minutes with events (port-allocation failures, drops "
                     f"by cause, failovers) add at most {_dollars(ceiling)} in a month they all "
                     "happen (billed by the hour of data).")
    return MonitoringCost(lines, total, round(total / max(nat_count, 1), 2), ceiling, notes)


def _dollars(value: float) -> str:
    return f"${value:,.2f}"

