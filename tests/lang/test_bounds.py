"""Hostile input ends at once with one error line: specs that expand without end, nest without
end or are too large, grids too large to enumerate or to hold, numbers past 64 bits."""

import tracemalloc

import pytest
from cli_helpers import one_error_line, run

from mobilecost.errors import SpecError
from mobilecost.lang.parse import parse
from mobilecost.lang.spec import (
    MAX_DEPTH,
    MAX_LAYERS,
    MAX_SPEC_BYTES,
    LayerDef,
    Repeat,
    Spec,
    build,
    expanded_layers,
)
from mobilecost.lang.values import Channels


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
    with pytest.raises(SpecError, match=f"^x.spec:66:1: blocks nest more than {MAX_DEPTH} deep$"):
        parse(deep, "x.spec")
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


def test_more_layer_lines_than_the_limit_stop_the_parser_there(tmp_path, monkeypatch):
    import mobilecost.lang.parse
    import mobilecost.lang.spec

    for module in (mobilecost.lang.spec, mobilecost.lang.parse):  # the rule, at a tenth of the size
        monkeypatch.setattr(module, "MAX_LAYERS", 1000)
    text = "input 224 3!\n" + "pw 8\n" * 1500
    line = one_error_line(run("cost", _write(tmp_path, text)))
    # Line 1 is 'input'; the 1,001st layer is on line 1,002.
    assert line.endswith("x.spec:1002:1: more than 1,000 layers written; a spec may expand "
                         "to at most 1,000")


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

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_spec_size.py"), "--quick"],
                       capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ratio 4.0× the layers") == 2


# --------------------------------------------------------------------------- grids

from fractions import Fraction as F  # noqa: E402

from mobilecost.engine.axes import alpha_axis, grid_from_text, resolution_axis, rho_axis  # noqa: E402
from mobilecost.engine.grid import grid_cost
from mobilecost.engine.limits import (
    BYTES_PER_ALPHA_LAYER,
    BYTES_PER_CONFIG,
    BYTES_PER_RES_LAYER,
    grid_memory,
    grid_size_error,
)
from mobilecost.engine.sweep import sweep
from mobilecost.errors import ConfigError, MobilecostError  # noqa: E402
from mobilecost.lang.load import load_spec


def test_axes_are_counted_without_enumerating():
    # 0.000001..1 step 0.000001: (1 - 10⁻⁶) / 10⁻⁶ + 1 = 1,000,000 values, none made yet.
    a = alpha_axis("0.000001..1:0.000001")
    assert (a.lower, a.upper) == (1_000_000, 1_000_000)
    assert a.items == ((F(1, 10**6), F(1, 10**6), 1_000_000),)
    # Overlapping items: written 4 + 3 = 7, at least 4 distinct (the longest range); 5 in fact.
    b = alpha_axis("0.25..1,0.5..1:0.25,0.6")
    assert (b.lower, b.upper) == (4, 8) and len(b.values()) == 5
    r = resolution_axis("1..300000:1")
    assert (r.lower, r.upper) == (300_000, 300_000)
    # ρ 0.5..1 step 0.25 at base 224: 112, 168, 224 px, 56 px apart: all distinct.
    assert rho_axis("0.5..1").lower_after(224) == 3
    # ρ step 0.001 at base 224 is 0.224 px: every pixel from 0.5·224 = 112 to 224, 113 in all.
    assert rho_axis("0.5..1:0.001").lower_after(224) == 113


def test_three_billion_configurations_are_refused_before_enumerating():
    spec = load_spec("mobilenet_v1")
    asked = []

    def check(n_a, n_r):
        asked.append((n_a, n_r))
        return grid_size_error(n_a, n_r, 5_000_000, 29)

    with pytest.raises(MobilecostError) as info:
        grid_from_text(spec, "0.0001..1:0.0001", "1..300000:1", None, check)
    assert asked == [(10_000, 300_000)]  # asked once, from arithmetic alone
    # 3·10⁹ configurations × 180 bytes + 10⁴ α × 29 layers × 152 + 3·10⁵ resolutions × 29 × 97
    # (the constants measured by benchmarks/bench_sweep_memory.py).
    assert (BYTES_PER_CONFIG, BYTES_PER_ALPHA_LAYER, BYTES_PER_RES_LAYER) == (180, 152, 97)
    need = 3_000_000_000 * 180 + 10_000 * 29 * 152 + 300_000 * 29 * 97
    assert need == grid_memory(10_000, 300_000, 29)
    assert str(info.value) == (
        f"the grid has 3,000,000,000 configurations (10,000 α × 300,000 resolutions), about "
        f"{need / 2**30:,.1f} GiB of memory; the limit is 5,000,000 (raise it with --max-configs, "
        f"or sweep a coarser grid)")


