"""The plugin entry point: Pulumi's Python language host runs `python <this directory>
<engine address> [flags]`; this serves the package's components to the engine."""

import sys
from pathlib import Path

# the product package, nat/, lives at the repository's root, one level up
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nat.provider import serve

if __name__ == "__main__":
    serve(sys.argv[1:])
