"""`python -m natctl plan`: content, cost arithmetic, JSON schema, diagram and bad input."""

from __future__ import annotations

import json
import os
import shutil
import struct
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from natctl.__main__ import main
from natctl.cost import estimate
from natctl.offline import run_program
from natctl.plan import plan_stack, render_text
from natctl.stacks import load_stack_config

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "natctl" /
                     "plan.schema.json").read_text())


def stack_dir(tmp_path: Path, name: str, config: dict[str, Any]) -> Path:
    lines = ["config:"] + [f"  {key}: {json.dumps(value)}" for key, value in config.items()]
    (tmp_path / f"Pulumi.{name}.yaml").write_text("\n".join(lines) + "\n")
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dev_plan_one_az(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "plan", "--stack", "dev")
    assert code == 0
    assert ("  public subnet  dev-public-us-east-1a  10.0.0.0/20  (0.0.0.0/0 → internet gateway)\n"
            "    └─ NAT instance dev-nat-us-east-1a: t4g.nano arm64, source/dest check off, "
            "IMDS v2 required\n") in out
    assert "         └─ Elastic IP dev-nat-eip-us-east-1a\n" in out
    assert ("  private subnet dev-private-us-east-1a  10.0.128.0/20\n"
            "    └─ route table dev-private-rt-us-east-1a\n"
            "         └─ 0.0.0.0/0 → dev-nat-us-east-1a (same AZ)\n") in out
    # the guide's table plus dev's test rules
    assert "  inbound    10.0.128.0/20       tcp       443   HTTPS from private servers\n" in out
    assert "  outbound   0.0.0.0/0           icmp      all   ping to the internet" in out
    # $33.64 before monitoring, whose $1.19 is its own line and in the NAT instances' total
    assert "    CloudWatch monitoring (see below)            1.0 month           × 1.19    = " \
        "$1.19\n" in out
    assert "saving with NAT instances: $32.45/month" in out
    assert ("Monitoring: $1.19/month ($1.19 per NAT): 2 metrics per NAT in NatInstance, sent "
            "every 300 s; 5 alarms\n") in out
    assert "note: Elastic IPs: this stack allocates 1; an account may hold 5 per Region" in out


@pytest.mark.parametrize(("config", "total", "per_nat"), [
    # t4g.nano: 2 metrics ($0.60), a request every 5 minutes ($0.09), 5 alarms ($0.50)
    ({}, 2.38, 1.19),
    # a non-burstable type: no CPU-credit alarm
    ({"natInstanceType": "c7gn.medium"}, 2.18, 1.09),
    # detailed: 4 more metrics a NAT; a dashboard ($3)
    ({"detailedMetrics": True, "monitoringDashboard": True}, 2.38 + 8 * 0.30 + 3.0, None),
    # every minute: 43,800 requests a NAT
    ({"metricsPublishIntervalSeconds": 60}, 2.2 + 2 * 0.438, None),
])
def test_monitoring_is_priced_on_its_own_line(tmp_path: Path, config: dict[str, Any],
                                              total: float, per_nat: float | None) -> None:
    project = stack_dir(tmp_path, "watch", {"aws:region": "us-east-1",
                                            "nat-instance-vpc:azCount": 2,
                                            **{f"nat-instance-vpc:{k}": v
                                               for k, v in config.items()}})
    cost = plan_stack("watch", 100, project)["cost"]
    assert cost["monitoring"]["total"] == pytest.approx(total, abs=0.011)
    if per_nat is not None:
        assert cost["monitoring"]["per_nat"] == pytest.approx(per_nat, abs=0.005)
    line = next(x for x in cost["nat_instances"] if x["item"].startswith("CloudWatch"))
    assert line["monthly"] == cost["monitoring"]["total"]


def test_monitoring_off_costs_nothing(tmp_path: Path) -> None:
    project = stack_dir(tmp_path, "quiet", {"aws:region": "us-east-1",
                                            "nat-instance-vpc:monitoring": False})
    plan = plan_stack("quiet", 100, project)
    assert plan["monitoring"] is None and plan["cost"]["monitoring"] is None
    assert not any(x["item"].startswith("CloudWatch") for x in plan["cost"]["nat_instances"])


def test_plan_counts_match_the_mocks_graph() -> None:
    graph = run_program(load_stack_config("dev"), stack="dev")
    plan = plan_stack("dev", 100)
    assert plan["resource_counts"] == graph.counts()
    assert plan["resource_total"] == len(graph.resources)


