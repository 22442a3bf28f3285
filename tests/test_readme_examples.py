"""Every package README's ```python blocks run as written (they are the runnable examples).

Fragments that need files a user has (official weights, datasets) are fenced ```py instead:
they are shown, not run. A README whose example reads files its package's tests make (a
checkpoint, a picture) is run by those tests instead, in a folder holding them (`RUN_BY_PACKAGE`).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = sorted((ROOT / "packages").glob("*/README.md"))
#: package -> the test that runs its README's example with the files it reads
RUN_BY_PACKAGE = {"prohmr-model": "packages/prohmr-model/tests/test_predictor.py"}
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_every_package_has_a_readme_with_an_example():
    assert len(READMES) == 9
    for readme in READMES:
        assert BLOCK.search(readme.read_text()), f"{readme} has no ```python example"


@pytest.mark.parametrize("readme", READMES, ids=[p.parent.name for p in READMES])
def test_readme_example_runs(readme, tmp_path, monkeypatch):
    if readme.parent.name in RUN_BY_PACKAGE:
        test = ROOT / RUN_BY_PACKAGE[readme.parent.name]
        assert "README" in test.read_text(), f"{test} does not run {readme}"
        pytest.skip(f"run by {RUN_BY_PACKAGE[readme.parent.name]} with its checkpoint and image")
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    for i, block in enumerate(BLOCK.findall(readme.read_text())):
        code = compile(block, f"{readme.parent.name}/README.md[block {i}]", "exec")
        exec(code, {"__name__": "__readme__"})  # noqa: S102 - our own documentation
