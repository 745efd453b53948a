from fractions import Fraction as F

import pandas as pd
import pytest

from mobilecost.engine.pareto import Budget, pareto_front, pick
from mobilecost.engine.sweep import sweep
from mobilecost.errors import MobilecostError


def _frame(rows):
    return pd.DataFrame(rows, columns=["spec", "alpha", "resolution", "macs", "params", "top1"])


def test_pareto_front_by_hand():
    df = _frame([
        ("n", 1, 1, 100, 5, 60.0),   # frontier
        ("n", 1, 2, 150, 5, 59.0),   # dominated by the first (costs more, less accurate)
        ("n", 1, 3, 200, 5, 70.0),   # frontier
        ("n", 1, 4, 200, 5, 65.0),   # same cost as the third, less accurate
        ("n", 1, 5, 50, 5, 40.0),    # frontier (cheapest)
        ("n", 1, 6, 300, 5, float("nan")),  # no accuracy: left out
    ])
    assert list(pareto_front(df).resolution) == [5, 1, 3]


def test_pick_under_a_mult_adds_budget():
    # Published configurations under 300M Mult-Adds: 1.0-160 (290.68M, 68.0%) beats 0.75-192
    # (239.27M, 67.2%); 0.75-224 (325.40M) is over.
    r = pick(sweep(), [Budget("macs", 300_000_000)])
    assert (r.best.alpha, r.best.resolution, r.best.top1) == (1.0, 160, 68.0)
    assert r.feasible == 13  # all but 1.0-224, 1.0-192 and 0.75-224


def test_pick_under_a_parameter_budget():
    # 2M parameters rule out α 0.75 (2.57M) and 1 (4.21M); α 0.5 at 224 is best (63.3%).
    r = pick(sweep(), [Budget("params", 2_000_000)])
    assert (r.best.alpha, r.best.resolution) == (0.5, 224)
    assert r.cost == "params"


def test_two_budgets_together():
    r = pick(sweep(), [Budget("macs", 100_000_000), Budget("params", 2_000_000)])
    # 0.75-128 (106.77M) and 0.5-192 (109.97M) are over 100M; 0.5-160 (76.52M, 59.1%) is best.
    assert (r.best.alpha, r.best.resolution, r.best.top1) == (0.5, 160, 59.1)


def test_nothing_meets_the_budget():
    r = pick(sweep(), [Budget("macs", 1_000_000)])
    assert r.best is None and r.feasible == 0
    assert not r.frontier.within_budget.any()


def test_ties_go_to_the_cheaper():
    df = _frame([("n", 1, 1, 100, 5, 60.0), ("n", 1, 2, 80, 5, 60.0), ("n", 1, 3, 90, 5, 50.0)])
    assert pick(df, [Budget("macs", 1000)]).best.resolution == 2


def test_a_generic_cost_column():
    df = _frame([("n", 1, 1, 100, 5, 60.0), ("n", 1, 2, 80, 5, 55.0)])
    df["latency_ms"] = [3.0, 1.0]
    r = pick(df, [Budget("latency_ms", 2.0, "--max-latency 2ms")])
    assert r.best.resolution == 2 and r.cost == "latency_ms"
    with pytest.raises(MobilecostError, match="no column"):
        pick(df, [Budget("energy_mj", 1.0)])


def test_no_accuracy_is_an_error():
    with pytest.raises(MobilecostError, match="no accuracy"):
        pick(sweep("mobilenet_v2", [F(6, 5)], [160]), [Budget("macs", 10**9)])  # outside v2's box


def test_pick_prefers_published_1_0_224_to_an_estimate_beside_it():
    # Issue 8: `pick --alpha 0.95,1 --res 220,224` chose 1.0-220 at an estimated 71.92%, above
    # the 70.9% published for 1.0-224 (TF-slim table). With both in budget the published one,
    # which has every neighbour's width and resolution, must win.
    import csv
    import io

    from cli_helpers import run

    r = pick(sweep("mobilenet_v1", [F(95, 100), F(1)], [220, 224]), [Budget("macs", 600_000_000)])
    assert (r.best.alpha, r.best.resolution, r.best.top1) == (1.0, 224, 70.9)
    assert r.best.accuracy_source == "published"
    out = run("pick", "--alpha", "0.95,1", "--res", "220,224", "--max-macs", "600M", "--format", "csv")
    assert out.exit_code == 0, out.output
    rows = {(row["alpha"], row["resolution"]): row for row in csv.DictReader(io.StringIO(out.stdout))}
    assert float(rows[("1.0", "220")]["top1"]) < 70.9 <= float(rows[("1.0", "224")]["top1"])


def test_pick_across_families_against_a_brute_force_pick():
    """One frontier across MobileNet v1 and v2: the pick is the most accurate configuration of
    either family under the budget, found here from each family's own sweep."""
    import json

    from cli_helpers import run

    alphas = [F(k, 20) for k in range(5, 21)]
    res = list(range(96, 225, 16))
    best = None
    for name in ("mobilenet_v1", "mobilenet_v2"):
        df = sweep(name, alphas, res)
        for a, r, m, t in zip(df.alpha_exact, df.resolution, df.macs, df.top1):
            if m <= 200_000_000 and t == t:
                key = (t, -m)
                if best is None or key > best[0]:
                    best = (key, name, F(a), r)
    out = run("pick", "--spec", "mobilenet_v1,mobilenet_v2", "--alpha", "0.25..1:0.05", "--res",
              "96..224:16", "--max-macs", "200M", "--format", "json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    (chosen,) = [x for x in rows if x["chosen"]]
    assert (chosen["spec"], F(chosen["alpha_exact"]), chosen["resolution"]) == best[1:]
    # MobileNetV2 is ahead at every cost on this grid: the whole frontier is v2
    assert {x["spec"] for x in rows} == {"mobilenet_v2"}


def test_pick_across_families_bad_input():
    from cli_helpers import one_error_line, run

    assert "not both" in one_error_line(run("pick", "mobilenet_v1", "--spec", "mobilenet_v2",
                                            "--max-macs", "1G"))
    assert "give --res with --spec" in one_error_line(run("pick", "--spec", "mobilenet_v1,mobilenet_v2",
                                                          "--rho", "0.5,1", "--max-macs", "1G"))
    assert "an empty name" in one_error_line(run("pick", "--spec", "mobilenet_v1,,mobilenet_v2"))
    assert "named twice" in one_error_line(run("pick", "--spec", "mobilenet_v1,mobilenet_v1"))
    assert "unknown spec" in one_error_line(run("pick", "--spec", "mobilenet_v1,nosuch"))
