"""Pulumi entry point: read this stack's config, build NatInstanceVpc, export its outputs."""

from nat.program import main

main()
