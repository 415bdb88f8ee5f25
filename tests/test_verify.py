"""`verify` against moto's EC2: a correct deployment passes, each injected fault is named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from natctl import verify as verify_module
from natctl.__main__ import main
from natctl.verify import CheckResult, run_remote, stack_outputs
from natctl.verify import verify as verify_stack
from tests.moto_deployment import REGION, any_image, deploy

A, B = f"{REGION}a", f"{REGION}b"


@pytest.fixture
def deployed(aws: Any) -> tuple[Any, Any, dict[str, Any]]:
    ec2 = aws.client("ec2")
    return aws, ec2, deploy(ec2)


def verify(session: Any, outputs: dict[str, Any], **options: Any) -> list[CheckResult]:
    return verify_stack(session, stack_outputs(outputs, "test outputs"), **options)


def failures(results: list[CheckResult]) -> dict[tuple[str, str], str]:
    return {(r.zone, r.check): r.detail for r in results if not r.passed}


def test_a_correct_deployment_passes_every_check(deployed: tuple[Any, Any, Any]) -> None:
    session, _, outputs = deployed
    results = verify(session, outputs)
    assert failures(results) == {}
    checks = {(r.zone, r.check) for r in results}
    for zone in (A, B):
        for check in ("NAT instance running", "source/dest check off", "public address",
                      "IMDSv2 required", "security groups: only the stack's",
                      "public route → internet gateway", "private route → NAT in its AZ",
                      "network ACL of the public subnet", "network ACL of the private subnet"):
            assert (zone, check) in checks
    for check in ("VPC exists", "internet gateway attached", "no SSH from 0.0.0.0/0",
                  "security group = guide's table"):
        assert ("(stack)", check) in checks
    assert len(results) == 2 * 9 + 4


def test_source_dest_check_on_the_instance(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    nat = outputs["nat_instance_ids"][A]
    ec2.modify_instance_attribute(InstanceId=nat, SourceDestCheck={"Value": True})
    found = failures(verify(session, outputs))
    assert list(found) == [(A, "source/dest check off")]
    assert f"source/dest check is on for instance {nat}" in found[(A, "source/dest check off")]
    assert "Fix: disable it" in found[(A, "source/dest check off")]


def test_source_dest_check_on_a_secondary_interface(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    secondary = ec2.create_network_interface(
        SubnetId=outputs["public_subnet_ids"][B])["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=secondary, DeviceIndex=1,
                                 InstanceId=outputs["nat_instance_ids"][B])
    found = failures(verify(session, outputs))
    # the new interface has the VPC's default group too: the NAT's rules are not the guide's
    assert list(found) == [(B, "source/dest check off"), (B, "security groups: only the stack's")]
    assert f"network interface {secondary}" in found[(B, "source/dest check off")]
    assert outputs["nat_instance_ids"][B] not in found[(B, "source/dest check off")].split(
        "is on for")[1].split(":")[0]


def test_route_to_a_terminated_instance_is_a_blackhole(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    image = any_image(ec2)
    old = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                            SubnetId=outputs["public_subnet_ids"][A])["Instances"][0]
    ec2.replace_route(RouteTableId=outputs["private_route_table_ids"][A],
                      DestinationCidrBlock="0.0.0.0/0",
                      NetworkInterfaceId=old["NetworkInterfaces"][0]["NetworkInterfaceId"])
    ec2.terminate_instances(InstanceIds=[old["InstanceId"]])
    found = failures(verify(session, outputs))
    assert list(found) == [(A, "private route → NAT in its AZ")]
    assert "is a blackhole" in found[(A, "private route → NAT in its AZ")]


def test_terminated_nat_fails_running_and_route(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    ec2.terminate_instances(InstanceIds=[outputs["nat_instance_ids"][A]])
    found = failures(verify(session, outputs))
    assert set(found) == {(A, "NAT instance running"), (A, "private route → NAT in its AZ")}
    assert "is terminated" in found[(A, "NAT instance running")]
    assert "is a blackhole" in found[(A, "private route → NAT in its AZ")]


def test_private_route_to_the_other_azs_nat(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    other = ec2.describe_instances(InstanceIds=[outputs["nat_instance_ids"][B]])[
        "Reservations"][0]["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.replace_route(RouteTableId=outputs["private_route_table_ids"][A],
                      DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=other)
    found = failures(verify(session, outputs))
    assert list(found) == [(A, "private route → NAT in its AZ")]
    assert f"goes to the NAT in {B}, not {A}'s: cross-AZ charges" in \
        found[(A, "private route → NAT in its AZ")]


def test_missing_private_route(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    ec2.delete_route(RouteTableId=outputs["private_route_table_ids"][B],
                     DestinationCidrBlock="0.0.0.0/0")
    found = failures(verify(session, outputs))
    assert list(found) == [(B, "private route → NAT in its AZ")]
    assert "has no 0.0.0.0/0 route" in found[(B, "private route → NAT in its AZ")]


def test_missing_public_route(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    ec2.delete_route(RouteTableId=outputs["public_route_table_id"],
                     DestinationCidrBlock="0.0.0.0/0")
    found = failures(verify(session, outputs))
    assert set(found) == {(A, "public route → internet gateway"),
                          (B, "public route → internet gateway")}


def test_extra_ssh_from_anywhere(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    ec2.authorize_security_group_ingress(GroupId=outputs["security_group_id"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    found = failures(verify(session, outputs))
    assert set(found) == {("(stack)", "no SSH from 0.0.0.0/0"),
                          ("(stack)", "security group = guide's table")}
    assert "allows SSH from 0.0.0.0/0" in found[("(stack)", "no SSH from 0.0.0.0/0")]
    assert found[("(stack)", "security group = guide's table")].startswith(
        "extra rule not in the guide's table: inbound TCP port 22 from 0.0.0.0/0")


def test_extra_ipv6_rule_is_named(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    ec2.authorize_security_group_egress(GroupId=outputs["security_group_id"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    found = failures(verify(session, outputs))
    assert found == {("(stack)", "security group = guide's table"):
                     "extra rule not in the guide's table: outbound TCP port 443 to ::/0. Fix: "
                     f"`pulumi up --refresh` restores {outputs['security_group_id']}'s rules"}


def test_missing_https_rule(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    ec2.revoke_security_group_ingress(GroupId=outputs["security_group_id"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": outputs["private_subnet_cidrs"][A]}]}])
    found = failures(verify(session, outputs))
    assert list(found) == [("(stack)", "security group = guide's table")]
    assert found[("(stack)", "security group = guide's table")].startswith(
        "missing rule: inbound TCP port 443 from 10.0.128.0/20 (HTTPS from private servers)")


def test_imdsv1_allowed(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    ec2.modify_instance_metadata_options(InstanceId=outputs["nat_instance_ids"][B],
                                         HttpTokens="optional")
    found = failures(verify(session, outputs))
    assert list(found) == [(B, "IMDSv2 required")]
    assert "IMDSv1 is allowed" in found[(B, "IMDSv2 required")]


def test_nat_stopped(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    ec2.stop_instances(InstanceIds=[outputs["nat_instance_ids"][A]])
    found = failures(verify(session, outputs))
    assert list(found) == [(A, "NAT instance running")]
    assert "is stopped. Fix: start it" in found[(A, "NAT instance running")]


def test_connectivity_through_ssm(deployed: tuple[Any, Any, Any],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    session, _, outputs = deployed
    calls: list[tuple[str, list[str]]] = []
    by_instance = {i: ip for z, i in outputs["nat_instance_ids"].items()
                   for ip in [outputs["nat_public_ips"][z]]}
    by_instance["i-0test0private0001"] = outputs["nat_public_ips"][A]

    def fake_run_remote(ssm: Any, instance_id: str, commands: list[str],
                        timeout: float = 120) -> tuple[str, str]:
        calls.append((instance_id, commands))
        return "Success", by_instance[instance_id] + "\n"

    monkeypatch.setattr(verify_module, "run_remote", fake_run_remote)
    results = verify(session, outputs, connectivity=True, test_instance="i-0test0private0001")
    assert failures(results) == {}
    assert [c[0] for c in calls] == [outputs["nat_instance_ids"][A],
                                     outputs["nat_instance_ids"][B], "i-0test0private0001"]
    assert all("curl" in c[1][0] for c in calls)

    by_instance["i-0test0private0001"] = "10.0.128.7"
    found = failures(verify(session, outputs, connectivity=True,
                            test_instance="i-0test0private0001"))
    assert list(found) == [("(stack)", "i-0test0private0001 reaches the internet through a NAT")]
    assert "source/dest check must be off" in next(iter(found.values()))


def test_run_remote_speaks_ssm(deployed: tuple[Any, Any, Any]) -> None:
    """The boundary itself, against moto's SSM: the command is sent and its status read."""
    session, _, outputs = deployed
    ssm = session.client("ssm")
    status, _ = run_remote(ssm, outputs["nat_instance_ids"][A], ["echo hi"], timeout=5)
    assert status == "Success"
    sent = ssm.list_commands()["Commands"]
    assert sent[0]["DocumentName"] == "AWS-RunShellScript"
    assert sent[0]["Parameters"]["commands"] == ["echo hi"]


