"""`verify` with keepConnections (issue 16), against moto: the AZ's Elastic IP where its
traffic is, degraded (not failed) while another AZ's NAT carries it, failed where it is on
none of the stack's interfaces; the standby address each NAT keeps; conntrackd's rules part
of the guide's table."""

from __future__ import annotations

from typing import Any

from natctl.verify import CheckResult
from tests.test_verify_faults import A, B, admit_within_group, deploy_ha, results_ha

SYNC = (3780, 3785)


def deploy_handover(aws: Any) -> dict[str, Any]:
    """The HA deployment with keepConnections: a standby private IP on each interface and
    conntrackd's rules."""
    ec2 = aws.client("ec2")
    outputs = deploy_ha(aws)
    outputs["keep_connections"] = True
    for zone in (A, B):
        ec2.assign_private_ip_addresses(
            NetworkInterfaceId=outputs["nat_network_interface_ids"][zone],
            SecondaryPrivateIpAddressCount=1)
    admit_within_group(ec2, outputs["security_group_id"], "udp", *SYNC)
    return outputs


def allocation_of(aws: Any, public_ip: str) -> str:
    return str(aws.client("ec2").describe_addresses(PublicIps=[public_ip])["Addresses"][0][
        "AllocationId"])


def test_a_stack_in_place_passes_with_its_standby_addresses(aws: Any) -> None:
    outputs = deploy_handover(aws)
    found = results_ha(aws, outputs)
    failed = [r.detail for r in found.values() if not r.passed or r.degraded]
    assert failed == []
    for zone, before in ((A, B), (B, A)):
        assert found[(zone, "AZ's address follows its traffic")].detail.startswith(
            f"{outputs['nat_public_ips'][zone]} on its own NAT")
        assert found[(zone, "standby address")].detail.endswith(
            f"kept for {before}'s Elastic IP")


def test_an_az_whose_address_and_routes_are_on_the_other_nat_is_degraded(aws: Any) -> None:
    outputs = deploy_handover(aws)
    ec2 = aws.client("ec2")
    # what NAT b does when it takes AZ a: a's address to its standby, a's route to it; the
    # new NAT a boots on the spare address
    interface_b, interface_a = (outputs["nat_network_interface_ids"][z] for z in (B, A))
    standby = next(a["PrivateIpAddress"] for a in ec2.describe_network_interfaces(
        NetworkInterfaceIds=[interface_b])["NetworkInterfaces"][0]["PrivateIpAddresses"]
        if not a["Primary"])
    ec2.associate_address(AllocationId=allocation_of(aws, outputs["nat_public_ips"][A]),
                          NetworkInterfaceId=interface_b, PrivateIpAddress=standby,
                          AllowReassociation=True)
    # moto shows an interface's last associated Elastic IP as its instance's public address
    # (AWS: the primary IP's): b's own again, as it is on AWS
    ec2.associate_address(AllocationId=allocation_of(aws, outputs["nat_public_ips"][B]),
                          NetworkInterfaceId=interface_b, AllowReassociation=True)
    spare = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=spare["AllocationId"], NetworkInterfaceId=interface_a)
    ec2.replace_route(RouteTableId=outputs["private_route_table_ids"][A],
                      DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=interface_b)
    found = results_ha(aws, outputs)
    follows = found[(A, "AZ's address follows its traffic")]
    assert follows.status == "DEGRADED" and follows.detail.startswith(
        f"failed over, degraded: {A}'s Elastic IP {outputs['nat_public_ips'][A]} is on the NAT "
        f"in {B}")
    public = found[(A, "public address")]
    assert public.status == "DEGRADED" and f"while the NAT in {B} carries {A}'s Elastic IP" in \
        public.detail
    assert found[(B, "AZ's address follows its traffic")].status == "PASS"
    assert not [r for r in found.values() if not r.passed]


def test_an_address_on_no_nat_and_a_missing_standby_fail_with_their_fix(aws: Any) -> None:
    outputs = deploy_handover(aws)
    ec2 = aws.client("ec2")
    address = ec2.describe_addresses(PublicIps=[outputs["nat_public_ips"][A]])["Addresses"][0]
    ec2.disassociate_address(AssociationId=address["AssociationId"])
    interface = outputs["nat_network_interface_ids"][B]
    standby = [a["PrivateIpAddress"] for a in ec2.describe_network_interfaces(
        NetworkInterfaceIds=[interface])["NetworkInterfaces"][0]["PrivateIpAddresses"]
        if not a["Primary"]]
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=interface, PrivateIpAddresses=standby)
    found: dict[tuple[str, str], CheckResult] = results_ha(aws, outputs)
    follows = found[(A, "AZ's address follows its traffic")]
    assert not follows.passed and "is on none of the stack's NAT interfaces" in follows.detail
    assert "Fix: " in follows.detail and "associates it with" in follows.detail
    missing = found[(B, "standby address")]
    assert not missing.passed and missing.detail.startswith(
        f"{interface} has no standby private address: when the NAT in {B} takes {A}")


def test_conntrackds_rules_are_part_of_the_table(aws: Any) -> None:
    outputs = deploy_handover(aws)
    ec2 = aws.client("ec2")
    ec2.revoke_security_group_ingress(GroupId=outputs["security_group_id"], IpPermissions=[
        {"IpProtocol": "udp", "FromPort": SYNC[0], "ToPort": SYNC[1],
         "UserIdGroupPairs": [{"GroupId": outputs["security_group_id"]}]}])
    found = {r.check: r for r in results_ha(aws, outputs).values()}
    table = found["security group = guide's table"]
    assert not table.passed and "missing rule" in table.detail and "3780" in table.detail
