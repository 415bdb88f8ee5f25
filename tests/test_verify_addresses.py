"""`verify` with several public addresses per NAT, on moto: every Elastic IP on the NAT's
interface, and the NAT told to translate to all of them."""

from __future__ import annotations

import json
from typing import Any

from natctl.outputs import stack_outputs
from natctl.verify import verify
from tests.moto_deployment import deploy

A = "us-east-1a"


def checks(aws: Any, outputs: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    results = verify(aws, stack_outputs(json.loads(json.dumps(outputs)), "test"))
    return {r.check: (r.passed, r.detail) for r in results if r.zone == A}


def test_every_address_on_the_interface_and_translated_passes(aws: Any) -> None:
    outputs = deploy(aws.client("ec2"), az_count=1, addresses=3)
    results = verify(aws, stack_outputs(json.loads(json.dumps(outputs)), "test"))
    assert [(r.check, r.detail) for r in results if not r.passed] == []
    found = checks(aws, outputs)
    assert found["public addresses associated"][0], found
    assert found["NAT translates to every address"] == (
        True, "the NAT spreads connections over 3 addresses")


def test_a_missing_association_is_found(aws: Any) -> None:
    ec2 = aws.client("ec2")
    outputs = deploy(ec2, az_count=1, addresses=3)
    third = outputs["nat_public_ip_lists"][A][2]
    [address] = ec2.describe_addresses(PublicIps=[third])["Addresses"]
    ec2.disassociate_address(AssociationId=address["AssociationId"])
    passed, detail = checks(aws, outputs)["public addresses associated"]
    assert not passed
    assert detail.startswith(f"{third} is not associated, not on the NAT's interface eni-")
    assert "Fix: `pulumi up --refresh`" in detail


def test_an_address_the_nat_does_not_translate_to_is_found(aws: Any) -> None:
    outputs = deploy(aws.client("ec2"), az_count=1, addresses=3, told=2)
    passed, detail = checks(aws, outputs)["NAT translates to every address"]
    assert not passed
    assert detail.startswith("the NAT translates to 2 address(es), the stack has 3")
