"""The whole-network latency model on published phone latencies: does it carry to a real phone?

Reads benchmarks/data/published_phone_latency.csv (float MobileNet-family latencies that
Google's model pages print for Pixel phones; the file's header names each source and what its
figures are), or with --data the quantized ones (published_phone_latency_int8.csv: a `dtype`
column, int8; every fit is then at int8, one precision per file), and, per phone (the
`device` column, never mixing two), fits mobilecost's whole-network model (`latency.fit`)
beside the two baselines k·MACs and c0 + k·MACs (`latency.fit_macs_baseline`,
`fit_affine_baseline`), each on the same points:

(a) across families: calibrated on every MobileNet v1 and v2 row of the phone, predicting
    every row of the other families (MobileNetV3, MnasNet);
(b) within one family (a spec with at least 10 rows on the phone): calibrated on the 6 that
    `latency.suggest` picks, predicting the rest; and the mean (lowest) over 20 seeded random
    six-point draws;
(c) leave one spec out (`latency.held_out_spec`): calibrated on every other spec of the phone,
    predicting all of the one left out.

Each cell is the share of predictions within ±10% and the median |error|. Nothing is timed:
it fits published numbers and runs in seconds. Writes OUT/phone_transfer.md (and
phone_transfer.csv, every prediction) and prints the md file.

Usage: python benchmarks/phone_transfer.py [--data CSV] [--out reports/phone] [--draws 20]
       python benchmarks/phone_transfer.py --data benchmarks/data/published_phone_latency_int8.csv \
           --out reports/phone_int8
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mobilecost.latency import whole as lt  # noqa: E402
from mobilecost.latency.design import suggest
from mobilecost.latency.features import network_features
from mobilecost.latency.measurements import Config, Domain, Point
from mobilecost.latency.precision import short, single  # noqa: E402
from mobilecost.latency.validation import (
    ErrorSummary,
    fit_affine_baseline,
    fit_macs_baseline,
    held_out_spec,
)
from mobilecost.util import format_number  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "published_phone_latency.csv"
CALIBRATION = ("mobilenet_v1", "mobilenet_v2")
MODELS = ("whole-network", "k·MACs", "c0 + k·MACs")
WITHIN_MIN = 10   # rows a family needs on a phone for the within-family check
WITHIN_CAL = 6    # calibrate on this many of them


@dataclass(frozen=True)
class Row:
    point: Point
    device: str
    source: str
    printed: str  # latency_ms as the file has it (the source's own digits)

    @property
    def rounding(self) -> float:
        """Half a unit of the printed figure's last digit, relative to it: how far the source's
        rounding alone may have moved it."""
        decimals = len(self.printed.partition(".")[2])
        return 0.5 * 10 ** -decimals / self.point.latency_ms


def load(path: Path) -> tuple[list[Row], str]:
    """The data file's rows (lines starting with # are comments) and their one precision (its
    `dtype` column; fp32 without one)."""
    with open(path, encoding="utf-8") as fh:
        reader = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    rows = [Row(Point(Config(r["spec"], Fraction(r["alpha"]), int(r["resolution"]),
                             int(r["batch"])), float(r["latency_ms"])),
                r["device"], r["source"], r["latency_ms"].strip()) for r in reader]
    return rows, single({f"{path} row {i}": r.get("dtype") or "float32"
                         for i, r in enumerate(reader, 1)})


def predictors(train: list[Point], dtype: str = "float32"):
    """The three predictors fitted on `train` (latencies at `dtype`): config -> ms, in MODELS
    order."""
    model = lt.fit(train, "sum", dtype)
    k = fit_macs_baseline(train)
    c0, k1 = fit_affine_baseline(train)

    def macs(c: Config) -> int:
        return network_features(c).total_macs

    return (lambda c: lt.predict_ms(model, c), lambda c: k * macs(c), lambda c: c0 + k1 * macs(c))


def errors(fns, test: list[Point]) -> list[list[float]]:
    """Relative errors (predicted / measured − 1) of each predictor on `test`."""
    return [[f(p.config) / p.latency_ms - 1 for p in test] for f in fns]


def cell(errs: list[float]) -> str:
    s = ErrorSummary.of(errs)
    return f"{s.within:.0%} ({s.median_abs:.1%})"


def ratio(errs: list[float]) -> str:
    return f"{statistics.median(e + 1 for e in errs):.2f}"


def worst_of(test: list[Point], errs: list[float]) -> str:
    """The largest error and where: '−23.0% (0.75/96)'."""
    i = max(range(len(errs)), key=lambda j: abs(errs[j]))
    return f"{errs[i]:+.1%} ({test[i].config.label.split(' ', 1)[1]})".replace("-", "−")


def box(points: list[Point]) -> str:
    d = Domain.of(points)
    return d.describe() if d else "nothing"


def per_device(device: str, rows: list[Row], draws: int, pred_rows: list[list],
               dtype: str = "float32") -> list[str]:
    points = [r.point for r in rows]
    sources = sorted({r.source for r in rows})
    specs = list(dict.fromkeys(p.config.spec for p in points))
    count = {s: sum(p.config.spec == s for p in points) for s in specs}
    worst = max(rows, key=lambda r: r.rounding)
    md = [f"## {device}", "",
          (f"{len(points)} published latencies: " + ", ".join(f"{s} {count[s]}" for s in specs)
           + f" (source{'s' if len(sources) > 1 else ''}: {', '.join(sources)}). The sources' "
           f"rounding alone may move a figure by up to ±{worst.rounding:.1%} "
           f"({worst.point.config.label}, printed {worst.printed} ms; median "
           f"±{statistics.median(r.rounding for r in rows):.1%})."), ""]
    head = ("| predicting | n | " + " | ".join(MODELS)
            + " | whole-network predicted / published (median) | whole-network worst |")
    rule = "|---|---:|" + "---:|" * len(MODELS) + "---:|---:|"

    # (a) calibrated on v1 / v2, predicting the other families
    train = [p for p in points if p.config.spec in CALIBRATION]
    others = [s for s in specs if s not in CALIBRATION]
    md += ["### Calibrated on MobileNet v1 / v2, predicting the other families", ""]
    if len(train) < lt.min_points() or not others:
        why = (f"{len(train)} v1 / v2 rows (a fit needs {lt.min_points()})"
               if len(train) < lt.min_points() else "no other family")
        md += [f"Not possible on this phone: {why}.", ""]
    else:
        fns = predictors(train, dtype)
        md += [f"Calibrated on the {len(train)} rows of {box(train)}.", "", head, rule]
        everything: list[list[float]] = [[] for _ in MODELS]
        v3: list[list[float]] = [[] for _ in MODELS]
        for s in others:
            test = [p for p in points if p.config.spec == s]
            errs = errors(fns, test)
            for acc, acc3, e in zip(everything, v3, errs):
                acc += e
                if s.startswith("mobilenet_v3"):
                    acc3 += e
            for p, *es in zip(test, *errs):
                pred_rows.append([device, "a", s, format_number(p.config.alpha), p.config.resolution,
                                  p.latency_ms, *(round((e + 1) * p.latency_ms, 3) for e in es)])
            md.append(f"| {s} | {len(test)} | " + " | ".join(cell(e) for e in errs)
                      + f" | {ratio(errs[0])} | {worst_of(test, errs[0])} |")
        if sum(s.startswith("mobilenet_v3") for s in others) > 1:
            md.append(f"| all MobileNetV3 | {len(v3[0])} | " + " | ".join(cell(e) for e in v3)
                      + f" | {ratio(v3[0])} | |")
        md.append(f"| all | {len(everything[0])} | " + " | ".join(cell(e) for e in everything)
                  + f" | {ratio(everything[0])} | |")
        md.append("")

    # (b) within one family
    md += [f"### Within one family: calibrated on {WITHIN_CAL}, predicting the rest", ""]
    families = [s for s in specs if count[s] >= WITHIN_MIN]
    if not families:
        md += [f"Not possible on this phone: no family has {WITHIN_MIN} rows.", ""]
    else:
        md += [(f"Share within ±10% (median |error|) on the {WITHIN_CAL} that `latency.suggest` "
                f"picks; then the mean share (lowest) over {draws} random draws of {WITHIN_CAL} "
                f"(seeded)."), "",
               "| family | n predicted | " + " | ".join(f"{m}, suggested" for m in MODELS) + " | "
               + " | ".join(f"{m}, {draws} draws" for m in MODELS) + " |",
               "|---|---:|" + "---:|" * (2 * len(MODELS))]
        rng = random.Random(0)
        for s in families:
            pts = [p for p in points if p.config.spec == s]
            picked = set(suggest([p.config for p in pts], WITHIN_CAL))
            cal = [p for p in pts if p.config in picked]
            test = [p for p in pts if p.config not in picked]
            errs = errors(predictors(cal, dtype), test)
            for p, *es in zip(test, *errs):
                pred_rows.append([device, "b", s, format_number(p.config.alpha), p.config.resolution,
                                  p.latency_ms, *(round((e + 1) * p.latency_ms, 3) for e in es)])
            shares: list[list[float]] = [[] for _ in MODELS]
            for _ in range(draws):
                cal_r = rng.sample(pts, WITHIN_CAL)
                test_r = [p for p in pts if p not in cal_r]
                for acc, e in zip(shares, errors(predictors(cal_r, dtype), test_r)):
                    acc.append(ErrorSummary.of(e).within)
            md.append(f"| {s} | {len(test)} | " + " | ".join(cell(e) for e in errs) + " | "
                      + " | ".join(f"{statistics.mean(v):.0%} ({min(v):.0%})" for v in shares) + " |")
        md += ["", "The six suggested: " + "; ".join(
            f"{s}: " + ", ".join(c.label.split(" ", 1)[1] for c in suggest(
                [p.config for p in points if p.config.spec == s], WITHIN_CAL)) for s in families) + ".", ""]

    # (c) leave one spec out
    md += ["### Leave one spec out: calibrated on every other spec of this phone", "", head, rule]
    skipped = []
    for s in specs:
        rest = len(points) - count[s]
        if rest < lt.min_points():
            skipped.append(f"{s} (leaves {rest})")
            continue
        v = held_out_spec(points, s, "sum", dtype)
        errs = [[q.error for q in v.predictions], [q.baseline_error for q in v.predictions],
                [q.affine_error for q in v.predictions]]
        for q in v.predictions:
            c = q.point.config
            pred_rows.append([device, "c", s, format_number(c.alpha), c.resolution, q.point.latency_ms,
                              round(q.predicted_ms, 3), round(q.baseline_ms, 3), round(q.affine_ms, 3)])
        md.append(f"| {s} | {count[s]} | " + " | ".join(cell(e) for e in errs)
                  + f" | {ratio(errs[0])} | {worst_of([q.point for q in v.predictions], errs[0])} |")
    if len(md) and md[-1] == rule:
        md.pop()
        md.pop()
    md.append("")
    if skipped:
        md += [f"Not held out (a fit needs {lt.min_points()} rows of the others): "
               + ", ".join(skipped) + ".", ""]
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "phone")
    ap.add_argument("--draws", type=int, default=20)
    args = ap.parse_args()

    rows, dtype = load(args.data)
    kind = "float" if dtype == "float32" else f"{short(dtype)} (quantized)"
    sources = [line[2:].rstrip() for line in args.data.read_text(encoding="utf-8").splitlines()
               if line.startswith("#")]
    devices = list(dict.fromkeys(r.device for r in rows))
    shown = args.data.relative_to(ROOT) if args.data.is_relative_to(ROOT) else args.data
    md = ["# The latency model on published phone latencies", "",
          (f"Data: `{shown}`, {len(rows)} {kind} latencies (batch 1) of "
           f"{len({r.point.config.spec for r in rows})} networks on {len(devices)} phone settings "
           "(sources at the end); nothing measured here. Each cell: share of predictions within "
           "±10% (median |error|). Every predictor is fitted on the same points: mobilecost's "
           "whole-network model (4 coefficients), k·MACs and c0 + k·MACs."), ""]
    pred_rows: list[list] = []
    for d in devices:
        md += per_device(d, [r for r in rows if r.device == d], args.draws, pred_rows, dtype)
    md += ["## The data and its sources", "", "From the data file's header:", "", "```"] + sources + ["```", ""]

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "phone_transfer.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["device", "test", "spec", "alpha", "resolution", "published_ms",
                    "whole_network_ms", "k_macs_ms", "affine_ms"])
        w.writerows(pred_rows)
    text = "\n".join(md)
    (args.out / "phone_transfer.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
