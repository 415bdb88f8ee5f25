"""`python -m natctl bake-ami`: the guide's "create a NAT AMI", as one command.

Launch a builder from the latest Amazon Linux 2023 with the NAT bootstrap script, wait until
the script reports "NAT ready" on the console, create and tag the image, wait until it is
available, and terminate the builder whatever happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Network
from typing import Any

from nat.design.ami import al2023_ssm_parameter
from nat.design.userdata import compress_user_data, render_user_data
from nat.inputs.instance_types import architecture_by_name, instance_type_problem
from nat.inputs.tuning import TuningOverrides

READY_MARKER = "nat-instance: NAT ready"
FAILED_MARKER = "nat-instance: FAILED"


class BakeError(RuntimeError):
    pass


@dataclass(frozen=True)
class BakePlan:
    region: str
    instance_type: str
    architecture: str
    source_parameter: str
    subnet_id: str
    security_group_id: str | None
    image_name: str
    timeout: float

    def describe(self) -> str:
        return "\n".join([
            f"bake-ami plan (region {self.region}):",
            f"  1. read the latest Amazon Linux 2023 AMI from SSM {self.source_parameter}",
            f"  2. launch a {self.instance_type} ({self.architecture}) builder in "
            f"{self.subnet_id}" + (f" with {self.security_group_id}" if self.security_group_id
                                   else "") + ", IMDSv2 required, with the NAT bootstrap script",
            f"  3. wait (up to {self.timeout:g} s) for '{READY_MARKER}' on its console",
            f"  4. create image {self.image_name!r}, tag it, wait until it is available",
            "  5. terminate the builder (also if any step fails)",
            "  6. print the AMI id for `pulumi config set amiId`",
        ])


def make_plan(region: str, instance_type: str, subnet_id: str, security_group_id: str | None,
              image_name: str | None, timeout: float) -> BakePlan:
    why = instance_type_problem(instance_type)
    architecture = architecture_by_name(instance_type)
    if why is not None or architecture is None:
        raise BakeError(f"--instance-type {instance_type!r}: {why}. Fix: use e.g. t4g.nano "
                        "(arm64) or t3.micro (x86_64)")
    if not subnet_id.startswith("subnet-"):
        raise BakeError(f"--subnet-id {subnet_id!r} is not a subnet id. Fix: use a public "
                        "subnet's id, e.g. from `pulumi stack output public_subnet_ids`")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return BakePlan(region, instance_type, architecture, al2023_ssm_parameter(architecture),
                    subnet_id, security_group_id,
                    image_name or f"nat-instance-al2023-{architecture}-{stamp}", timeout)


def console_output(ec2: Any, instance_id: str) -> str:
    """The instance's console text so far (the boundary tests replace: moto's is fixed text)."""
    output: str = ec2.get_console_output(InstanceId=instance_id, Latest=True).get("Output", "")
    return output


def wait_for_ready(ec2: Any, instance_id: str, timeout: float, poll: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        text = console_output(ec2, instance_id)
        if READY_MARKER in text:
            return
        if FAILED_MARKER in text:
            line = next(x for x in text.splitlines() if FAILED_MARKER in x)
            raise BakeError(f"the bootstrap script failed on {instance_id}: {line.strip()}")
        if time.monotonic() >= deadline:
            raise BakeError(f"no '{READY_MARKER}' on {instance_id}'s console after {timeout:g} s"
                            ". Fix: check that the subnet routes 0.0.0.0/0 to an internet "
                            "gateway and the instance has a public IP")
        time.sleep(poll)


def bake(session: Any, plan: BakePlan, log: Callable[[str], None] = print,
         poll: float = 15) -> str:
    ec2 = session.client("ec2")
    ssm = session.client("ssm")
    source_ami = ssm.get_parameter(Name=plan.source_parameter)["Parameter"]["Value"]
    subnet = ec2.describe_subnets(SubnetIds=[plan.subnet_id])["Subnets"][0]
    vpc = ec2.describe_vpcs(VpcIds=[subnet["VpcId"]])["Vpcs"][0]
    # bytes: boto3 base64-encodes UserData itself
    cidrs = [IPv4Network(a["CidrBlock"]) for a in vpc.get("CidrBlockAssociationSet", [])
             if a.get("CidrBlockState", {}).get("State") == "associated"] or \
        [IPv4Network(vpc["CidrBlock"])]
    user_data = compress_user_data(render_user_data(cidrs, TuningOverrides()))
    log(f"source AMI {source_ami}; launching builder in {plan.subnet_id}")
    network: dict[str, Any] = {"DeviceIndex": 0, "SubnetId": plan.subnet_id,
                               "AssociatePublicIpAddress": True}
    if plan.security_group_id:
        network["Groups"] = [plan.security_group_id]
    reservation = ec2.run_instances(
        ImageId=source_ami, InstanceType=plan.instance_type, MinCount=1, MaxCount=1,
        UserData=user_data, NetworkInterfaces=[network],
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "Name", "Value": f"{plan.image_name}-builder"},
            {"Key": "nat-instance-vpc:role", "Value": "ami-builder"}]}])
    builder = reservation["Instances"][0]["InstanceId"]
    log(f"builder {builder} launched")
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=[builder],
                                                WaiterConfig={"Delay": poll, "MaxAttempts": 40})
        wait_for_ready(ec2, builder, plan.timeout, poll)
        log(f"NAT configured on {builder}; creating image {plan.image_name}")
        image_id: str = ec2.create_image(
            InstanceId=builder, Name=plan.image_name,
            Description="NAT instance AMI: Amazon Linux 2023 + nat-bootstrap.sh "
                        "(nat-instance-vpc)",
            TagSpecifications=[{"ResourceType": "image", "Tags": [
                {"Key": "Name", "Value": plan.image_name},
                {"Key": "nat-instance-vpc:source-ami", "Value": source_ami},
                {"Key": "nat-instance-vpc:architecture", "Value": plan.architecture}]}],
        )["ImageId"]
        ec2.get_waiter("image_available").wait(ImageIds=[image_id],
                                               WaiterConfig={"Delay": poll, "MaxAttempts": 80})
        log(f"image {image_id} available")
        return image_id
    finally:
        ec2.terminate_instances(InstanceIds=[builder])
        log(f"builder {builder} terminated")
