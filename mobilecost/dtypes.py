"""The data types a network is stored, timed and modelled in: one table, every name each goes
by, and how a file stores weights in each.

The latency model needs a dtype's width in bytes; the torch backend needs the torch dtype
(looked up by `name` in mobilecost.torch, the only place torch is imported). Measurements
name a dtype by its short name (`fp32`, what --dtype takes); targets by its full name
(`float32`); CSVs from elsewhere may say `torch.float32` or `half`. `lookup` reads them all.

A float dtype stores every weight and bias at its width. int8 is quantized (`quantized`): a
network in it is a quantized file of a runtime (`export --quantize int8`), which stores, as
ONNX Runtime's QDQ models, LiteRT's full-integer and ExecuTorch's XNNPACK-quantized programs do
with per-channel weights: each weight as one int8, each output channel's scale (float32) and
zero point (int8), each bias as an int32 with its own float32 scale and int32 zero point
(`stored_weight_bytes`; measured on ONNX Runtime's files). Activations are one byte an element
(uint8 or int8) with a scale and zero point per tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MobilecostError


@dataclass(frozen=True, slots=True)
class DType:
    name: str            # torch's attribute name: torch.float32
    short: str           # what --dtype takes and timing rows record
    bytes: int           # width of one element
    eager: bool          # torch runs a network in it (`measure --runtime torch`)
    aliases: tuple[str, ...] = ()
    quantized: bool = False  # integer values with scales: a runtime's quantized file

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, self.short, f"torch.{self.name}", *self.aliases)

    def stored_weight_bytes(self, weights: int, scale_channels: int, bias_channels: int) -> int:
        """Bytes a file stores of a layer's `weights`, its per-channel scales (one per output
        channel of a weight tensor) and its biases (the layer's own and those batchnorm folds
        into its convolution): every value at the dtype's width, or, quantized, int8 weights
        with a float32 scale and an int8 zero point per channel and int32 biases with a float32
        scale and an int32 zero point each."""
        if not self.quantized:
            return (weights + bias_channels) * self.bytes
        return weights * self.bytes + scale_channels * (4 + 1) + bias_channels * (4 + 4 + 4)

    @property
    def scheme(self) -> str:
        """How weights are stored, for a report's notes."""
        if not self.quantized:
            return (f"weights, biases and activations as {self.name}, {self.bytes} "
                    f"byte{'s' if self.bytes > 1 else ''} each")
        return ("weights as int8 with a float32 scale and an int8 zero point per output channel, "
                "biases (batchnorm folded in) as int32 with a float32 scale and an int32 zero "
                "point each (ONNX Runtime's QDQ, LiteRT's full-integer, ExecuTorch's XNNPACK "
                "per-channel schemes); activations one byte an element")


DTYPES: tuple[DType, ...] = (
    DType("float32", "fp32", 4, True, ("float",)),
    DType("float16", "fp16", 2, True, ("half",)),
    DType("bfloat16", "bf16", 2, True),
    DType("int8", "int8", 1, False, ("qint8",), quantized=True),
)

_BY_NAME = {n: d for d in DTYPES for n in d.names}


def lookup(name: str) -> DType:
    """The dtype any of its names stands for; a MobilecostError for an unknown one."""
    d = _BY_NAME.get(str(name).strip())
    if d is None:
        known = ", ".join(f"{d.name} ({d.short})" if d.short != d.name else d.name for d in DTYPES)
        raise MobilecostError(f"unknown dtype {name!r}; known: {known}")
    return d


def timeable_shorts() -> tuple[str, ...]:
    """The short names `measure --dtype` accepts (torch's, and the quantized ones a runtime
    runs from its file), in table order."""
    return tuple(d.short for d in DTYPES)


def eager_shorts() -> tuple[str, ...]:
    """The short names torch itself runs a network in."""
    return tuple(d.short for d in DTYPES if d.eager)


__all__ = ["DTYPES", "DType", "eager_shorts", "lookup", "timeable_shorts"]
