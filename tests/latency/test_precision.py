"""Targets know their precision: where a calibration set's dtype is read from (a CSV's dtype
column, export's manifest rows, a benchmark log's model name or op profile), two precisions
refused, a target file's dtype saved and read (old files as fp32), other precisions refused by
predict, pick and sweep --target, and the latency_dtype they report.

The int8 latencies below are the TFLite hosted-models page's quantized MobileNet v1 figures
(Pixel 3, 4 threads; benchmarks/data/published_phone_latency_int8.csv); the logs are the sample
logs of tests/data/devicelogs renamed as quantized models.
"""

import csv
import io
import json
import shutil
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from cli_helpers import one_error_line, run

from mobilecost.errors import MobilecostError
from mobilecost.latency import targets as tg
from mobilecost.latency.logs import points_from_logs, read_inputs, read_log
from mobilecost.latency.manifest import ManifestRow, write_manifest
from mobilecost.latency.measurements import read_measurements
from mobilecost.latency.precision import log_dtype, split_name

DATA = Path(__file__).resolve().parents[1] / "data" / "devicelogs"
TFLITE, ORT = DATA / "tflite", DATA / "ort"

# mobilenet_v1 α/resolution -> ms: quantized, Pixel 3, CPU 4 threads (hosted_models.md)
INT8_MS = {("1", 224): 13, ("1", 192): 9.9, ("1", 160): 7.3, ("1", 128): 4.8,
           ("0.75", 224): 8.5, ("0.5", 224): 4.7, ("0.25", 224): 2.3, ("0.25", 128): 0.8}


def _csv(path, dtype_cells=None, header_dtype=True):
    """A measurements CSV of INT8_MS; dtype_cells: the dtype cell of each row (default int8)."""
    rows = ["spec,alpha,resolution,batch,latency_ms" + (",dtype" if header_dtype else "")]
    for i, ((a, r), ms) in enumerate(INT8_MS.items()):
        cell = (dtype_cells or {}).get(i, "int8")
        rows.append(f"mobilenet_v1,{a},{r},1,{ms}" + (f",{cell}" if header_dtype else ""))
    path.write_text("\n".join(rows) + "\n")
    return path


def _target(tmp_path, name="p8", **kw):
    result = run("calibrate", _csv(tmp_path / f"{name}.csv", **kw), "--target", name,
                 "--targets-dir", tmp_path / "t", "-f", "csv")
    assert result.exit_code == 0, result.output
    return tmp_path / "t"


# ----------------------------------------------------------------------------- sources

def test_a_csv_dtype_column_gives_the_precision(tmp_path):
    assert read_measurements(_csv(tmp_path / "a.csv")).dtype == "int8"
    # any of a dtype's names: qint8 and torch.int8 are int8
    m = read_measurements(_csv(tmp_path / "b.csv", {0: "qint8", 3: "torch.int8"}))
    assert m.dtype == "int8"
    # no dtype column, or empty cells: fp32 (what sweep --measure times by default)
    assert read_measurements(_csv(tmp_path / "c.csv", header_dtype=False)).dtype == "float32"
    assert read_measurements(_csv(tmp_path / "d.csv", {i: "" for i in range(8)})).dtype == "float32"


@pytest.mark.parametrize("name, stem, dtype, word", [
    ("mobilenet_v1_1.0_224_quant", "mobilenet_v1_1.0_224", "int8", "_quant"),   # TF's published
    ("mobilenet_v1_0.75_224_int8", "mobilenet_v1_0.75_224", "int8", "_int8"),   # export --quantize
    ("mobilenet_v1_0.75_224_b4_int8", "mobilenet_v1_0.75_224_b4", "int8", "_int8"),
    ("mobilenet_v2_1.0_224_uint8", "mobilenet_v2_1.0_224", "int8", "_uint8"),
    ("mobilenet_v1_1.0_224_full_integer_quant", "mobilenet_v1_1.0_224", "int8",
     "_full_integer_quant"),
    ("mobilenet_v1_1.0_224_int8_quant", "mobilenet_v1_1.0_224", "int8", "_int8_quant"),
    ("mobilenet_v1_1.0_224_QUANT", "mobilenet_v1_1.0_224", "int8", "_QUANT"),
    ("mobilenet_v1_1.0_224_float16", "mobilenet_v1_1.0_224", "float16", "_float16"),
    ("mobilenet_v1_1.0_224_fp32", "mobilenet_v1_1.0_224", "float32", "_fp32"),
    ("mobilenet_v1_1.0_224", "mobilenet_v1_1.0_224", None, ""),
    ("quantum_net_1.0_224", "quantum_net_1.0_224", None, ""),   # a word inside is no marker
    ("mobilenet_v1_1.0_224quant", "mobilenet_v1_1.0_224quant", None, ""),
])
def test_a_model_name_says_its_precision(name, stem, dtype, word):
    assert split_name(name) == (stem, dtype, word)


