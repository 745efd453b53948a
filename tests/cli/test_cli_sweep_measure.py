"""sweep --measure and --rounds: real timing on tiny networks, and a stub timer for the rounds."""

import csv
import io
from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")

from cli_helpers import one_error_line, run
from timing_helpers import all_quiet  # noqa: E402

from mobilecost.engine.cost import cost  # noqa: E402
from mobilecost.torch import timing  # noqa: E402
from mobilecost.torch.timing import combine_rounds  # noqa: E402

FAST = ["--threads", "1", "--min-time", "0.01", "--max-time", "0.05"]


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    """Real timings on a shared test machine are often noisy (and so re-measured); these
    tests count cache hits, so every timing is taken as quiet."""
    all_quiet(monkeypatch)


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


class StubTimer:
    """Stands in for `timing.measure`: each call takes the next latency of `script[(α, res)]`,
    so the rounds' arithmetic can be checked exactly. KeyboardInterrupt at call `stop_at`."""

    def __init__(self, script, stop_at=None):
        self.script = {k: list(v) for k, v in script.items()}
        self.calls = []
        self.stop_at = stop_at

    def __call__(self, spec, alpha, resolution, options, time_share=False):
        if self.stop_at is not None and len(self.calls) + 1 == self.stop_at:
            raise KeyboardInterrupt
        self.calls.append((alpha, resolution))
        ms = self.script[(alpha, resolution)].pop(0)
        row = timing._row_base(spec, alpha, resolution, options, "stub")
        return row | {"latency_ms": ms, "latency_iqr_ms": ms / 10, "latency_median_ms": ms,
                      "runs": 7, "calls_per_run": 1}


A, B = (Fraction(1, 4), 32), (Fraction(1, 2), 32)
# Per configuration, the median each round gives: round 1, 2, 3, 4.
SCRIPT = {A: [5.0, 3.0, 4.0, 1.0], B: [2.0, 6.0, 10.0, 7.0]}


def measure_csv(tmp_path, *extra):
    result = run("measure", "--alpha", "0.25,0.5", "--res", "32", "--cache-dir", tmp_path / "c",
                 "--format", "csv", *FAST, *extra)
    assert result.exit_code == 0, result.output
    return result, csv_rows(result.stdout)


def test_rounds_lowest_of_the_round_medians(tmp_path, monkeypatch):
    stub = StubTimer(SCRIPT)
    monkeypatch.setattr(timing, "measure", stub)
    result, rows = measure_csv(tmp_path, "--rounds", "3")
    assert stub.calls == [A, B] * 3  # interleaved: every configuration, then the next round
    assert [float(r["latency_ms"]) for r in rows] == [3.0, 2.0]  # min(5, 3, 4), min(2, 6, 10)
    assert [float(r["latency_median_ms"]) for r in rows] == [4.0, 6.0]
    assert [float(r["latency_iqr_ms"]) for r in rows] == [0.3, 0.2]  # from the fastest round
    assert [r["rounds"] for r in rows] == ["3", "3"]
    assert [r["cached"] for r in rows] == ["False", "False"]
    assert "lowest of 3 round medians" in result.stdout + result.stderr

    _, again = measure_csv(tmp_path, "--rounds", "3")  # every round is in the cache
    assert len(stub.calls) == 6 and [r["cached"] for r in again] == ["True", "True"]
    assert [float(r["latency_ms"]) for r in again] == [3.0, 2.0]

    _, four = measure_csv(tmp_path, "--rounds", "4")  # only round 4 is new
    assert stub.calls[6:] == [A, B]
    assert [float(r["latency_ms"]) for r in four] == [1.0, 2.0]
    assert [float(r["latency_median_ms"]) for r in four] == [3.5, 6.5]
    assert [r["cached"] for r in four] == ["False", "False"]

    _, one = measure_csv(tmp_path)  # round 1 is the measurement a single round reuses
    assert len(stub.calls) == 8 and [float(r["latency_ms"]) for r in one] == [5.0, 2.0]
    assert [r["rounds"] for r in one] == ["1", "1"]


def test_combine_rounds_leaves_out_failed_rounds():
    base = {"latency_iqr_ms": 0.1, "cached": True, "error": ""}
    rows = [dict(base, latency_ms=4.0), dict(base, latency_ms=None, error="out of memory: x"),
            dict(base, latency_ms=2.0, cached=False)]
    row = combine_rounds(rows)
    assert (row["latency_ms"], row["latency_median_ms"], row["rounds"]) == (2.0, 3.0, 2)
    assert row["error"] == "" and row["cached"] is False
    failed = combine_rounds([dict(base, latency_ms=None, error="boom")] * 2)
    assert failed["latency_ms"] is None and failed["rounds"] == 0 and failed["error"] == "boom"


def test_interrupted_rounds_keep_what_was_measured(tmp_path, monkeypatch):
    stub = StubTimer(SCRIPT, stop_at=4)  # Ctrl-C during round 2, after A's second round
    monkeypatch.setattr(timing, "measure", stub)
    result = run("sweep", "--alpha", "0.25,0.5", "--res", "32", "--measure", "--rounds", "3",
                 "--cache-dir", tmp_path / "c", *FAST)
    line = one_error_line(result, 130)
    assert "interrupted after 3 of 6 measurements" in line and "rerun" not in line
    assert "the 3 measured are kept" in line and "run the same command again to resume" in line
    stub.stop_at = None
    result = run("sweep", "--alpha", "0.25,0.5", "--res", "32", "--measure", "--rounds", "3",
                 "--cache-dir", tmp_path / "c", "--format", "csv", *FAST)
    assert result.exit_code == 0, result.output
    assert stub.calls == [A, B, A, B, A, B]  # the rerun took only the 3 missing
    rows = csv_rows(result.stdout)
    assert [float(r["latency_ms"]) for r in rows] == [3.0, 2.0]
    assert [float(r["latency_median_ms"]) for r in rows] == [4.0, 6.0]


