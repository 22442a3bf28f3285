"""Pipeline tests import the `pipeline` package from tools/ (tools are scripts, not installed)."""

import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))