def _quant_logs(tmp_path, src=TFLITE, suffix="_quant"):
    """The sample logs as logs of quantized models: file and Graph names with `suffix`."""
    out = tmp_path / f"logs{suffix}"
    out.mkdir()
    for f in sorted(src.iterdir()):
        if f.suffix in (".log", ".txt"):
            text = f.read_text().replace(".tflite]", f"{suffix}.tflite]")
            (out / f"{f.stem}{suffix}{f.suffix}").write_text(text)
    return out


def test_logs_of_quantized_models_calibrate_an_int8_target(tmp_path):
    logs = _quant_logs(tmp_path)
    log = read_log(logs / "mobilenet_v1_0.5_128_quant.log")
    assert (log.model, log.dtype) == ("mobilenet_v1_0.5_128_quant", "int8")
    points, _, _ = points_from_logs([logs])
    # the precision word is no part of the configuration: α 0.5 at 128, the log's median 3.38 ms
    got = {(p.config.alpha, p.config.resolution): p.latency_ms for p in points}
    assert got[(Fraction(1, 2), 128)] == pytest.approx(3.38) and len(got) == 6
    data, _, notes = read_inputs([logs])
    assert data.dtype == "int8" and "precision int8 (by the file names)" in notes[0]
    result = run("calibrate", logs, "--target", "phone8", "--targets-dir", tmp_path / "t",
                 "-f", "csv")
    assert result.exit_code == 0, result.output
    assert tg.load("phone8", tmp_path / "t").dtype == "int8"
    # ONNX Runtime's logs are named after their model: mobilenet_v1_1_224_int8.txt
    data, _, _ = read_inputs([_quant_logs(tmp_path, ORT, "_int8")])
    assert data.dtype == "int8" and len(data.points) == 6
    # the plain logs stay fp32
    assert read_inputs([TFLITE])[0].dtype == "float32"


# benchmark_model --enable_op_profiling=true: its per-operator table (tab-separated columns;
# the figures are illustrative). A full-integer model with a float input starts with QUANTIZE.
PROFILE = "\n".join([
    "Operator-wise Profiling Info for Regular Benchmark Runs:",
    "============================== Run Order ==============================",
    "\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]"
    "\t[times called]\t[Name]",
    "\t{op}\t    0.030\t    0.028\t  0.892%\t  0.892%\t     0.000\t        1\t[input_int8]",
    "\t                 CONV_2D\t    0.405\t    0.384\t 12.200%\t 13.092%\t     0.000\t        1"
    "\t[conv1]", ""])


def test_a_log_whose_op_profile_runs_quantize_is_int8(tmp_path):
    text = (TFLITE / "mobilenet_v1_0.5_128.log").read_text()
    assert log_dtype(text) is None
    assert log_dtype(text + PROFILE.format(op="                QUANTIZE")) == "int8"
    # DEQUANTIZE alone is a float16 model's weights made float: no precision stated
    assert log_dtype(text + PROFILE.format(op="              DEQUANTIZE")) is None
    (tmp_path / "mobilenet_v1_0.5_128.log").write_text(text + PROFILE.format(op="QUANTIZE"))
    log = read_log(tmp_path / "mobilenet_v1_0.5_128.log")
    assert (log.dtype, log.dtype_from) == ("int8", "op profile: QUANTIZE")
    # a name that says fp32 against a profile that quantizes: refused
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "m.log").write_text(
        text.replace("_0.5_128.tflite]", "_0.5_128_fp32.tflite]") + PROFILE.format(op="QUANTIZE"))
    with pytest.raises(MobilecostError, match=r"named fp32 \('_fp32'\) but the log's op profile"):
        read_log(tmp_path / "x" / "m.log")


def test_manifest_rows_give_the_precision(tmp_path):
    from mobilecost.lang.identity import Network
    from mobilecost.lang.load import load_spec

    net = Network.of(load_spec("mobilenet_v1")).key
    configs = [("1", 224), ("1", 160), ("0.75", 192), ("0.5", 224), ("0.5", 128), ("0.25", 224)]
    rows = [ManifestRow("mobilenet_v1", net, Fraction(a), r, 1, "onnx", 18,
                        f"mobilenet_v1_{a}_{r}_int8.onnx", 0, 0, "0" * 64, 0.0, "2.13.0", "int8",
                        "onnxruntime-qdq", "synthetic:0") for a, r in configs]
    write_manifest(tmp_path, rows)
    logs = _quant_logs(tmp_path, ORT, "_int8")
    data, _, notes = read_inputs([logs], tmp_path / "manifest.csv")
    assert data.dtype == "int8" and "by the manifest" in notes[0]
    # the same files listed as fp32 while the logs' names say int8: refused
    write_manifest(tmp_path, [replace(r, dtype="fp32", quantizer="", calibration="") for r in rows])
    line = one_error_line(run("calibrate", logs, "--manifest", tmp_path / "manifest.csv",
                              "--target", "x", "--targets-dir", tmp_path / "t"))
    assert "the model is int8 but" in line and "is fp32" in line


