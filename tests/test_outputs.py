"""The stack outputs contract (nat/outputs.py): what the program writes, the commands read."""

from __future__ import annotations

import json
from dataclasses import fields
from ipaddress import IPv4Network
from typing import Any

import pytest

from nat.outputs import OUTPUT_NAMES, MonitoringOutputs, StackOutputs
from natctl.outputs import stack_outputs


@pytest.mark.parametrize("keys", [
    {}, {"highAvailability": "true", "sshCidr": "198.51.100.0/24"},
    {"azCount": "3", "singleNat": "true", "monitoring": "false"},
], ids=["plain", "ha", "single-nat-unmonitored"])
def test_the_commands_read_back_every_output_the_program_writes(run: Any,
                                                                 keys: dict[str, str]) -> None:
    exports = json.loads(json.dumps(run(**keys).exports))  # as `pulumi stack output --json`
    assert set(exports) == set(OUTPUT_NAMES)
    read = stack_outputs(exports, "test")
    assert read.to_document() == exports  # nothing written is lost or changed on the way back
    assert isinstance(read.monitoring, MonitoringOutputs)


def test_the_document_is_plain_json() -> None:
    outputs = StackOutputs(
        vpc_id="vpc-1", availability_zones=("a",), internet_gateway_id="igw-1",
        public_subnet_ids={"a": "subnet-1"}, private_subnet_ids={"a": "subnet-2"},
        private_subnet_cidrs={"a": IPv4Network("10.0.128.0/20")},
        private_route_table_ids={"a": "rtb-1"}, security_group_id="sg-1",
        ssh_cidr=IPv4Network("198.51.100.0/24"), test_rules_enabled=False, elastic_ips=True,
        high_availability=False, nat_zone_for_private_subnet={"a": "a"},
        nat_public_ips={"a": "203.0.113.1"},
        monitoring=MonitoringOutputs("NatInstance", "p/s/c", False, "t4g.nano"))
    document = outputs.to_document()
    assert json.loads(json.dumps(document)) == document
    assert document["private_subnet_cidrs"] == {"a": "10.0.128.0/20"}
    assert document["ssh_cidr"] == "198.51.100.0/24"
    assert document["availability_zones"] == ["a"]
    assert document["monitoring"]["instance_type"] == "t4g.nano"
    assert list(document) == [f.name for f in fields(StackOutputs)]
