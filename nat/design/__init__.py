"""What the components build, as pure data: the guide's rules table, the alarms and metrics,
the agents' IAM policy and settings, the AMI lookup, the user data."""
