"""Writing a big sweep: the old CSV path (pandas' DataFrame.to_csv) against the new one
(sweepreport.frame_csv: columns formatted at once, joined by pyarrow), and Parquet.

All are measured in one run on the same frame (best of 3 each), and the two CSVs are checked
to be equal byte for byte; the sweep itself is timed too, for scale.

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

from timer import best_of  # noqa: E402

from mobilecost.reports.output import frame_csv
from mobilecost.reports.sweep import sweep_columns, sweep_frame  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 × 100 configurations")
    args = ap.parse_args()
    n = 100 if args.quick else 1000
    alphas = [Fraction(250 + i, 1000) for i in range(n)]
    resolutions = range(128, 128 + n)

    t_sweep, df = best_of(lambda: sweep_frame("mobilenet_v1", alphas, resolutions))
    columns = sweep_columns(df)
    keys = [c.key for c in columns]
    t_old, old = best_of(lambda: df[keys].to_csv(index=False, lineterminator="\n", na_rep=""), 3)
    t_new, new = best_of(lambda: frame_csv(df, columns), 3)
    assert new == old, "the new CSV differs from pandas' to_csv"

    def parquet() -> bytes:
        buf = io.BytesIO()
        df[keys].to_parquet(buf, index=False, engine="pyarrow")
        return buf.getvalue()

    t_pq, data = best_of(parquet, 3)
    rows = len(df)
    print(f"{rows:,} configurations (mobilenet_v1, {n} α × {n} resolutions), {len(keys)} columns")
    print(f"sweep (for scale):                  {t_sweep:7.3f} s")
    print(f"CSV, old path (pandas to_csv):      {t_old:7.3f} s   {len(old) / 1e6:8.1f} MB")
    print(f"CSV, new path (frame_csv):          {t_new:7.3f} s   (byte for byte the same)")
    print(f"Parquet (pyarrow):                  {t_pq:7.3f} s   {len(data) / 1e6:8.1f} MB")
    print(f"ratio old CSV / new CSV:            {t_old / t_new:7.1f}×")
    print(f"ratio old CSV / Parquet:            {t_old / t_pq:7.1f}×")


if __name__ == "__main__":
    main()
