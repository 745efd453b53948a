"""Hostile input ends at once with one error line: specs that expand without end, nest without
end or are too large, grids too large to enumerate or to hold, numbers past 64 bits."""

import tracemalloc

import pytest

from mobilecost.errors import SpecError
from mobilecost.spec import (MAX_DEPTH, MAX_LAYERS, MAX_SPEC_BYTES, Channels, LayerDef, Repeat,
                             Spec, build, expanded_layers, parse)

from cli_helpers import one_error_line, run


def _write(tmp_path, text, name="x.spec"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- specs

def test_billion_fold_repeat_is_refused_before_expanding(tmp_path):
    text = "input 224 3!\nrepeat 1000000000 {\n  pw 8\n}\n"
    path = _write(tmp_path, text)
    line = one_error_line(run("cost", path))
    assert line == (f"error: {path}:2: 'repeat 1000000000' expands to 1,000,000,000 layers; "
                    f"a spec may build at most 100,000")
    # Refused by counting, not by building: parsing it allocates next to nothing.
    tracemalloc.start()
    with pytest.raises(SpecError):
        parse(text, "x.spec")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000


def test_thirty_nested_doublings_are_refused(tmp_path):
    text = "input 224 3!\n" + "repeat 2 {\n" * 30 + "pw 8\n" + "}\n" * 30
    line = one_error_line(run("cost", _write(tmp_path, text)))
    # 2**30 = 1,073,741,824 layers, counted, never built.
    assert line.endswith("x.spec:2: 'repeat 2' expands to 1,073,741,824 layers; "
                         "a spec may build at most 100,000")
    assert one_error_line(run("sweep", _write(tmp_path, text))).endswith(
        "a spec may build at most 100,000")


def test_nesting_is_bounded(tmp_path):
    deep = "input 224 3!\n" + "repeat 1 {\n" * 1000 + "pw 8\n" + "}\n" * 1000
    line = one_error_line(run("cost", _write(tmp_path, deep)))
    # Line 1 is 'input'; the 65th 'repeat 1 {' is on line 66.
    assert line.endswith(f"x.spec:66:1: blocks nest more than {MAX_DEPTH} deep")
    ok = "input 224 3!\n" + "residual {\n" * MAX_DEPTH + "pw 3!\n" + "}\n" * MAX_DEPTH
    spec = parse(ok)
    assert [x.op for x in build(spec, 1, 8)] == ["pw"] + ["add"] * MAX_DEPTH


def test_layer_limit_is_exact(tmp_path):
    # 50,000 × (dw, pw) = 100,000 layers: at the limit, accepted (parsed, not built here).
    at = "input 224 3!\nrepeat 50000 {\n  dw 3\n  pw 8\n}\n"
    assert expanded_layers(parse(at).body) == MAX_LAYERS == 100_000
    # One more layer beyond the repeat: no single statement is over, the spec as a whole is.
    line = one_error_line(run("cost", _write(tmp_path, at + "fc 10!\n")))
    assert line.endswith("x.spec: the spec expands to 100,001 layers; a spec may build at most "
                         "100,000")
    # An inverted residual counts its expand, depthwise, project and (stride 1) add: 4, 3 with
    # t=1, 3 with stride 2.
    assert expanded_layers(parse("input 224 3!\nrepeat 25000 {\n ir 16\n}\n").body) == 100_000
    assert expanded_layers(parse("input 224 3!\nrepeat 25000 {\n ir 16 t=1\n}\n").body) == 75_000
    assert expanded_layers(parse("input 224 3!\nrepeat 25000 {\n ir 16 s2\n}\n").body) == 75_000


def test_more_layer_lines_than_the_limit_stop_the_parser_there(tmp_path):
    text = "input 224 3!\n" + "pw 8\n" * (MAX_LAYERS + 5000)
    line = one_error_line(run("cost", _write(tmp_path, text)))
    # Line 1 is 'input'; the 100,001st layer is on line 100,002.
    assert line.endswith("x.spec:100002:1: more than 100,000 layers written; a spec may expand "
                         "to at most 100,000")


def test_spec_made_in_code_is_checked_when_built():
    spec = Spec("huge", 224, Channels(3, "fixed"),
                (Repeat(10**9, (LayerDef("pw", channels=Channels(8)),), line=0),))
    with pytest.raises(SpecError, match="'repeat 1000000000' expands to 1,000,000,000 layers"):
        build(spec, 1)


def test_oversized_spec_text_is_refused_before_reading(tmp_path):
    assert MAX_SPEC_BYTES == 8 * 1024 * 1024
    path = tmp_path / "big.spec"
    with path.open("w") as f:  # valid lines, 8 MiB + 5 bytes
        f.write("input 224 3!\n" + "#" * (MAX_SPEC_BYTES - 14) + "\n" + "pw 8\n")
    assert path.stat().st_size == MAX_SPEC_BYTES + 5
    line = one_error_line(run("cost", path))
    assert line == (f"error: {path}: the spec file is 8,388,613 bytes; a spec may be at most "
                    f"8,388,608 bytes (8 MiB)")
    with pytest.raises(SpecError, match="8,388,613 characters long; a spec may be at most 8,388,608"):
        parse(path.read_text())


@pytest.mark.slow
def test_spec_size_benchmark_runs():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_spec_size.py"), "--quick"],
                       capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ratio 4.0× the layers") == 2
