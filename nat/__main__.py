"""`python -m nat` was the operator commands' entry point before the product and the commands
were split: point whoever types it at the new one instead of failing with an import error."""

import sys

print("error: the commands moved: use `python -m natctl plan|verify|bake-ami|status` "
      "(run `python -m natctl --help`)", file=sys.stderr)
sys.exit(2)