# ----------------------------------------------------------------------------- mixed

def test_two_precisions_in_one_calibration_set_are_one_line(tmp_path):
    path = _csv(tmp_path / "m.csv", {4: "fp32"})
    line = one_error_line(run("calibrate", path, "--target", "x", "--targets-dir", tmp_path / "t"))
    # the first line of each: line 2 is int8, line 6 (the fifth row) fp32
    assert f"{path}:2 is int8, {path}:6 is fp32" in line
    assert not (tmp_path / "t").exists()
    logs = tmp_path / "mixed"
    shutil.copytree(TFLITE, logs)
    q = _quant_logs(tmp_path)
    shutil.copy(q / "mobilenet_v1_0.5_128_quant.log", logs)
    line = one_error_line(run("calibrate", logs, "--target", "x", "--targets-dir", tmp_path / "t"))
    assert "logs of two precisions" in line
    assert "mobilenet_v1_0.25_224.log (no precision stated: fp32) is fp32" in line
    assert "mobilenet_v1_0.5_128_quant.log (name '_quant') is int8" in line


# ----------------------------------------------------------------------------- target files

def test_a_target_file_keeps_its_precision_and_old_ones_read_as_fp32(tmp_path):
    folder = _target(tmp_path)
    path = folder / "p8.json"
    data = json.loads(path.read_text())
    assert data["dtype"] == "int8" and data["model"]["dtype"] == "int8"
    assert tg.load("p8", folder).dtype == "int8"
    # a file written before targets had a dtype of their own: the model's
    del data["dtype"]
    path.write_text(json.dumps(data))
    assert tg.load("p8", folder).dtype == "int8"
    # one with neither: fp32
    del data["model"]["dtype"]
    path.write_text(json.dumps(data))
    assert tg.load("p8", folder).dtype == "float32"
    # the two disagreeing: not a valid target
    data["dtype"], data["model"]["dtype"] = "int8", "float32"
    path.write_text(json.dumps(data))
    with pytest.raises(MobilecostError, match="dtype int8 but model.dtype float32"):
        tg.load("p8", folder)
    # a float CSV's target is fp32
    assert tg.load("f", _target(tmp_path, "f", header_dtype=False)).dtype == "float32"


# ----------------------------------------------------------------------------- predicting

def test_another_precision_is_refused_in_one_line(tmp_path):
    folder = _target(tmp_path)
    on = ("--target", "p8", "--targets-dir", folder)
    line = one_error_line(run("predict", *on, "--dtype", "fp32"))
    assert line == ("error: target p8 was calibrated at int8; it cannot predict fp32 latencies "
                    "(--dtype fp32): calibrate a target on fp32 measurements, or leave out --dtype")
    line = one_error_line(run("pick", "--target", "p8", "--targets-dir", folder, "--max-latency",
                              "5ms", "--dtype", "fp16"))
    assert "calibrated at int8; it cannot predict fp16" in line
    line = one_error_line(run("sweep", *on, "--dtype", "fp32"))
    assert "calibrated at int8; it cannot predict fp32" in line
    line = one_error_line(run("pick", "--max-macs", "300M", "--dtype", "int8"))
    assert "--dtype goes with --target" in line
    # the target's own precision is accepted
    assert run("predict", *on, "--dtype", "int8").exit_code == 0


def test_sweep_measure_at_another_precision_is_refused(tmp_path):
    pytest.importorskip("torch")
    folder = _target(tmp_path)
    line = one_error_line(run("sweep", "--target", "p8", "--targets-dir", folder, "--measure",
                              "-a", "1", "-r", "224"))
    assert "it cannot predict fp32 latencies (--measure times fp32)" in line


