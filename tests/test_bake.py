"""`bake-ami` against moto: an image is made and tagged, the builder never outlives the command."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from nat.design.userdata import decode_user_data
from natctl import bake as bake_module
from natctl.__main__ import main
from natctl.bake import READY_MARKER, BakeError, bake, make_plan
from tests.moto_deployment import REGION

console_reads: list[str] = []


@pytest.fixture
def subnet(aws: Any) -> str:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return str(ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20")["Subnet"]["SubnetId"])


def console_says(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """moto's console output is fixed text: replace the boundary, and record that it ran."""
    console_reads.clear()

    def fake(ec2: Any, instance_id: str) -> str:
        console_reads.append(instance_id)
        return f"cloud-init ...\n{text}\n"

    monkeypatch.setattr(bake_module, "console_output", fake)


def instances(aws: Any) -> list[dict[str, Any]]:
    reservations = aws.client("ec2").describe_instances()["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def test_bake_creates_a_tagged_image_and_terminates_the_builder(
        aws: Any, subnet: str, monkeypatch: pytest.MonkeyPatch) -> None:
    console_says(monkeypatch, f"{READY_MARKER} on ens5")
    plan = make_plan(REGION, "t4g.nano", subnet, None, "nat-test-image", 60)
    image_id = bake(aws, plan, log=lambda _: None, poll=0)
    ec2 = aws.client("ec2")
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["Name"] == "nat-test-image" and image["State"] == "available"
    tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    assert tags["nat-instance-vpc:architecture"] == "arm64"
    assert tags["nat-instance-vpc:source-ami"].startswith("ami-")
    [builder] = instances(aws)
    assert builder["State"]["Name"] == "terminated"
    assert console_reads == [builder["InstanceId"]]
    assert builder["MetadataOptions"]["HttpTokens"] == "required"
    user_data = ec2.describe_instance_attribute(InstanceId=builder["InstanceId"],
                                                Attribute="userData")["UserData"]["Value"]
    assert "nat-bootstrap.sh install" in decode_user_data(user_data)
    assert 'NAT_VPC_CIDRS="10.0.0.0/16"' in decode_user_data(user_data)


def test_builder_is_terminated_when_image_creation_fails(
        aws: Any, subnet: str, monkeypatch: pytest.MonkeyPatch) -> None:
    console_says(monkeypatch, READY_MARKER)

    class FailingImages:
        """The EC2 client, except that create_image fails as AWS can (quota, permissions)."""

        def __init__(self, client: Any) -> None:
            self.client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

        def create_image(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "ResourceLimitExceeded",
                                         "Message": "AMI quota reached"}}, "CreateImage")

    class Session:
        region_name = REGION

        def client(self, name: str) -> Any:
            client = aws.client(name)
            return FailingImages(client) if name == "ec2" else client

    plan = make_plan(REGION, "t4g.nano", subnet, None, "nat-fail", 60)
    with pytest.raises(ClientError, match="AMI quota reached"):
        bake(Session(), plan, log=lambda _: None, poll=0)
    [builder] = instances(aws)
    assert builder["State"]["Name"] == "terminated"
    assert not aws.client("ec2").describe_images(Owners=["self"])["Images"]


def test_builder_is_terminated_when_the_script_fails(
        aws: Any, subnet: str, monkeypatch: pytest.MonkeyPatch) -> None:
    console_says(monkeypatch, "nat-instance: FAILED: no IPv4 default route after 60s")
    plan = make_plan(REGION, "t3.micro", subnet, None, "nat-x86", 60)
    with pytest.raises(BakeError, match=r"the bootstrap script failed on i-.*no IPv4 default"):
        bake(aws, plan, log=lambda _: None, poll=0)
    assert [i["State"]["Name"] for i in instances(aws)] == ["terminated"]


def test_builder_is_terminated_on_timeout(aws: Any, subnet: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    console_says(monkeypatch, "still booting")
    plan = make_plan(REGION, "t4g.nano", subnet, None, "nat-slow", 0)
    with pytest.raises(BakeError, match=r"no 'nat-instance: NAT ready' .* after 0 s"):
        bake(aws, plan, log=lambda _: None, poll=0)
    assert [i["State"]["Name"] for i in instances(aws)] == ["terminated"]


def test_cli_prints_the_config_command(aws: Any, subnet: str, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    console_says(monkeypatch, READY_MARKER)
    monkeypatch.setattr("natctl.bake.time.sleep", lambda _: None)
    assert main(["bake-ami", "--subnet-id", subnet, "--region", REGION]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("pulumi config set amiId ami-")
    image_id = out.split()[-1]
    assert aws.client("ec2").describe_images(ImageIds=[image_id])["Images"][0]["Name"].startswith(
        "nat-instance-al2023-arm64-")


def test_dry_run_changes_nothing(aws: Any, subnet: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bake-ami", "--subnet-id", subnet, "--instance-type", "c7gn.medium",
                 "--dry-run", "--region", REGION]) == 0
    out = capsys.readouterr().out
    assert "al2023-ami-kernel-default-arm64" in out and "terminate the builder" in out
    assert instances(aws) == []


def test_bad_instance_type_and_subnet(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bake-ami", "--subnet-id", "subnet-0abc", "--instance-type", "x1.tiny",
                 "--region", REGION]) == 2
    assert "--instance-type 'x1.tiny': not an EC2 instance type AWS has announced" in \
        capsys.readouterr().err
    assert main(["bake-ami", "--subnet-id", "vpc-0abc", "--region", REGION]) == 2
    assert "is not a subnet id" in capsys.readouterr().err
    assert instances(aws) == []
