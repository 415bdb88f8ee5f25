"""nat-instance-vpc: private subnets reach the internet through EC2 NAT instances."""
