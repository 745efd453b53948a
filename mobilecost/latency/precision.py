"""The precision of a target's latencies: what dtype the measurements it was calibrated on ran
in, read from where those measurements come from, and the refusal to predict another.

A target predicts latencies at the precision of its calibration set and at no other: an int8
network on a phone's XNNPACK is another program than the float one (other kernels, a quarter
of the bytes), so no factor turns one into the other. Where a calibration set's precision
comes from:

* a measurement CSV's `dtype` column (missing: fp32), `latency.measurements`;
* `export`'s manifest rows (their `dtype`), for the logs matched through it;
* a benchmark log's model file name: TF's published quantized models end in `_quant`
  (`mobilenet_v1_1.0_224_quant.tflite`), `export --quantize int8` writes `_int8`, others write
  `_uint8`, `_qint8`, `_int8_quant`, `_full_integer_quant`; `_fp16`/`_float16` is float16 and
  `_fp32`/`_float32`/`_float` is float32 (`name_dtype`);
* what a log itself says of the model it ran (`log_dtype`): a TFLite `benchmark_model` run
  with `--enable_op_profiling=true` lists the operators it ran, and a `QUANTIZE` operator
  among them (a full-integer model's float input made int8) marks an int8 model. `DEQUANTIZE`
  alone says nothing: a float16 model dequantizes its weights with it. A log that states
  nothing (no profile, or a model fully delegated to XNNPACK) leaves it to the file name.

Two precisions in one calibration set are refused, naming one source of each.
"""

from __future__ import annotations

import re

from ..dtypes import lookup as lookup_dtype
from ..errors import MobilecostError

# The trailing word of a model's file name that says its precision, and the dtype it means.
_NAME_WORDS: dict[str, str] = {
    "quant": "int8", "quantized": "int8", "int8": "int8", "uint8": "int8", "qint8": "int8",
    "fp16": "float16", "float16": "float16", "fp32": "float32", "float32": "float32",
    "float": "float32",
}
_NAME_TAIL = re.compile(r"(?:[_.-](?:full_integer|integer|int8|uint8|dynamic_range))?[_.-]("
                        + "|".join(sorted(_NAME_WORDS, key=len, reverse=True)) + r")$",
                        re.IGNORECASE)
# A QUANTIZE row of a TFLite op-profiling table (a float model has none).
_QUANT_OP = re.compile(r"^[ \t]*(?:INFO:)?[ \t]*QUANTIZE[ \t]", re.MULTILINE)


def split_name(model: str) -> tuple[str, str | None, str]:
    """A model file's name (no suffix) without its precision word, the dtype that word means
    (None without one) and the word as written: 'mobilenet_v1_1.0_224_quant' ->
    ('mobilenet_v1_1.0_224', 'int8', '_quant')."""
    m = _NAME_TAIL.search(model)
    if m is None:
        return model, None, ""
    return model[:m.start()], _NAME_WORDS[m.group(1).lower()], m.group(0)


def name_dtype(model: str) -> str | None:
    """The dtype a model's file name says (`split_name`), None when it says none."""
    return split_name(model)[1]


def log_dtype(text: str) -> str | None:
    """The dtype a benchmark log states of its model: int8 where a TFLite op profile lists a
    QUANTIZE operator; None where it states nothing."""
    return "int8" if _QUANT_OP.search(text) else None


def single(sources: dict[str, str], what: str = "measurements") -> str:
    """The one dtype of a calibration set whose members say {where: dtype}; float32 when none
    says; two precisions are refused, naming one member of each."""
    found: dict[str, str] = {}
    for where, dtype in sources.items():
        found.setdefault(lookup_dtype(dtype).name, where)
    if len(found) > 1:
        (a, wa), (b, wb) = list(found.items())[:2]  # in the order they were met
        raise MobilecostError(f"{what} of two precisions: {wa} is {short(a)}, {wb} is {short(b)}; "
                              f"calibrate one target per precision")
    return next(iter(found), "float32")


def short(dtype: str) -> str:
    """A dtype's short name ('int8', 'fp32'), what --dtype takes."""
    return lookup_dtype(dtype).short


def check_dtype(target, asked: str | None, why: str = "--dtype",
                remedy: str = "leave out --dtype") -> None:
    """Refuse `asked` (a dtype by any name; None asks nothing) when it is not the precision
    the target was calibrated at: a target predicts its own precision only. `why` says where
    the precision asked comes from, `remedy` the other way out."""
    if asked is None:
        return
    want, have = lookup_dtype(asked), lookup_dtype(target.dtype)
    if want.name != have.name:
        raise MobilecostError(
            f"target {target.name} was calibrated at {have.short}; it cannot predict {want.short} "
            f"latencies ({why} {want.short}): calibrate a target on {want.short} measurements, "
            f"or {remedy}")


def latency_note(target) -> str:
    """A report's note on the precision of the target's latencies."""
    s = short(target.dtype)
    return (f"latencies at {s} (latency_dtype): target {target.name} was calibrated on {s} "
            f"measurements and predicts {s} only.")


__all__ = ["check_dtype", "latency_note", "log_dtype", "name_dtype", "short", "single",
           "split_name"]