def test_cli_refuses_a_huge_grid_from_its_options():
    line = one_error_line(run("sweep", "--alpha", "0.0001..1:0.0001", "--res", "1..300000:1"))
    assert "3,000,000,000 configurations (10,000 α × 300,000 resolutions)" in line


def test_per_alpha_work_counts_against_the_limit():
    # 10⁶ α × 1 resolution passes a 5,000,000-configuration limit by count, but the engine holds
    # mobilenet_v1's 29 layers' channels at every α: 10⁶·29·152 + 10⁶·(180 + 10) bytes (rows,
    # table output) + 1·29·97 (map sizes), about 4.3 GiB, against 5·10⁶·(180 + 10) bytes, what
    # 5,000,000 configurations take swept and written as CSV, + 256 MiB: about 1.1 GiB.
    need = 10**6 * 29 * 152 + 10**6 * (180 + 10) + 29 * 97
    assert need == grid_memory(10**6, 1, 29, 10)
    assert f"{need / 2**30:.1f}" == "4.3" and f"{(5 * 10**6 * 190 + 2**28) / 2**30:.1f}" == "1.1"
    line = one_error_line(run("sweep", "--alpha", "0.000001..1:0.000001", "--res", "224"))
    assert line == (
        "error: the grid has 1,000,000 configurations, but every layer has its channels at "
        "every α (1,000,000 α × 29 layers): about 4.3 GiB of memory, more than the 1.1 GiB "
        "--max-configs 5,000,000 allows; sweep fewer α or raise --max-configs")
    # The library refuses such a grid the same way: 100,000 α under a 100,000 limit,
    # 10⁵·(29·152 + 180) bytes, 438 MiB, against 10⁵·190 bytes + 256 MiB, 274 MiB.
    assert f"{10**5 * (29 * 152 + 180) / 2**20:.0f}" == "438"
    with pytest.raises(MobilecostError, match=r"\(100,000 α × 29 layers\): about 438 MiB"):
        grid_cost("mobilenet_v1", [F(k, 100_000) for k in range(1, 100_001)], [224],
                  max_configs=100_000)


def test_map_sizes_of_a_long_spec_count_against_the_limit(tmp_path):
    # 20,003 layers at 1,000 resolutions: 20,003·1,000·97 bytes of map sizes, about 1.8 GiB,
    # against 1,000,000 × 190 bytes + 256 MiB, about 437 MiB.
    path = _write(tmp_path, "input 224 3!\nconv 3 32 s2\n" + "dw 3\npw 64\n" * 10_000
                  + "avgpool global\nfc 10!\n")
    assert expanded_layers(load_spec(str(path)).body) == 20_003
    need = 20_003 * 1000 * 97 + 1000 * (180 + 10) + 20_003 * 152
    assert need == grid_memory(1, 1000, 20_003, 10)
    line = one_error_line(run("sweep", path, "--alpha", "1", "--res", "1..1000:1",
                              "--max-configs", "1000000"))
    assert line == (
        f"error: the grid has 1,000 configurations, but every layer has its map size at every "
        f"resolution (20,003 layers × 1,000 resolutions): about {need / 2**30:.1f} GiB of memory, "
        f"more than the {(1_000_000 * 190 + 2**28) / 2**20:,.0f} MiB --max-configs 1,000,000 "
        f"allows; sweep "
        f"fewer resolutions or raise --max-configs")


def test_output_cost_counts_against_the_limit():
    # JSON holds every row as an object: 10⁶ rows × (180 + 4,630) bytes, about 4.5 GiB.
    # A CSV grid of exactly the limit passes: 5,000,000 configurations.
    assert grid_size_error(1000, 5000, 5_000_000, 29, 10) is None
    line = one_error_line(run("sweep", "--alpha", "0.001..1:0.001", "--res", "1..1000:1",
                              "--format", "json"))
    assert line == (
        "error: the grid has 1,000,000 configurations, but the output takes about 4,810 bytes a "
        "row: about 4.5 GiB of memory, more than the 1.1 GiB --max-configs 5,000,000 allows; "
        "sweep fewer configurations or raise --max-configs")


@pytest.mark.slow
def test_memory_estimate_matches_measured_peaks():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_sweep_memory.py"),
                        "--quick"], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr
    ratios = [float(line.split()[-1]) for line in r.stdout.splitlines()
              if line.startswith("mobilenet_")]
    assert len(ratios) == 6
    assert all(0.9 <= x <= 1.3 for x in ratios), r.stdout


