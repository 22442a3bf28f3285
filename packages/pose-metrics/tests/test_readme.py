import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_and_prints_the_documented_table():
    text = README.read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(code) == 1
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code[0], str(README), "exec"), {"__name__": "readme_example"})  # noqa: S102
    printed = output.getvalue().strip()
    assert printed  # the example prints its table
    assert printed in text  # ... exactly as the README shows it
