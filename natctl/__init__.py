"""Operator commands: plan (offline), verify, bake-ami and status (against a live account)."""
