"""The namespace test bed: the AWS NAT topology out of Linux network namespaces."""
