"""`python -m nat` was the operator commands' entry point before the product (nat) and the
commands (natctl) were split: say where they went rather than fail with an import error."""

import sys

print("error: nat is the product package; the operator commands are natctl, in the "
      "nat-instance-vpc repository: `python -m natctl plan|verify|bake-ami|status` "
      "(see `python -m natctl --help`)", file=sys.stderr)
sys.exit(2)