def test_sweep_measure_plots(tmp_path, monkeypatch):
    stub = StubTimer({(Fraction(1, 4), 128): [3.0], (Fraction(1, 2), 128): [5.0]})
    monkeypatch.setattr(timing, "measure", stub)
    out = tmp_path / "out"
    result = run("sweep", "--alpha", "0.25,0.5", "--res", "128", "--measure", "--plot", "--output-dir", out,
                 "--cache-dir", tmp_path / "c", *FAST)
    assert result.exit_code == 0, result.output
    for stem in ("latency_vs_accuracy_mobilenet_v1", "latency_vs_macs_mobilenet_v1",
                 "sweep_mobilenet_v1"):
        assert any(p.name.startswith(stem) for p in out.iterdir()), stem
    header, *body = (out / "sweep_mobilenet_v1.csv").read_text().splitlines()
    assert "latency_ms" in header.split(",") and len(body) == 2


# ----------------------------------------------------------------------------- real timing

def test_sweep_measure_times_and_resumes_from_the_cache(tmp_path):
    args = ["sweep", "--alpha", "0.25", "--res", "32,40", "--measure", "--cache-dir",
            tmp_path / "c", "--format", "csv", *FAST]
    first = run(*args)
    assert first.exit_code == 0, first.output
    rows = csv_rows(first.stdout)
    assert [int(r["resolution"]) for r in rows] == [32, 40]
    for r in rows:
        assert float(r["latency_ms"]) > 0 and int(r["runs"]) >= 1 and r["rounds"] == "1"
        assert int(r["macs"]) == cost("mobilenet_v1", Fraction(1, 4), int(r["resolution"])).macs
        assert (r["device"], r["threads"], r["dtype"], r["batch"]) == ("cpu", "1", "fp32", "1")
        assert r["cached"] == "False" and r["error"] == ""
    second = run(*args)
    again = csv_rows(second.stdout)
    assert [r["cached"] for r in again] == ["True", "True"]
    assert [r["latency_ms"] for r in again] == [r["latency_ms"] for r in rows]
    assert "2 of 2 measured rows come from the measurement cache" in second.stderr
    # `measure` shares the cache: the same configurations are not timed again
    shared = run("measure", "--alpha", "0.25", "--res", "32,40", "--cache-dir", tmp_path / "c",
                 "--format", "csv", *FAST)
    assert [r["cached"] for r in csv_rows(shared.stdout)] == ["True", "True"]
    assert [r["latency_ms"] for r in csv_rows(shared.stdout)] == [r["latency_ms"] for r in rows]


def test_sweep_measure_with_target_and_time_share(tmp_path):
    lines = ["spec,alpha,resolution,batch,latency_ms"]
    lines += [f"mobilenet_v1,{a},{r},1,{0.2 + cost('mobilenet_v1', Fraction(a), r).macs / 3e7!r}"
              for a in ("1", "0.75", "0.5", "0.25") for r in (224, 192, 160, 128)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    assert run("calibrate", tmp_path / "m.csv", "--target", "t", "--targets-dir",
               tmp_path / "t").exit_code == 0
    result = run("sweep", "--alpha", "0.25", "--res", "32", "--measure", "--time-share",
                 "--target", "t", "--targets-dir", tmp_path / "t", "--cache-dir", tmp_path / "c",
                 "--format", "csv", *FAST)
    assert result.exit_code == 0, result.output
    (row,) = csv_rows(result.stdout)
    assert float(row["predicted_latency_ms"]) > 0 and float(row["latency_ms"]) > 0
    shares = [float(v) for k, v in row.items() if k.startswith("time_share_")]
    assert len(shares) == 5 and sum(shares) == pytest.approx(1.0)


def test_calibrate_reads_what_sweep_measure_writes(tmp_path, monkeypatch):
    configs = [(Fraction(a), r) for a in ("0.25", "0.5", "0.75") for r in (128, 160)]
    script = {c: [1.0 + i] for i, c in enumerate(configs)}
    monkeypatch.setattr(timing, "measure", StubTimer(script))
    out = tmp_path / "out"
    result = run("sweep", "--alpha", "0.25,0.5,0.75", "--res", "128,160", "--measure", "--output-dir", out,
                 "--cache-dir", tmp_path / "c", *FAST)
    assert result.exit_code == 0, result.output
    result = run("calibrate", out / "sweep_mobilenet_v1.csv", "--target", "m", "--targets-dir",
                 tmp_path / "t")
    assert result.exit_code == 0, result.output
    from mobilecost.latency import targets as tg

    t = tg.load("m", tmp_path / "t")
    assert t.model.dtype == "float32" and t.device == "cpu"  # fp32 as measure writes it
    assert {(p.config.alpha, p.config.resolution): p.latency_ms for p in t.points} == \
        {c: 1.0 + i for i, c in enumerate(configs)}