def test_two_az_plan_routes_each_private_subnet_to_its_own_nat(tmp_path: Path) -> None:
    project = stack_dir(tmp_path, "two", {"aws:region": "us-east-1",
                                          "nat-instance-vpc:azCount": 2})
    plan = plan_stack("two", 100, project)
    zones = plan["availability_zones"]
    assert [z["zone"] for z in zones] == ["us-east-1a", "us-east-1b"]
    for zone in zones:
        assert zone["nat_instance"]["name"] == f"two-nat-{zone['zone']}"
        assert zone["private_route_table"]["default_route_target"] == f"two-nat-{zone['zone']}"
        assert zone["private_route_table"]["same_zone"] is True
    assert len(plan["security_group_rules"]) == 6  # 2 × (80, 443) in + 2 out
    text = render_text(plan)
    assert text.count("(same AZ)") == 2
    jsonschema.validate(plan, SCHEMA)


def test_single_nat_plan_shows_the_cross_az_route(tmp_path: Path) -> None:
    project = stack_dir(tmp_path, "one", {"aws:region": "us-east-1",
                                          "nat-instance-vpc:azCount": 2,
                                          "nat-instance-vpc:singleNat": True})
    plan = plan_stack("one", 100, project)
    assert plan["availability_zones"][1]["nat_instance"] is None
    assert "0.0.0.0/0 → one-nat-us-east-1a (in us-east-1a: crosses AZs)" in render_text(plan)
    items = [line["item"] for line in plan["cost"]["nat_instances"]]
    assert "cross-AZ traffic (singleNat)" in items
    jsonschema.validate(plan, SCHEMA)


def test_cost_for_one_t4g_nano_by_hand() -> None:
    cost = estimate("t4g.nano", nat_count=1, az_count=1, gb_per_month=100)
    # 730 h × $0.0042 = 3.066; 730 h × $0.005 IPv4 = 3.65; 8 GB × $0.08 = 0.64
    assert [line.monthly for line in cost.nat_instances] == [3.07, 3.65, 0.64, 0.0]
    assert cost.nat_instances_total == 7.36
    # 730 h × $0.045 = 32.85; IPv4 3.65; 100 GB × $0.045 = 4.50
    assert [line.monthly for line in cost.nat_gateways] == [32.85, 3.65, 4.5]
    assert cost.nat_gateways_total == 41.0
    assert cost.monthly_saving == 33.64
    assert cost.break_even_gb is None
    assert cost.within_baseline


def test_cost_for_two_t4g_micro_by_hand() -> None:
    cost = estimate("t4g.micro", nat_count=2, az_count=2, gb_per_month=500)
    assert cost.nat_instances_total == 12.26 + 7.30 + 1.28
    assert cost.nat_gateways_total == 65.70 + 7.30 + 22.50


def test_break_even_for_an_expensive_instance() -> None:
    cost = estimate("c6in.large", nat_count=1, az_count=1, gb_per_month=0)
    # fixed: 82.78 + 3.65 + 0.64 = 87.07 vs 32.85 + 3.65 = 36.50 → 50.57 / 0.045 GB
    assert cost.break_even_gb == 1123.8
    below = estimate("c6in.large", nat_count=1, az_count=1, gb_per_month=1000)
    above = estimate("c6in.large", nat_count=1, az_count=1, gb_per_month=1200)
    assert below.monthly_saving is not None and above.monthly_saving is not None
    assert below.monthly_saving < 0 < above.monthly_saving


def test_cross_az_cost_with_single_nat() -> None:
    cost = estimate("t4g.nano", nat_count=1, az_count=2, gb_per_month=100, single_nat=True)
    cross = [line for line in cost.nat_instances if line.item.startswith("cross-AZ")]
    assert cross and cross[0].quantity == 50 and cross[0].monthly == 1.0


def test_traffic_above_the_baseline_is_flagged() -> None:
    # 32 Mbit/s for 730 h is about 10,512 GB
    assert estimate("t4g.nano", 1, 1, 10000).within_baseline
    heavy = estimate("t4g.nano", 1, 1, 20000)
    assert not heavy.within_baseline
    assert any("above t4g.nano's baseline of 32 Mbit/s" in note for note in heavy.notes)


def test_json_output_follows_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "plan", "--stack", "prod", "--format", "json",
                       "--gb-per-month", "250")
    assert code == 0
    plan = json.loads(out)
    jsonschema.validate(plan, SCHEMA)
    assert plan["cost"]["gb_per_month"] == 250
    assert any("deploys to eu-west-1" in note for note in plan["cost"]["notes"])


needs_dot = pytest.mark.skipif(shutil.which("dot") is None and not os.environ.get("CI"),
                               reason="Graphviz `dot` is not installed (apt-get install graphviz)")


