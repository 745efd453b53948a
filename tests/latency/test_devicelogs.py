"""calibrate from on-device benchmark logs: TFLite benchmark_model and onnxruntime_perf_test.

The expected latencies are read off the sample logs by eye and written out here (see
tests/data/devicelogs/README.md for where the formats come from).
"""

import hashlib
import shutil
from fractions import Fraction
from pathlib import Path

import pytest
from cli_helpers import one_error_line, run

from mobilecost.errors import MobilecostError
from mobilecost.lang.identity import Network
from mobilecost.lang.load import load_spec
from mobilecost.latency.logs import points_from_logs, read_log
from mobilecost.latency.manifest import ManifestRow, write_manifest

DATA = Path(__file__).resolve().parents[1] / "data" / "devicelogs"
TFLITE, ORT = DATA / "tflite", DATA / "ort"


def test_tflite_takes_the_median_of_the_timed_runs():
    log = read_log(TFLITE / "mobilenet_v1_0.5_128.log")
    # "INFO: count=50 first=3475 curr=3340 min=3245 max=6422 avg=3467.5 ... median=3380": the
    # timed runs' line (its avg is the summary's 'Inference (avg): 3467.5'), not the warm-up's
    # (avg=3744.9, median=3690)
    assert (log.tool, log.statistic, log.runs) == ("tflite", "median", 50)
    assert log.latency_ms == pytest.approx(3.380)
    assert log.model == "mobilenet_v1_0.5_128"  # from 'Graph: [/data/local/tmp/....tflite]'


def test_tflite_without_a_median_takes_inference_avg(tmp_path):
    # older benchmark_model versions print count/first/curr/min/max/avg/std only
    text = (TFLITE / "mobilenet_v1_0.5_128.log").read_text()
    old = "\n".join(line.split(" p5=")[0] if "count=" in line else line for line in text.splitlines())
    (tmp_path / "x.log").write_text(old)
    log = read_log(tmp_path / "x.log")
    assert (log.statistic, log.latency_ms) == ("avg", pytest.approx(3.4675))


def test_ort_takes_p50_in_both_formats():
    new = read_log(ORT / "mobilenet_v1_1_224.txt")    # 'Average inference time cost total:'
    old = read_log(ORT / "mobilenet_v1_1_160.txt")    # 'Average inference time cost:'
    assert (new.tool, new.statistic, new.runs) == ("ort", "median", 200)
    assert new.latency_ms == pytest.approx(41.2835)   # 'P50 Latency: 0.0412835 s'
    assert old.latency_ms == pytest.approx(21.7342)   # 'P50 Latency: 0.0217342 s'
    assert old.model == "mobilenet_v1_1_160"          # from the log's own file name


def test_ort_without_percentiles_takes_the_average(tmp_path):
    text = (ORT / "mobilenet_v1_1_160.txt").read_text().split("Min Latency")[0]
    (tmp_path / "m.txt").write_text(text)
    log = read_log(tmp_path / "m.txt")
    assert (log.statistic, log.latency_ms) == ("avg", pytest.approx(22.408))


def test_file_names_give_the_configurations():
    points, logs, tool = points_from_logs([TFLITE])
    got = {(p.config.alpha, p.config.resolution): p.latency_ms for p in points}
    assert tool == "TFLite benchmark_model" and len(logs) == 6
    assert got == {(Fraction(1), 224): pytest.approx(31.25), (Fraction(1), 160): pytest.approx(16.5),
                   (Fraction(3, 4), 192): pytest.approx(14.75), (Fraction(1, 2), 224): pytest.approx(9.125),
                   (Fraction(1, 2), 128): pytest.approx(3.38), (Fraction(1, 4), 224): pytest.approx(3.24)}


