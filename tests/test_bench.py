import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_runs_and_agrees_with_fvcore():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_sweep.py"), "--quick"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "ratio sweep / fvcore" in r.stdout and "equal to the sweep's" in r.stdout


@pytest.mark.slow
def test_predict_benchmark_runs_and_agrees_with_one_at_a_time():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_predict.py"), "--quick"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ratio (sweep + predict) / sweep") == 2 and "equal to rounding" in r.stdout
def test_output_benchmark_runs_and_the_csvs_agree():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_sweep_output.py"),
                        "--quick"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "ratio old CSV / new CSV" in r.stdout and "byte for byte the same" in r.stdout


@pytest.mark.slow
def test_ort_benchmark_runs_and_prints_the_ratio():
    pytest.importorskip("onnxruntime")
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_ort.py"), "--quick"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "ratio mobilecost / plain" in r.stdout


@pytest.mark.slow
def test_engine_benchmark_runs_and_agrees_with_the_numpy_reference():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_engine.py"), "--quick",
                        "--spec", "mobilenet_v1,mobilenet_v3_large,mobilenetv4_conv_medium"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("the engine equals the reference in every cell of every column") == 3
    assert r.stdout.count("ratio engine / reference") == 3 and "load average" in r.stdout


@pytest.mark.slow
def test_refusal_benchmark_runs():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_refusal.py"),
                        "--rounds", "1"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "any sweep may take whatever --max-configs says" in r.stdout
