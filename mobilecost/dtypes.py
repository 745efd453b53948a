"""The data types a network is timed and modelled in: one table, every name each goes by.

The latency model needs a dtype's width in bytes; the torch backend needs the torch dtype
(looked up by `name` in mobilecost.torch, the only place torch is imported). Measurements
name a dtype by its short name (`fp32`, what --dtype takes); targets by its full name
(`float32`); CSVs from elsewhere may say `torch.float32` or `half`. `lookup` reads them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MobilecostError


@dataclass(frozen=True, slots=True)
class DType:
    name: str            # torch's attribute name: torch.float32
    short: str           # what --dtype takes and timing rows record
    bytes: int           # width of one element
    timeable: bool       # can `measure` run a network in it
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, self.short, f"torch.{self.name}", *self.aliases)


DTYPES: tuple[DType, ...] = (
    DType("float32", "fp32", 4, True, ("float",)),
    DType("float16", "fp16", 2, True, ("half",)),
    DType("bfloat16", "bf16", 2, True),
    DType("int8", "int8", 1, False, ("qint8",)),
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
    """The short names `measure --dtype` accepts, in table order."""
    return tuple(d.short for d in DTYPES if d.timeable)


__all__ = ["DTYPES", "DType", "lookup", "timeable_shorts"]