def test_calibrate_from_tflite_logs_stores_a_target(tmp_path):
    result = run("calibrate", TFLITE, "--target", "phone", "--targets-dir", tmp_path, "-f", "csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("spec,alpha,resolution,batch,latency_ms")
    measured = {tuple(r.split(",")[1:3]): float(r.split(",")[4]) for r in lines[1:]}
    assert measured[("0.75", "192")] == pytest.approx(14.75)
    assert "the median of each log's timed runs" in " ".join(result.stderr.split())
    assert (tmp_path / "phone.json").is_file()


def _manifest(folder, configs, files=None):
    net = Network.of(load_spec("mobilenet_v1")).key
    rows = []
    for a, r in configs:
        name = f"mobilenet_v1_{a}_{r}.onnx"
        data = (files or {}).get(name, b"model")
        rows.append(ManifestRow("mobilenet_v1", net, Fraction(a), r, 1, "onnx", 18, name, 0, 0,
                                hashlib.sha256(data).hexdigest(), 0.0, "2.13.0"))
    write_manifest(folder, rows)
    return folder / "manifest.csv"


ORT_CONFIGS = [("1", 224), ("1", 160), ("0.75", 192), ("0.5", 224), ("0.5", 128), ("0.25", 224)]


def test_calibrate_through_a_manifest(tmp_path):
    manifest = _manifest(tmp_path, ORT_CONFIGS)
    (tmp_path / "mobilenet_v1_0.5_128.onnx").write_bytes(b"model")  # there, hash matching
    result = run("calibrate", ORT, "--manifest", manifest, "--target", "box",
                 "--targets-dir", tmp_path / "t", "-f", "csv")
    assert result.exit_code == 0, result.output
    assert "6 onnxruntime_perf_test log(s)" in result.stderr
    # TFLite logs name mobilenet_v1_1.0_224.tflite (TF's spelling): the manifest's _1_224
    result = run("calibrate", TFLITE, "--manifest", manifest, "--target", "phone",
                 "--targets-dir", tmp_path / "t", "-f", "csv")
    assert result.exit_code == 0, result.output
    assert "mobilenet_v1,1.0,224,1,31.25," in result.stdout


# ----------------------------------------------------------------------------- refusals

def test_a_log_that_matches_no_configuration_is_one_line(tmp_path):
    manifest = _manifest(tmp_path, ORT_CONFIGS[:5])  # no 0.25_224
    line = one_error_line(run("calibrate", ORT, "--manifest", manifest, "--target", "x",
                              "--targets-dir", tmp_path / "t"))
    assert "mobilenet_v1_0.25_224" in line and "matches no configuration" in line
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(ORT / "mobilenet_v1_1_224.txt", logs / "resnet50.txt")
    line = one_error_line(run("calibrate", logs, "--target", "x", "--targets-dir", tmp_path / "t"))
    assert "resnet50" in line and "SPEC_ALPHA_RES" in line


@pytest.mark.parametrize("src, cut, fragment", [
    (TFLITE / "mobilenet_v1_1.0_224.log", "INFO: Inference timings", "cut short"),
    (ORT / "mobilenet_v1_1_224.txt", "Average inference time cost", "cut short"),
    (ORT / "mobilenet_v1_1_224.txt", "P99 Latency", "percentiles stop"),
])
def test_a_truncated_log_is_one_line(tmp_path, src, cut, fragment):
    logs = tmp_path / "logs"
    shutil.copytree(src.parent, logs)
    text = src.read_text()
    (logs / src.name).write_text(text[:text.index(cut)])
    line = one_error_line(run("calibrate", logs, "--target", "x", "--targets-dir", tmp_path / "t"))
    assert src.name in line and fragment in line
    assert not (tmp_path / "t").exists()  # no target written


def test_two_logs_of_one_configuration_that_disagree_are_one_line(tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(ORT, logs)
    text = (ORT / "mobilenet_v1_1_224.txt").read_text()
    # the same model timed again, 20% slower (P50 0.0495402 s = 1.2 × 0.0412835)
    (logs / "again").mkdir()
    (logs / "again" / "mobilenet_v1_1_224.txt").write_text(
        text.replace("P50 Latency: 0.0412835 s", "P50 Latency: 0.0495402 s"))
    line = one_error_line(run("calibrate", logs, logs / "again", "--target", "x",
                              "--targets-dir", tmp_path / "t"))
    assert "disagree" in line and "41.284 vs 49.540" in line


def test_two_logs_that_agree_keep_the_lower(tmp_path):
    logs = tmp_path / "again"
    logs.mkdir()
    text = (ORT / "mobilenet_v1_1_224.txt").read_text()
    (logs / "mobilenet_v1_1_224.txt").write_text(  # 5% faster: within 10%
        text.replace("P50 Latency: 0.0412835 s", "P50 Latency: 0.0392193 s"))
    points, logs_read, _ = points_from_logs([ORT, logs])
    assert len(logs_read) == 7 and len(points) == 6
    got = [p.latency_ms for p in points if p.config.alpha == 1 and p.config.resolution == 224]
    assert got == [pytest.approx(39.2193)]


def test_a_manifest_whose_hash_no_longer_matches_is_one_line(tmp_path):
    manifest = _manifest(tmp_path, ORT_CONFIGS)
    (tmp_path / "mobilenet_v1_0.5_128.onnx").write_bytes(b"another model")
    line = one_error_line(run("calibrate", ORT, "--manifest", manifest, "--target", "x",
                              "--targets-dir", tmp_path / "t"))
    assert "mobilenet_v1_0.5_128.onnx" in line and "does not match" in line


def test_logs_of_both_tools_and_other_files_are_refused(tmp_path):
    with pytest.raises(MobilecostError, match="one target per runtime"):
        points_from_logs([TFLITE, ORT])
    (tmp_path / "notes.txt").write_text("hello\n")
    line = one_error_line(run("calibrate", tmp_path / "notes.txt", "--target", "x",
                              "--targets-dir", tmp_path / "t"))
    assert "neither a TFLite benchmark_model log" in line
    line = one_error_line(run("calibrate", TFLITE, "x.csv", "--target", "x"))
    assert "not both" in line
