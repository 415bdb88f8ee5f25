"""verify and bake-ami subcommands (filled in by their own modules)."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: Any) -> None:
    del commands
    _ = argparse
