"""The analytic commands, run in-process as a user would run them."""

import csv
import io
import json
import subprocess
import sys

import pytest
from by_hand import v1_macs
from cli_helpers import one_error_line, run


def test_table3_csv_fields_and_values():
    r = run("table3", "--format", "csv")
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    # the paper's layer, 3×3, M = N = 512 at 14×14; α = 0.75 gives 384 channels, ρ = 0.714 10×10
    assert [int(x["macs"]) for x in rows] == [
        3 * 3 * 512 * 512 * 14 * 14, 3 * 3 * 512 * 196 + 512 * 512 * 196,
        3 * 3 * 384 * 196 + 384 * 384 * 196, 3 * 3 * 384 * 100 + 384 * 384 * 100]
    assert {"alpha", "resolution", "macs", "params"} <= set(rows[0])


def test_cost_json_totals_equal_layers():
    r = run("cost", "mobilenet_v1", "--alpha", "0.5", "--res", "160", "--format", "json")
    assert r.exit_code == 0
    rows = json.loads(r.stdout)["layers"]
    # by hand: every map at 160 is 5/7 of its size at 224, so all but the FC layer (512·1000)
    # scale by 25/49: (149,497,088 - 512,000)·25/49 + 512,000; Table 9 prints 76 (truncated)
    at224 = v1_macs("0.5", 224)  # Table 1 at α 0.5: 149,497,088
    assert sum(x["macs"] for x in rows) == (at224 - 512_000) * 25 // 49 + 512_000
    assert all(x["alpha"] == 0.5 and x["resolution"] == 160 for x in rows)


def test_table1_table_and_markdown():
    r = run("table1")
    assert r.exit_code == 0 and "3×3×3×32" in r.stdout and "1024×1000" in r.stdout
    md = run("table1", "--format", "markdown").stdout
    assert md.startswith("### Table 1") and "| Conv dw / s1 |" in md


def test_table2_shows_printed_values():
    out = run("table2").stdout
    assert "94.86%" in out and "1.19%" in out and "1.91%" in out and "typo" in out


def test_spec_command_prints_canonical_form(tmp_path):
    out = run("spec", "mobilenet_v2").stdout
    f = tmp_path / "v2.spec"
    f.write_text(out)
    a = run("cost", "mobilenet_v2", "--format", "json").stdout
    b = run("cost", str(f), "--format", "json").stdout
    assert json.loads(a) == json.loads(b)


