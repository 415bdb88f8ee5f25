// An awsx.ec2.Vpc with no NAT Gateways, and NAT instances for its private subnets.
// `pulumi package add ../../provider` (or github.com/<owner>/nat-instance-vpc/provider@v0.2.0)
// generates the @nat-instance-vpc/nat SDK this imports.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as awsx from "@pulumi/awsx";
import * as nat from "@nat-instance-vpc/nat";

const vpcCidr = "10.0.0.0/16";

const vpc = new awsx.ec2.Vpc("shared", {
    cidrBlock: vpcCidr,
    availabilityZoneNames: ["us-east-1a", "us-east-1b"],
    natGateways: { strategy: awsx.ec2.NatGatewayStrategy.None },
    subnetSpecs: [
        { type: awsx.ec2.SubnetType.Public, cidrMask: 20 },
        { type: awsx.ec2.SubnetType.Private, cidrMask: 20 },
    ],
});

// awsx lists subnets in the order of availabilityZoneNames; each private subnet has a route
// table of its own, looked up once the VPC (and so the association) exists.
const inZone = (ids: pulumi.Output<string[]>, index: number) => ids.apply(list => list[index]);
const routeTableOf = (subnetId: pulumi.Output<string>) =>
    aws.ec2.getRouteTableOutput({ subnetId }, { dependsOn: [vpc] }).routeTableId;

const natInstances = new nat.NatInstances("nat", {
    vpcId: vpc.vpcId,
    vpcCidrBlocks: [vpcCidr],
    availabilityZones: ["us-east-1a", "us-east-1b"],
    publicSubnetIds: {
        "us-east-1a": inZone(vpc.publicSubnetIds, 0),
        "us-east-1b": inZone(vpc.publicSubnetIds, 1),
    },
    privateRouteTableIds: {
        "us-east-1a": [routeTableOf(inZone(vpc.privateSubnetIds, 0))],
        "us-east-1b": [routeTableOf(inZone(vpc.privateSubnetIds, 1))],
    },
    instance: { instanceType: "t4g.nano", useElasticIp: true },
    access: { enableTestRules: false },
});

export const vpcId = vpc.vpcId;
export const natPublicIps = natInstances.natPublicIps;
