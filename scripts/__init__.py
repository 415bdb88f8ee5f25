"""Maintenance scripts: make generate, make mutation, the Debian packages the tests need."""
