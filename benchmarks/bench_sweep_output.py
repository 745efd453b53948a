"""Writing a big sweep: the old CSV path (pandas' DataFrame.to_csv) against the new one
(sweepreport.frame_csv: columns formatted at once, joined by pyarrow), and Parquet.

All are measured in one run on the same frame, in interleaved rounds (each figure the median
with its IQR, each ratio taken round by round), and the two CSVs are checked to be equal byte
for byte; the sweep itself is timed too, for scale.

    python benchmarks/bench_sweep_output.py            # 1000 α × 1000 resolutions
    python benchmarks/bench_sweep_output.py --quick    # 100 × 100, for a smoke run
"""

from __future__ import annotations

import argparse
import io
import sys
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timer import Spread, interleaved, machine_line, ratio  # noqa: E402

from mobilecost.reports.output import frame_csv
from mobilecost.reports.sweep import sweep_columns, sweep_frame  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 × 100 configurations")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7)")
    args = ap.parse_args()
    n = 100 if args.quick else 1000
    rounds = args.rounds or (3 if args.quick else 7)
    alphas = [Fraction(250 + i, 1000) for i in range(n)]
    resolutions = range(128, 128 + n)
    print(machine_line())

    df = sweep_frame("mobilenet_v1", alphas, resolutions)
    columns = sweep_columns(df)
    keys = [c.key for c in columns]

    def parquet() -> bytes:
        buf = io.BytesIO()
        df[keys].to_parquet(buf, index=False, engine="pyarrow")
        return buf.getvalue()

    times, last = interleaved({
        "sweep": lambda: sweep_frame("mobilenet_v1", alphas, resolutions),
        "old": lambda: df[keys].to_csv(index=False, lineterminator="\n", na_rep=""),
        "new": lambda: frame_csv(df, columns),
        "parquet": parquet,
    }, rounds)
    old, new, data = last["old"], last["new"], last["parquet"]
    assert new == old, "the new CSV differs from pandas' to_csv"
    t = {k: Spread.of(v) for k, v in times.items()}
    rows = len(df)
    print(f"{rows:,} configurations (mobilenet_v1, {n} α × {n} resolutions), {len(keys)} columns; "
          f"medians (IQR) of {rounds} interleaved rounds")
    print(f"sweep (for scale):                  {t['sweep'].text(1, 3, ' s')}")
    print(f"CSV, old path (pandas to_csv):      {t['old'].text(1, 3, ' s')}   {len(old) / 1e6:8.1f} MB")
    print(f"CSV, new path (frame_csv):          {t['new'].text(1, 3, ' s')}   (byte for byte the same)")
    print(f"Parquet (pyarrow):                  {t['parquet'].text(1, 3, ' s')}   {len(data) / 1e6:8.1f} MB")
    for label, key in (("old CSV / new CSV", "new"), ("old CSV / Parquet", "parquet")):
        r = ratio(times["old"], times[key])
        print(f"ratio {label}:{' ' * (29 - len(label))}{r.median:7.1f}× (IQR {r.q1:.1f}–{r.q3:.1f})")
    print(machine_line())


if __name__ == "__main__":
    main()
