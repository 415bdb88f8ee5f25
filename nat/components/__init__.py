"""The Pulumi components: NatInstances (the NAT layer for any VPC), NatZone (one AZ of it) and
NatInstanceVpc (the guide's whole network)."""
