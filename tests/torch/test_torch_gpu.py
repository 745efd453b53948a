"""On a CUDA GPU: timing (plain and CUDA graphs), device-time profiling, fp16 counts.

Deselected by default; run with `pytest -m gpu` on a machine with a GPU.
"""

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from mobilecost.torch.build import build_model  # noqa: E402
from mobilecost.torch.clock import MeasureOptions
from mobilecost.torch.profile import profile_model  # noqa: E402
from mobilecost.torch.timing import measure, measure_grid  # noqa: E402

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

GPU = MeasureOptions(device="cuda", min_run_time_s=0.05, max_run_time_s=0.5)


@pytest.mark.parametrize("options", [GPU, replace(GPU, cuda_graphs=True),
                                     replace(GPU, dtype="fp16", channels_last=True)])
def test_cuda_rows(options):
    row = measure("mobilenet_v1", "0.5", 128, options)
    assert row["error"] == "" and row["latency_ms"] > 0
    assert row["device"] == "cuda" and row["device_name"] == torch.cuda.get_device_name()
    assert torch.backends.cudnn.benchmark


def test_cuda_graph_replay_gives_the_eager_output():
    from mobilecost.torch.clock import prepare

    model = build_model("mobilenet_v2", "0.5", 96)
    x = model.example_input(2)
    with torch.inference_mode():
        eager = model.to("cuda")(x.to("cuda")).clone()
    opts = MeasureOptions(device="cuda", cuda_graphs=True)
    fn, xc = prepare(model, x, opts.resolved())
    with torch.inference_mode():
        torch.testing.assert_close(fn(xc), eager, rtol=1e-3, atol=1e-3)


def test_profile_uses_device_time():
    from mobilecost.torch.clock import prepare

    model = build_model("mobilenet_v1", 1, 224)
    _, x = prepare(model, model.example_input(GPU.batch), GPU.resolved())
    p = profile_model(model, x, GPU, passes=3)
    assert p.device == "cuda"
    assert all(t.time_ms > 0 for t in p.layers if t.layer.kind.value in ("depthwise", "pointwise"))


def test_grid_with_a_huge_batch_records_out_of_memory(tmp_path):
    # 128 × 32 × 2048² fp32 activations are 68 GB per layer output: more than any one GPU holds
    rows = measure_grid("mobilenet_v1", [("1", 224), ("1", 4096)], replace(GPU, batch=128))
    assert rows[0]["error"] == "" and rows[0]["latency_ms"] > 0
    assert rows[-1]["error"].startswith("out of memory")