@pytest.mark.parametrize("value", ["0", "-3"])
def test_max_configs_must_be_positive(value):
    line = one_error_line(run("sweep", "--max-configs", value))
    assert line == f"error: --max-configs must be a whole number ≥ 1, got {value}"
    with pytest.raises(MobilecostError, match="--max-configs must be a whole number ≥ 1, got 0"):
        sweep("mobilenet_v1", [1], [224], max_configs=0)


def test_rho_below_one_pixel_is_refused():
    # 0.001 × 224 = 0.224 px; the least ρ that rounds to 1 px at 224 is just above 1/448.
    line = one_error_line(run("sweep", "--rho", "0.001"))
    assert line == ("error: rho 0.001 gives 0.224 px at mobilenet_v1's base resolution 224, "
                    "less than 1 px (rho must be more than 1/448)")
    spec = load_spec("mobilenet_v1")
    with pytest.raises(ConfigError, match="less than 1 px"):
        spec.resolution_for(F(1, 448))  # 0.5 px rounds to 0
    assert spec.resolution_for(F(1, 448) + F(1, 10**6)) == 1


def test_channel_count_past_64_bits_in_sweep(tmp_path):
    # The parser refuses a count past MAX_CHANNELS; a Spec made in code may hold any, and the
    # sweep refuses what does not fit in 64 bits while `cost` counts in Python integers.
    path = _write(tmp_path, "input 224 3!\nconv 3 9223372036854775808\navgpool global\nfc 10!\n")
    line = one_error_line(run("sweep", path))
    assert line.endswith("x.spec:2:8: channel count must be at most 1,048,576 "
                         "(got '9223372036854775808')")
    line = one_error_line(run("sweep", "--alpha", "1e20", "--res", "224"))
    assert "do not fit in 64-bit integers" in line
    spec = Spec("big", 224, Channels(3, "fixed"),
                (LayerDef("conv", kernel=3, channels=Channels(2**63)), LayerDef("avgpool", kernel=0),
                 LayerDef("fc", channels=Channels(10, "fixed"))), source="big.spec")
    with pytest.raises(MobilecostError, match="^big.spec: channel counts or kernel sizes at α up "
                                              "to 1 do not fit in 64-bit integers"):
        sweep(spec, [1], [224])
    # 3·3·3·2⁶³ weights on a 224×224 output (stride 1), exact.
    from mobilecost.engine.cost import cost

    first = cost(spec).layers[0]
    assert (first.macs, first.weight_params) == (27 * 2**63 * 224 * 224, 27 * 2**63)


@pytest.mark.parametrize("line, message", [
    ("pw 99999999999999999999", "2:4: channel count must be at most 1,048,576 (got '99999999999999999999')"),
    ("pw 1048577", "2:4: channel count must be at most 1,048,576 (got '1048577')"),
    ("ir 16 h=2000000", "2:7: hidden width must be at most 1,048,576 (got 'h=2000000')"),
    ("conv 257 8", "2:6: a kernel size must be at most 256 (got '257')"),
    ("ir 16 k=999", "2:7: kernel size must be at most 256 (got 'k=999')"),
    ("dw 3 s300", "2:6: stride must be at most 256 (got 's300')"),
    ("avgpool 300", "2:9: pool size must be at most 256 (got '300')"),
])
def test_counts_kernels_and_strides_have_upper_bounds(tmp_path, line, message):
    path = _write(tmp_path, f"input 224 3!\n{line}\n")
    for command in ("cost", "sweep"):
        assert one_error_line(run(command, path)) == f"error: {path}:{message}"


def test_the_bounds_themselves_are_accepted(tmp_path):
    path = _write(tmp_path, "input 512 3!\npw 1048576\nconv 256 8 s256 pad=valid\n")
    with pytest.raises(SpecError, match="input resolution must be at most 1,048,576"):
        parse("input 1048577 3!\npw 8\n", "x.spec")
    assert parse("input 1048576x7 3!\npw 8\n", "x.spec").size == (1048576, 7)
    c = run("cost", path, "--format", "csv")
    assert c.exit_code == 0
    assert f",{1048576 * 3 * 512 * 512}," in c.stdout


HOSTILE = ("sweep", "--alpha", "0.001..1:0.000001", "--res", "1..100000",
           "--max-configs", "1000000000000")