def test_every_command_has_help_with_example():
    for cmd in ("table1", "table2", "table3", "cost", "published", "spec"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Example: mobilecost" in r.stdout, cmd


@pytest.mark.parametrize("args,needle", [
    (("cost", "--alpha", "0"), "--alpha must be > 0"),
    (("cost", "--alpha", "-1"), "--alpha must be > 0"),
    (("cost", "--alpha", "abc"), "alpha must be a number"),
    (("cost", "--res", "abc"), "--res 'abc': expected a whole number of pixels or HEIGHTxWIDTH"),
    (("cost", "--res", "0"), "--res must be a positive integer, got 0"),
    (("cost", "mobilenet_v3"), "unknown spec; built-in specs are conv_mobilenet, mnasnet_a1, mnasnet_b1, mobilenet_v1"),
    (("cost", "missing/net.spec"), "missing/net.spec: no such spec file"),
    (("table1", "--format", "xml"), "Invalid value for '--format'"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    assert needle in one_error_line(run(*args))


def test_bad_spec_file_names_line_and_token(tmp_path):
    f = tmp_path / "bad.spec"
    f.write_text("input 224 3!\nconv 3 32 s2\nconv 3 0\n")
    line = one_error_line(run("cost", str(f)))
    assert line == f"error: {f}:3:8: channel count must be a positive integer, optionally " \
                   "followed by '!' (fixed) or '+' (never below) (got '0')"
    f.write_text("input 224 3!\nconv 3 32 s2\nsepconv 3 64\n")
    assert f"{f}:3:1: unknown layer kind" in one_error_line(run("cost", str(f)))


def test_feature_map_to_nothing(tmp_path):
    f = tmp_path / "pool.spec"
    f.write_text("input 224 3!\nconv 3 32 s2\ndw 3 s2\ndw 3 s2\ndw 3 s2\ndw 3 s2\navgpool 7\nfc 10!\n")
    assert run("cost", str(f)).exit_code == 0
    line = one_error_line(run("cost", str(f), "--res", "128"))
    assert "pool.spec:7: avgpool 7×7 s7 on a 4×4 feature map leaves nothing at resolution 128" in line


def test_analytic_commands_do_not_import_torch_or_pandas():
    code = ("import sys; from mobilecost.cli import main; sys.argv=['mobilecost','table3'];\n"
            "try: main()\nexcept SystemExit: pass\n"
            "bad=[m for m in ('torch','pandas','matplotlib') if m in sys.modules]; print('LOADED', bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in out


def test_no_command_shows_the_help_and_no_error_line():
    r = run()
    assert "Commands" in r.output and "sweep" in r.output
    assert "error:" not in r.stderr


def test_a_long_cost_table_shows_its_head_and_the_total(tmp_path):
    """A spec of 1 + 2 × 1,000 + 2 layers: the terminal table shows 200 of its 2,003 rows and
    the total (3·3·3·8·64² + 1,000 × (3·3·8·64² + 8·8·64²) + 8·10 Mult-Adds, by hand); the CSV
    keeps every row."""
    spec = tmp_path / "big.spec"
    spec.write_text("name big\ninput 64 3!\nconv 3 8\nrepeat 1000 {\n  dw 3\n  pw 8\n}\n"
                    "avgpool global\nfc 10!\n")
    total = 3 * 3 * 3 * 8 * 64 ** 2 + 1000 * (3 * 3 * 8 * 64 ** 2 + 8 * 8 * 64 ** 2) + 8 * 10
    r = run("cost", spec)
    assert r.exit_code == 0, r.output
    body = [line for line in r.stdout.splitlines() if line.startswith("│")]
    assert len(body) == 201 and f"{total:,}" in body[-1]
    assert "showing the first 200 of 2,003 rows" in " ".join(r.stdout.split())
    csv_rows = run("cost", spec, "--format", "csv").stdout.splitlines()
    assert len(csv_rows) == 1 + 2003 + 1 and csv_rows[-1].split(",")[5] == str(total)


# ----------------------------------------------------------------------------- --dtype: bytes

def test_cost_dtype_gives_bytes_per_layer_and_in_the_total():
    data = json.loads(run("cost", "--dtype", "int8", "-f", "json").stdout)
    layers, total = data["layers"], data["total"]
    assert total["weight_bytes"] == sum(r["weight_bytes"] for r in layers)
    assert total["activation_bytes"] == sum(r["activation_bytes"] for r in layers)
    # v1's first layer by hand: 864 int8 weights, 32 channels' scale (4 B) and zero point
    # (1 B), 32 int32 biases with a scale and zero point (12 B); maps 224²·3 in, 112²·32 out
    assert layers[0]["weight_bytes"] == 864 + 32 * 5 + 32 * 12
    assert layers[0]["activation_bytes"] == 224 * 224 * 3 + 112 * 112 * 32
    assert layers[0]["intensity_bytes"] == pytest.approx(
        10_838_016 / (864 + 32 * 17 + 224 * 224 * 3 + 112 * 112 * 32))
    fp32 = json.loads(run("cost", "--dtype", "fp32", "-f", "json").stdout)
    assert fp32["layers"][0]["activation_bytes"] == 4 * layers[0]["activation_bytes"]
    assert "weight_bytes" not in json.loads(run("cost", "-f", "json").stdout)["total"]


def test_table1_and_sweep_dtype_agree_with_cost():
    total = json.loads(run("cost", "mobilenet_v2", "--alpha", "0.5", "--res", "160", "--dtype",
                           "int8", "-f", "json").stdout)["total"]["weight_bytes"]
    t1 = json.loads(run("table1", "mobilenet_v2", "--alpha", "0.5", "--res", "160", "--dtype",
                        "int8", "-f", "json").stdout)
    assert t1["total"]["weight_bytes"] == total
    rows = list(csv.DictReader(run("sweep", "mobilenet_v2", "--alpha", "0.5", "--res", "160",
                                   "--dtype", "int8", "-f", "csv").stdout.splitlines()))
    assert int(rows[0]["weight_bytes"]) == total


def test_dtype_notes_say_the_scheme_and_bad_dtypes_are_one_line():
    r = run("cost", "--dtype", "int8")
    assert "per output channel" in " ".join(r.output.split())
    line = one_error_line(run("cost", "--dtype", "int4"))
    assert "int4" in line and "int8" in line
