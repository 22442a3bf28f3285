"""Every package README's ```python blocks run as written (they are the runnable examples).

Fragments that need files a user has (official weights, datasets) are fenced ```py instead:
they are shown, not run.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = sorted((ROOT / "packages").glob("*/README.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_every_package_has_a_readme_with_an_example():
    assert len(READMES) == 9
    for readme in READMES:
        assert BLOCK.search(readme.read_text()), f"{readme} has no ```python example"


@pytest.mark.parametrize("readme", READMES, ids=[p.parent.name for p in READMES])
def test_readme_example_runs(readme, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    for i, block in enumerate(BLOCK.findall(readme.read_text())):
        code = compile(block, f"{readme.parent.name}/README.md[block {i}]", "exec")
        exec(code, {"__name__": "__readme__"})  # noqa: S102 - our own documentation
