"""What a network is, whatever it is called: `Network`, the canonical spec text without its
`name` line, by which measurements, caches and targets know a network (a renamed copy of a
spec is the same network)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from .load import load_spec
from .parse import parse
from .spec import Spec, format_spec

if TYPE_CHECKING:  # pragma: no cover
    pass


# --------------------------------------------------------------------------- what a network is

@dataclass(frozen=True, slots=True)
class Network:
    """A network as the latency model and the measurement cache identify it.

    The identity is the spec's canonical text (`spec.format_spec`) without its `name` line:
    the name labels a network and changes nothing it computes, so a copy of mobilenet_v1
    saved under another file name, or with another `name` line, is the same network and
    finds the same measurements; any other difference (a layer, the rounding, the base
    resolution) makes another network. The path or name a user typed plays no part.
    """

    body: str                                    # canonical text after the name line
    name: str = field(default="", compare=False)  # the `name` line's value, a label

    @property
    def text(self) -> str:
        """The canonical spec text, name line included (parses back to the spec)."""
        return f"name {self.name}\n{self.body}"

    @property
    def key(self) -> str:
        """A short hash of the identity (16 hex digits), for files and references."""
        return hashlib.sha256(self.body.encode("utf-8")).hexdigest()[:16]

    @staticmethod
    def of(spec: Spec) -> "Network":
        head, _, body = format_spec(spec).partition("\n")
        return Network(body, spec.name)

    @staticmethod
    def from_text(text: str, source: str = "<stored spec>") -> "Network":
        """The network of a stored spec text (parsed, so that the identity is canonical)."""
        return Network.of(parse(text, source))

    def spec(self) -> Spec:
        return _parsed(self)


@lru_cache(maxsize=256)
def _parsed(network: Network) -> Spec:
    return parse(network.text, network.name or "<spec>")


def network_of(spec: "Spec | str | Network") -> Network:
    """The network a spec, a built-in name or a spec file's path stands for."""
    if isinstance(spec, Network):
        return spec
    if isinstance(spec, Spec):
        return Network.of(spec)
    name = str(spec)
    stamp = None
    if os.path.isfile(name):  # a file: its content, whatever directory we are in
        st = os.stat(name)
        stamp = (os.path.abspath(name), st.st_mtime_ns, st.st_size)
    return _network_cached(name, stamp)


@lru_cache(maxsize=64)
def _network_cached(name: str, stamp: object) -> Network:
    return Network.of(load_spec(name))
