"""CI runs what the README says, and that is every test but the gpu ones."""

import re
import shlex
from pathlib import Path

from _pytest.mark.expression import Expression

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("## Set-up: two commands", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_commands():
    install, tests = _readme_commands()
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    # .ci/run installs quietly (-q); otherwise its last two commands are the README's
    assert ci[-2].replace(" -q", "") == install
    assert ci[-1] == tests


def test_the_default_selection_is_everything_but_gpu():
    # (tomllib is Python >= 3.11; the project supports 3.10)
    pytest_section = (ROOT / "pyproject.toml").read_text().split("[tool.pytest.ini_options]", 1)[1]
    found = re.search(r'^addopts\s*=\s*"(.*)"\s*$', pytest_section, re.M)
    addopts = shlex.split(found.group(1)) if found else []
    _, tests = _readme_commands()
    args = addopts + shlex.split(tests)[3:]  # what follows '.venv/bin/python -m pytest'
    exprs = [args[i + 1] for i, a in enumerate(args) if a == "-m"]
    expr = Expression.compile(exprs[-1]) if exprs else None  # the last -m wins

    def selected(*marks):
        return expr is None or expr.evaluate(lambda name: name in marks)

    assert selected()
    assert selected("slow")
    assert not selected("gpu")
    assert not selected("gpu", "slow")