def test_a_huge_grid_is_refused_whatever_max_configs_says():
    # 999,001 α × 3,125 resolutions: counted from the options, refused before any value is
    # made, by the memory limit that --max-configs does not raise (benchmarks/bench_refusal.py
    # times it: well under 2 s and 200 MB).
    from mobilecost.engine.limits import MEMORY_LIMIT

    need = grid_memory(999_001, 3_125, 29, 10)
    assert need > MEMORY_LIMIT == 8 * 2**30
    assert one_error_line(run(*HOSTILE)) == (
        f"error: the grid has 3,121,878,125 configurations (999,001 α × 3,125 resolutions), "
        f"about {need / 2**30:,.1f} GiB of memory, more than the 8.0 GiB any sweep may take "
        f"whatever --max-configs says; sweep a coarser grid")
    with pytest.raises(MobilecostError, match="any sweep may take whatever --max-configs says"):
        grid_cost("mobilenet_v1", [F(k, 10**5) for k in range(1, 10**5 + 1)], range(1, 2001),
                  max_configs=10**12)


def test_resolution_past_the_sweep_limit():
    line = one_error_line(run("sweep", "--res", str(2**63)))
    assert line == (f"error: resolution {2**63} is more than a sweep takes (1,048,576 px a side; "
                    f"`cost` takes any)")
    with pytest.raises(ConfigError, match="more than a sweep takes"):
        grid_cost("mobilenet_v1", [1], [2**20 + 1])
    assert grid_cost("conv_mobilenet", [F(1, 32)], [2**20]).macs.shape == (1, 1)


def test_rho_ranges_map_to_pixels_as_enumerating_would():
    import random

    spec = load_spec("mobilenet_v1")
    rng = random.Random(448)
    for _ in range(200):
        lo, step = F(rng.randint(3, 400), 1000), F(rng.randint(1, 60), 10_000)
        text = f"{lo}..{lo + F(rng.randint(0, 500), 1000)}:{step}"
        axis = rho_axis(text)
        enumerated = list(dict.fromkeys(spec.resolution_for(v) for v in axis.values()))
        assert axis.pixels(spec.resolution_for, 224) == enumerated, text
        assert axis.lower_after(224) <= len(enumerated), text


def test_dense_rho_range_is_not_enumerated(monkeypatch):
    from mobilecost.engine.axes import GridAxis

    spec = load_spec("mobilenet_v1")
    # 0.01..1 step 10⁻⁷: 9,900,001 values of ρ, 2.24·10⁻⁵ px apart: every pixel from
    # round(0.01·224) = 2 to 224, made without enumerating a single ρ.
    monkeypatch.setattr(GridAxis, "values", lambda self: pytest.fail("enumerated ρ"))
    axis = rho_axis("0.01..1:0.0000001")
    assert axis.upper == 9_900_001
    assert axis.pixels(spec.resolution_for, 224) == list(range(2, 225))
    assert axis.lower_after(224) == 223


def test_numbers_past_what_python_reads_are_one_error_line(tmp_path):
    # int() refuses text of more than 4,300 digits with a ValueError of its own.
    big = "1" * 5000
    line = one_error_line(run("cost", _write(tmp_path, f"input 224 3!\npw {big}\n")))
    assert line.endswith("x.spec:2:4: channel count has more than 100 digits")
    line = one_error_line(run("cost", _write(tmp_path, f"input 224 3!\nconv {big} 8\n")))
    assert line.endswith("x.spec:2:6: a kernel size has more than 100 digits")
    line = one_error_line(run("sweep", "--res", big))
    assert line == "error: --res: 111111111111… has 5,000 digits, too many for a resolution"
    line = one_error_line(run("sweep", "--alpha", big))
    assert "is not a number" in line


def test_report_files_count_as_json_output(tmp_path):
    # --output-dir writes every row as JSON too (measured 4,722 bytes a row at 200,000 and 400,000
    # configurations): 10⁶ rows × (180 + 4,630) bytes, about 4.5 GiB, is refused; the same grid
    # to the terminal (180 + 10 bytes a row, about 180 MiB) is not refused for its size.
    args = ("sweep", "--alpha", "0.001..1:0.001", "--res", "1..1000:1")
    line = one_error_line(run(*args, "--output-dir", tmp_path / "out"))
    assert "the output takes about 4,810 bytes a row: about 4.5 GiB" in line
    assert not (tmp_path / "out").exists()
    line = one_error_line(run(*args, "--output", tmp_path / "rows.json"))  # one JSON file
    assert "the output takes about 4,810 bytes a row: about 4.5 GiB" in line
    assert not (tmp_path / "rows.json").exists()
    assert grid_size_error(1000, 1000, 5_000_000, 29, 10) is None


def test_deep_spec_made_in_code_is_refused_with_its_source():
    body = (LayerDef("pw", channels=Channels(8)),)
    for _ in range(200):
        body = (Repeat(1, body),)
    spec = Spec("deep", 224, Channels(3, "fixed"), body, source="made.spec")
    with pytest.raises(SpecError, match=f"^made.spec: blocks nest more than {MAX_DEPTH} deep$"):
        build(spec, 1)
