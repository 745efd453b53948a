"""--classes: the classifier's width set for a run (TF-slim's checkpoints have 1001 classes)."""

import pytest
from by_hand import V3_LARGE, v1_macs, v3_counts
from cli_helpers import one_error_line, run

import mobilecost
from mobilecost.errors import MobilecostError
from mobilecost.lang.load import load_spec, with_classes
from mobilecost.lang.parse import parse


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
    said = " ".join(r.stderr.split())
    assert "parameters by the tf-slim convention (TF-slim's checkpoints): conv and FC weights; " \
           "1001 classes" in said
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


# Keras's applications table (keras.io/api/applications, the "Parameters" column, as
# model.count_params() gives them: every weight, bias and batchnorm γ, β, moving mean and
# moving variance): MobileNet 4,253,864; MobileNetV2 3,538,984; MobileNetV3Large 5,507,432;
# MobileNetV3Small 2,554,968. torchvision's weights tables (sum(p.numel())): MobileNetV2
# 3,504,872, MobileNetV3-Large 5,483,032, -Small 2,542,856.
KERAS = {"mobilenet_v1": 4_253_864, "mobilenet_v2": 3_538_984,
         "mobilenet_v3_large": 5_507_432, "mobilenet_v3_small": 2_554_968}
TORCHVISION = {"mobilenet_v2": 3_504_872, "mobilenet_v3_large": 5_483_032,
               "mobilenet_v3_small": 2_542_856}


@pytest.mark.parametrize("name", sorted(KERAS))
def test_keras_convention_reproduces_count_params(name):
    from mobilecost.engine.cost import CONVENTIONS

    assert mobilecost.cost(name, 1, 224, CONVENTIONS["keras"].counting).params == KERAS[name]
    r = run("cost", name, "--convention", "keras", "--format", "csv")
    total = dict(zip(r.stdout.splitlines()[0].split(","), r.stdout.splitlines()[-1].split(",")))
    assert int(total["params"]) == KERAS[name]
    assert "keras convention (Keras's count_params())" in " ".join(r.stderr.split())
    # the grid engine and the closed form count the same way
    from mobilecost.engine.grid import grid_cost

    assert grid_cost(name, [1], [224], CONVENTIONS["keras"].counting).params[0, 0] == KERAS[name]


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_convention(name):
    r = run("cost", name, "--convention", "torchvision", "--format", "csv")
    total = dict(zip(r.stdout.splitlines()[0].split(","), r.stdout.splitlines()[-1].split(",")))
    assert int(total["params"]) == TORCHVISION[name]


def test_every_output_names_its_convention():
    for args in (("cost",), ("table1",), ("table2",), ("sweep", "--res", "224"),
                 ("pick", "--max-macs", "300M"), ("formula",)):
        r = run(*args)
        assert r.exit_code == 0, r.output
        said = " ".join(r.output.split()).replace("Parameters by", "parameters by")
        assert "parameters by the paper convention (the paper's tables): conv and FC weights; " \
               "1000 classes" in said, args
    r = run("sweep", "--convention", "tf-slim", "--res", "224", "--alpha", "1", "--format", "csv")
    row = r.stdout.splitlines()[1].split(",")
    # 1.0-224 with TF-slim's 1,001 classes: 1,024 more Mult-Adds and weights, published 70.9
    header = r.stdout.splitlines()[0].split(",")
    got = dict(zip(header, row))
    assert int(got["macs"]) == 568_740_352 + 1024 and int(got["params"]) == 4_209_088 + 1024
    assert got["accuracy_source"] == "published" and float(got["top1"]) == 70.9


@pytest.mark.parametrize("args,what", [
    (("--convention", "caffe"), "--convention caffe: unknown; known: paper, tf-slim, torchvision, keras"),
    (("--convention", "keras", "--bn"), "--convention sets what counts: give it, or --biases/--bn, not both"),
])
def test_bad_convention_is_one_error_line(args, what):
    for cmd in ("cost", "sweep"):
        assert one_error_line(run(cmd, *args)) == f"error: {what}"
