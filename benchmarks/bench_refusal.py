"""How fast a hostile grid is refused: the command line's wall time and peak memory, against its
own start-up (`mobilecost --version`), side by side.

The hostile grid is 999,001 α × 3,125 resolutions (3.1 billion configurations, about 560 GiB)
with --max-configs raised to 10¹²: the memory limit (8 GiB) holds whatever --max-configs
says, so it is refused from the options' arithmetic, in one line, exit 2. Each run is a fresh
process (wall time from here, peak resident memory from the child itself); the two commands
alternate round by round; medians with their IQR. The target: under 2 s and 200 MB.

    python benchmarks/bench_refusal.py             # 9 rounds
    python benchmarks/bench_refusal.py --rounds 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timer import Spread, machine_line, ratio  # noqa: E402

HOSTILE = ["sweep", "--alpha", "0.001..1:0.000001", "--res", "1..100000",
           "--max-configs", "1000000000000"]
CHILD = r"""
import resource, runpy, sys
sys.argv = ["mobilecost"] + sys.argv[1:]
try:
    runpy.run_module("mobilecost", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stderr.write(f"\nmaxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\n")
sys.exit(code)
"""


def run(args: list[str]) -> tuple[float, int, int, str]:
    """Wall seconds, peak resident KiB, exit code and the error line of one fresh process."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True,
                       cwd=ROOT)
    wall = time.perf_counter() - t
    lines = r.stderr.strip().splitlines()
    rss = int(lines[-1].split()[1])
    errors = [x for x in lines if x.startswith("error:")]
    return wall, rss, r.returncode, errors[0] if errors else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    print(machine_line())
    hostile, start = [], []
    line = ""
    for i in range(args.rounds):
        for which in (("hostile", "start") if i % 2 == 0 else ("start", "hostile")):
            if which == "hostile":
                wall, rss, code, line = run(HOSTILE)
                if code != 2 or not line:
                    raise SystemExit(f"the hostile grid was not refused in one line (exit {code})")
                hostile.append((wall, rss))
            else:
                wall, rss, code, _ = run(["--version"])
                start.append((wall, rss))
    h_wall, s_wall = [w for w, _ in hostile], [w for w, _ in start]
    h_rss = Spread.of([r / 1024 for _, r in hostile])
    s_rss = Spread.of([r / 1024 for _, r in start])
    print(f"mobilecost {' '.join(HOSTILE)}")
    print(f"  {line}")
    print(f"refusal:   {Spread.of(h_wall).text(1, 3, ' s')}, peak {h_rss.median:.0f} MB resident")
    print(f"start-up:  {Spread.of(s_wall).text(1, 3, ' s')}, peak {s_rss.median:.0f} MB resident "
          f"(mobilecost --version)")
    r = ratio(h_wall, s_wall)
    print(f"ratio refusal / start-up: {r.median:.2f}× (IQR {r.q1:.2f}–{r.q3:.2f}); "
          f"target under 2 s and 200 MB: "
          f"{'met' if Spread.of(h_wall).q3 < 2 and h_rss.q3 < 200 else 'MISSED'}")
    print(machine_line())


if __name__ == "__main__":
    main()