def _csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_latencies_carry_their_precision(tmp_path):
    folder = _target(tmp_path)
    r = run("predict", "--target", "p8", "--targets-dir", folder, "-a", "1,0.5", "-r", "224",
            "-f", "csv")
    assert r.exit_code == 0, r.output
    rows = _csv_rows(r.stdout)
    assert [x["latency_dtype"] for x in rows] == ["int8", "int8"]
    assert float(rows[0]["measured_latency_ms"]) == 13  # the published 1.0-224 figure
    assert "latencies at int8 (latency_dtype): target p8 was calibrated on int8" in r.stderr
    r = run("predict", "--target", "p8", "--targets-dir", folder, "-a", "1", "-f", "json")
    assert json.loads(r.stdout)[0]["latency_dtype"] == "int8"  # JSON: the rows; notes on stderr
    r = run("sweep", "--target", "p8", "--targets-dir", folder, "-a", "1,0.5", "-r", "224,160",
            "-f", "csv")
    assert r.exit_code == 0, r.output
    assert {x["latency_dtype"] for x in _csv_rows(r.stdout)} == {"int8"}
    assert "note: latencies at int8 (latency_dtype)" in r.stderr
    r = run("pick", "--target", "p8", "--targets-dir", folder, "--max-latency", "5ms", "-a",
            "1,0.75,0.5,0.25", "-r", "224,160,128", "-f", "json")
    assert r.exit_code == 0, r.output
    assert {x["latency_dtype"] for x in json.loads(r.stdout)} == {"int8"}
    assert "latencies at int8 (latency_dtype)" in " ".join(r.stderr.split())
    # the table says it in a note
    r = run("predict", "--target", "p8", "--targets-dir", folder)
    assert "latencies at int8 (latency_dtype)" in " ".join(r.stdout.split())
    # and an fp32 target says fp32
    f = _target(tmp_path, "f", header_dtype=False)
    r = run("predict", "--target", "f", "--targets-dir", f, "-f", "csv")
    assert _csv_rows(r.stdout)[0]["latency_dtype"] == "fp32"


def test_an_int8_and_an_fp32_log_of_one_configuration_are_two_precisions(tmp_path):
    # the int8 model runs in 0.54 of the float one's time (1.0-224 on the Pixel 3 at 4 threads,
    # 13 / 24.0 ms): as timings of one configuration they would disagree; they are refused as
    # two precisions
    logs = tmp_path / "two"
    logs.mkdir()
    text = (ORT / "mobilenet_v1_1_224.txt").read_text()
    (logs / "mobilenet_v1_1_224.txt").write_text(text)
    (logs / "mobilenet_v1_1_224_int8.txt").write_text(
        text.replace("P50 Latency: 0.0412835 s", "P50 Latency: 0.0223531 s"))
    with pytest.raises(MobilecostError, match="logs of two precisions") as err:
        points_from_logs([logs])
    assert "disagree" not in str(err.value)


def test_validating_on_measurements_of_another_precision_is_refused(tmp_path):
    folder = _target(tmp_path)
    other = _csv(tmp_path / "fp32.csv", header_dtype=False)
    line = one_error_line(run("predict", "--validate", "--target", "p8", "--targets-dir", folder,
                              "--measurements", other, "--output-dir", tmp_path / "plots"))
    assert line == (f"error: target p8 was calibrated at int8; it cannot predict fp32 latencies "
                    f"({other} is of fp32): calibrate a target on fp32 measurements, or "
                    f"validate on int8 measurements")
    same = _csv(tmp_path / "int8.csv")
    r = run("predict", "--validate", "--target", "p8", "--targets-dir", folder, "--measurements",
            same, "--output-dir", tmp_path / "plots", "-f", "csv")
    assert r.exit_code == 0, r.output


def test_measure_rows_carry_their_dtype(tmp_path):
    """A CSV with the columns `measure -o` and `sweep --measure` write (torch.timing's
    ROW_COLUMNS): its dtype cells, short names, give the precision."""
    pytest.importorskip("torch")
    from mobilecost.torch.timing import ROW_COLUMNS

    lines = [",".join(ROW_COLUMNS)]
    for (a, r), ms in INT8_MS.items():
        row = dict.fromkeys(ROW_COLUMNS, "")
        row.update(spec="mobilenet_v1", alpha=a, resolution=str(r), batch="1",
                   latency_ms=str(ms), device="cpu", dtype="int8", runtime="onnxruntime")
        lines.append(",".join(row[c] for c in ROW_COLUMNS))
    (tmp_path / "measured.csv").write_text("\n".join(lines) + "\n")
    m = read_measurements(tmp_path / "measured.csv")
    assert (m.dtype, m.device, len(m.points)) == ("int8", "cpu", 8)


def test_a_layer_table_is_not_timed_at_int8(tmp_path):
    # Layers are timed alone in torch (fp32, fp16, bf16); int8 measurements get the
    # whole-network model, and --layers says so in one line naming the measurements' dtype.
    result = run("calibrate", _csv(tmp_path / "p8.csv"), "--target", "p8", "--layers",
                 "--targets-dir", tmp_path / "t")
    line = one_error_line(result)
    assert "the measurements are at int8" in line and "without --layers" in line
    assert "--dtype" not in line
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").iterdir())
