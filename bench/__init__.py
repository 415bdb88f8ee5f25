"""Data-path benchmark (see bench/__main__.py)."""
