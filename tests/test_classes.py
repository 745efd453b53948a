"""--classes: the classifier's width set for a run (TF-slim's checkpoints have 1001 classes)."""

import pytest

import mobilecost
from mobilecost.errors import MobilecostError
from mobilecost.spec import load_spec, parse, with_classes

from by_hand import V3_LARGE, v1_macs, v3_counts
from cli_helpers import one_error_line, run


def test_with_classes_replaces_the_fixed_classifier():
    s = with_classes(load_spec("mobilenet_v3_large"), 1001)
    macs, w, _, _ = v3_counts(V3_LARGE, 960, 1280, 1001)
    assert (mobilecost.cost(s).macs, mobilecost.cost(s).params) == (macs, w)
    # MobileNet v1 with TF-slim's 1001 classes: 1024 more Mult-Adds and weights
    assert mobilecost.cost(with_classes(load_spec("mobilenet_v1"), 1001)).macs == v1_macs() + 1024


def test_cost_and_table1_take_classes_and_say_so():
    r = run("cost", "mobilenet_v3_large", "--classes", "1001", "--format", "csv")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    total = dict(zip(lines[0].split(","), lines[-1].split(",")))
    assert int(total["macs"]) == v3_counts(V3_LARGE, 960, 1280, 1001)[0] == 216_591_040
    assert total["output"] == "1×1×1001"
    assert "1001 classes (--classes)" in r.stderr
    r = run("table1", "mobilenet_v1", "--classes", "1001", "--format", "csv")
    assert r.exit_code == 0 and r.stdout.splitlines()[-2].split(",")[2] == "1024×1001"


@pytest.mark.parametrize("args,what", [
    (("--classes", "0"), "the number of classes must be a positive integer, got 0"),
    (("--classes", "-5"), "the number of classes must be a positive integer, got -5"),
])
def test_bad_classes_is_one_error_line(args, what):
    assert one_error_line(run("cost", "mobilenet_v1", *args)) == f"error: {what}"


def test_classes_needs_a_fixed_classifier_at_the_end(tmp_path):
    path = tmp_path / "nofc.spec"
    path.write_text("input 8 3!\nconv 3 8\n")
    line = one_error_line(run("cost", path, "--classes", "10"))
    assert line.endswith("nofc.spec:2: --classes needs a spec that ends in a fixed-width "
                         "classifier 'fc N!'")
    with pytest.raises(MobilecostError):
        with_classes(parse("input 8 3!\navgpool global\nfc 10\n"), 5)  # scales: not classes
