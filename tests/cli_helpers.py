"""Running the CLI in-process, as the tests of every command do."""

from typer.testing import CliRunner

from mobilecost.cli import app

runner = CliRunner()


def run(*args):
    """`mobilecost ARGS...` in-process; the result has exit_code, stdout and stderr."""
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result, code=2):
    """The single 'error: ...' line a bad input must give, with its exit code and no traceback."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]
