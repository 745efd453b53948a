"""Behaviour that must not move when the code does: the data a dozen commands print.

Each case is a command line whose stdout (CSV, JSON or the canonical text of a spec or formula)
was recorded in tests/data/behaviour/ before the package was reorganised; every value printed
now must be the same. Record anew only for a change that means to alter output, and say why in
the commit: `MOBILECOST_RECORD=1 python -m pytest tests/test_behaviour.py`.
"""

import os
from pathlib import Path

import pytest
from cli_helpers import run

DATA = Path(__file__).resolve().parents[1] / "data" / "behaviour"

# the built-ins of the time of recording, named so that a new built-in leaves the case as it is
FAMILY = ["conv_mobilenet", "mnasnet_a1", "mnasnet_b1", "mobilenet_v1", "mobilenet_v2",
          "mobilenet_v3_large", "mobilenet_v3_large_minimalistic", "mobilenet_v3_small",
          "mobilenet_v3_small_1280", "mobilenet_v3_small_minimalistic", "shallow_mobilenet"]

CASES = {
    "table1_csv": ["table1", "--format", "csv"],
    "table1_v2_json": ["table1", "mobilenet_v2", "--alpha", "0.6", "--res", "200",
                       "--format", "json"],
    "table2_csv": ["table2", "--format", "csv"],
    "table2_json": ["table2", "--format", "json"],
    "table3_csv": ["table3", "--format", "csv"],
    "table3_json": ["table3", "--format", "json"],
    "cost_v2_odd_csv": ["cost", "mobilenet_v2", "--alpha", "0.6", "--res", "200",
                        "--format", "csv"],
    "cost_v2_odd_torchvision_json": ["cost", "mobilenet_v2", "--alpha", "1.3", "--res", "193",
                                     "--convention", "torchvision", "--format", "json"],
    "cost_v3l_odd_json": ["cost", "mobilenet_v3_large", "--alpha", "0.85", "--res", "193",
                          "--format", "json"],
    "cost_v3l_keras_csv": ["cost", "mobilenet_v3_large", "--alpha", "0.75", "--res", "161",
                           "--convention", "keras", "--format", "csv"],
    "cost_mnasnet_a1_odd_csv": ["cost", "mnasnet_a1", "--alpha", "0.35", "--res", "257x161",
                                "--format", "csv"],
    "cost_v3s_fc_bias_bn_json": ["cost", "mobilenet_v3_small", "--alpha", "0.5", "--res", "97",
                                 "--biases", "--bn", "--classes", "1001", "--format", "json"],
    "sweep_v1_csv": ["sweep", "--format", "csv"],
    "sweep_v1_json": ["sweep", "--alpha", "0.25..1:0.125", "--res", "96..224:32",
                      "--format", "json"],
    "sweep_v2_csv": ["sweep", "mobilenet_v2", "--alpha", "0.35..1.4:0.05", "--res",
                     "96..224:16", "--format", "csv"],
    "sweep_family_csv": ["sweep", "--spec", ",".join(FAMILY), "--alpha", "0.5,1", "--res", "160,224",
                         "--format", "csv"],
    "sweep_aspect_csv": ["sweep", "mobilenet_v3_small", "--rho", "0.5..1", "--aspect", "4:3",
                         "--format", "csv"],
    "formula_v1": ["formula"],
    "formula_v2": ["formula", "mobilenet_v2"],
    "published_csv": ["published", "--format", "csv"],
    "published_json": ["published", "--format", "json"],
    "spec_v3_large": ["spec", "mobilenet_v3_large"],
    "spec_mnasnet_a1": ["spec", "mnasnet_a1"],
    "pick_json": ["pick", "--alpha", "0.25..1:0.05", "--res", "128..224:16", "--max-macs",
                  "300M", "--format", "json"],
    "pick_family_csv": ["pick", "--spec", "mobilenet_v1,mobilenet_v2", "--alpha",
                        "0.35..1:0.05", "--max-macs", "200M", "--format", "csv"],
    "accuracy_csv": ["accuracy", "--format", "csv"],
    "accuracy_v2_validate_json": ["accuracy", "mobilenet_v2", "--validate", "--format", "json"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_is_what_was_recorded(name):
    result = run(*CASES[name])
    assert result.exit_code == 0, result.output
    path = DATA / f"{name}.txt"
    if os.environ.get("MOBILECOST_RECORD"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(result.stdout)
    assert result.stdout == path.read_text()