# --- the command line --------------------------------------------------------------------------
def snapshot(ec2: Any) -> str:
    return json.dumps([ec2.describe_instances()["Reservations"],
                       ec2.describe_route_tables()["RouteTables"],
                       ec2.describe_security_group_rules()["SecurityGroupRules"]],
                      default=str, sort_keys=True)


def test_cli_table_and_json(deployed: tuple[Any, Any, Any], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    _, ec2, outputs = deployed
    source = tmp_path / "outputs.json"
    source.write_text(json.dumps(outputs))
    assert main(["verify", str(source), "--region", REGION]) == 0
    table = capsys.readouterr().out
    assert f"{A}  NAT instance running" in table and "all 22 checks passed" in table
    ec2.modify_instance_attribute(InstanceId=outputs["nat_instance_ids"][A],
                                  SourceDestCheck={"Value": True})
    assert main(["verify", str(source), "--region", REGION, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False
    assert [r["check"] for r in report["results"] if r["status"] == "FAIL"] == [
        "source/dest check off"]


def test_cli_reads_standard_input(deployed: tuple[Any, Any, Any],
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(deployed[2])))
    assert main(["verify", "-"]) == 0


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "standard input is not valid JSON (Expecting property name enclosed in "
                  "double quotes at line 1, column 2)"),
    ("[1, 2]", "is JSON but not an object of stack outputs"),
    ('{"bucket_name": "logs", "website_url": "x"}',
     "standard input is not the outputs of a nat-instance-vpc stack:\n"
     "  - availability_zones: missing\n"),
])
def test_cli_bad_outputs(deployed: tuple[Any, Any, Any], monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    import io
    before = snapshot(deployed[1])
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert main(["verify", "-"]) == 2
    assert message in capsys.readouterr().err
    assert snapshot(deployed[1]) == before


def test_cli_unknown_stack(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "pulumi"
    fake.write_text("#!/bin/sh\necho \"error: no stack named 'qa' found\" >&2\nexit 255\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PULUMI", str(fake))
    assert main(["verify", "--stack", "qa"]) == 2
    err = capsys.readouterr().err
    assert "`pulumi stack output --json --stack qa` failed: error: no stack named 'qa' found" \
        in err and "pulumi stack ls" in err


def test_cli_stack_outputs_through_pulumi(deployed: tuple[Any, Any, Any], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "outputs.json").write_text(json.dumps(deployed[2]))
    fake = tmp_path / "pulumi"
    fake.write_text(f"#!/bin/sh\n[ \"$*\" = 'stack output --json --stack dev' ] || exit 9\n"
                    f"cat {tmp_path / 'outputs.json'}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PULUMI", str(fake))
    assert main(["verify", "--stack", "dev"]) == 0


def test_cli_missing_region(deployed: tuple[Any, Any, Any], tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    source = tmp_path / "outputs.json"
    source.write_text(json.dumps(deployed[2]))
    assert main(["verify", str(source)]) == 2
    assert "no AWS region: pass --region" in capsys.readouterr().err


def test_cli_source_and_stack_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "out.json", "--stack", "dev"]) == 2
    assert "not both or neither" in capsys.readouterr().err
    assert main(["verify", "missing.json", "--region", REGION]) == 2
    assert "missing.json: no such file" in capsys.readouterr().err


def test_cli_test_instance_needs_connectivity(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "-", "--test-instance", "i-0123456789abcdef0"]) == 2
    assert capsys.readouterr().err == "error: --test-instance needs --connectivity\n"