@needs_dot
def test_svg_diagram(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "prod.svg"
    code, out, _ = cli(capsys, "plan", "--stack", "prod", "--diagram", str(target))
    assert code == 0 and f"diagram written to {target}" in out
    root = ElementTree.parse(target).getroot()
    assert root.tag.endswith("svg")
    text = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    for label in ("VPC 10.20.0.0/16", "eu-west-1a", "eu-west-1b", "NAT instance",
                  "internet gateway", "10.20.64.0/19"):
        assert label in text


@needs_dot
def test_png_diagram(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "dev.png"
    assert cli(capsys, "plan", "--diagram", str(target))[0] == 0
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 200 and height > 100


def test_unknown_stack(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "plan", "--stack", "staging")
    assert code == 2
    assert "error: unknown stack 'staging': Pulumi.staging.yaml not found" in err
    assert "(dev, prod)" in err


def test_invalid_stack_config_gives_the_programs_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack_dir(tmp_path, "bad", {"aws:region": "us-east-1",
                                "nat-instance-vpc:vpcCidr": "10.0.0.0/33"})
    code, _, err = cli(capsys, "plan", "--stack", "bad", "--project-dir", str(tmp_path))
    assert code == 2
    assert 'nat-instance-vpc:vpcCidr = "10.0.0.0/33": not an IPv4 CIDR' in err
    assert "Traceback" not in err


def test_instance_type_without_a_price_still_gets_a_plan(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real type the dated table lacks: the plan, with its price and baseline unknown."""
    project = stack_dir(tmp_path, "big", {"aws:region": "us-east-1",
                                          "nat-instance-vpc:natInstanceType": "c8gn.medium"})
    plan = plan_stack("big", 100, project)
    jsonschema.validate(plan, SCHEMA)
    cost = plan["cost"]
    assert cost["nat_instances_total"] is None and cost["monthly_saving"] is None
    assert cost["nat_gateways_total"] == 73.0 + 4.5  # the gateway side is still known
    ec2_line = cost["nat_instances"][0]
    assert ec2_line["item"] == "EC2 c8gn.medium (NAT instance)"
    assert ec2_line["unit_price"] is None and ec2_line["monthly"] is None
    assert cost["nat_instances"][1]["monthly"] == 7.3  # two addresses, priced
    assert any("c8gn.medium is not in the dated price table" in n for n in cost["notes"])
    assert plan["availability_zones"][0]["nat_instance"]["architecture"] == "arm64"
    code, out, _ = cli(capsys, "plan", "--stack", "big", "--project-dir", str(tmp_path))
    assert code == 0
    assert "  NAT instances (this stack): unknown\n" in out
    assert "EC2 c8gn.medium (NAT instance)" in out and "× ?       = unknown" in out
    assert "saving with NAT instances: unknown/month" in out
    assert "baseline per NAT: unknown" in out


def test_stack_file_that_is_not_yaml(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Pulumi.broken.yaml").write_text("config: [unclosed\n")
    code, _, err = cli(capsys, "plan", "--stack", "broken", "--project-dir", str(tmp_path))
    assert code == 2 and "Pulumi.broken.yaml is not valid YAML" in err


def test_unsupported_diagram_type(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "plan", "--diagram", "topology.pdf")
    assert code == 2 and "unsupported file type '.pdf'. Fix: name it .svg or .png" in err


def test_negative_volume_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--gb-per-month", "-5"])
    assert exited.value.code == 2
    assert "-5 is negative" in capsys.readouterr().err


def test_high_availability_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = stack_dir(tmp_path, "ha", {"aws:region": "us-east-1",
                                         "nat-instance-vpc:azCount": 3,
                                         "nat-instance-vpc:highAvailability": True,
                                         "nat-instance-vpc:failbackAfterSeconds": 120})
    plan = plan_stack("ha", 100, project)
    jsonschema.validate(plan, SCHEMA)
    assert plan["high_availability"] == {
        "failback_after_seconds": 120,
        "health_check_targets": ["checkip.amazonaws.com:443", "aws.amazon.com:443"]}
    for zone in plan["availability_zones"]:
        nat = zone["nat_instance"]
        assert nat["mode"] == "auto scaling group of one"
        assert nat["name"] == f"ha-nat-asg-{zone['zone']}"
        assert f"on interface ha-nat-eni-{zone['zone']}" in nat["public_address"]
        assert zone["private_route_table"]["same_zone"] is True
    # three NATs, as without high availability: nothing added to the bill
    cost = plan["cost"]
    assert cost["nat_instances"][0]["quantity"] == 3 * 730
    assert any("High availability adds nothing to the monthly bill" in n for n in cost["notes"])
    code, out, _ = cli(capsys, "plan", "--stack", "ha", "--project-dir", str(tmp_path))
    assert code == 0
    assert ("fails over: within seconds, an AZ whose NAT is unhealthy uses the next healthy "
            "one (us-east-1a → us-east-1b → us-east-1c → us-east-1a); back after 120 s "
            "healthy") in out
    assert "inbound    the NAT security group  udp       7654  status from the other NATs" in out


def test_plain_plan_says_nothing_of_high_availability() -> None:
    plan = plan_stack("dev", 100)
    assert plan["high_availability"] is None
    assert "High availability" not in render_text(plan)
