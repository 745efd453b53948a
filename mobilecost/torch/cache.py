"""The measurement cache: one JSON file per timing, keyed by the network's identity, the
configuration, every timing option, the device's name and the versions; written atomically,
bad entries reported and measured again, noisy ones not served."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from ..errors import MobilecostError
from ..lang.identity import Network
from ..lang.spec import Spec
from ..lang.values import resolution_value
from ..util import format_number, write_atomic
from . import runtimes
from .clock import MeasureOptions, noise

# --------------------------------------------------------------------------- the cache

def default_cache_dir() -> Path:
    """$MOBILECOST_CACHE_DIR, else $XDG_CACHE_HOME/mobilecost/measure, else ~/.cache/..."""
    if os.environ.get("MOBILECOST_CACHE_DIR"):
        return Path(os.environ["MOBILECOST_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mobilecost" / "measure"


class MeasurementCache:
    """One JSON file per measurement, named by the hash of everything that changes it.

    The key covers the network (its canonical spec text without the `name` line, as the
    latency model identifies networks: an edited spec file is a new key, a renamed copy is
    not), α, resolution, every field of the resolved MeasureOptions, whether time shares were
    taken, the device's name, the torch version and the round (rounds after the first only,
    so that round 1 is the measurement a single-round run takes and reuses). Files are
    written atomically, so a run killed at any moment leaves complete entries only; rows with
    an error are not kept (an out-of-memory may pass on a rerun).

    Entries are checked when read: one that is not a JSON object, or lacks a positive finite
    `latency_ms`, is not served (`lookup` says why) and the configuration is measured again;
    so is a noisy one (see `noise`).
    """

    VERSION = 2

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    @staticmethod
    def key(spec: Spec, alpha: Fraction, resolution: int, options: MeasureOptions,
            dev_name: str, time_share: bool = False, round_index: int = 0) -> str:
        opts = asdict(options)
        if opts.get("runtime") == "torch":
            del opts["runtime"]  # torch's keys stay those of before the runtime option
        else:
            opts["runtime_version"] = runtimes.load(options.runtime).version()
            if (q := runtimes.quantization(options)) is not None:
                opts["quantization"] = q  # float keys stay those of before quantized timing
        what = {"version": MeasurementCache.VERSION, "network": Network.of(spec).body,
                "alpha": str(alpha), "resolution": resolution_value(resolution), "options": opts,
                "time_share": time_share, "device_name": dev_name,
                "torch_version": torch.__version__}
        if round_index:
            what["round"] = round_index
        blob = json.dumps(what, sort_keys=True).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def lookup(self, key: str) -> tuple[dict[str, Any] | None, str]:
        """The cached row, or None and why it is not served ('' when there is no entry)."""
        path = self.path(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, ""
        except (OSError, UnicodeDecodeError) as exc:
            return None, f"cache entry {path} cannot be read ({exc}); measuring again"
        try:
            row = json.loads(text)
            if not isinstance(row, dict):
                raise ValueError(f"a JSON {type(row).__name__}, not an object")
            ms = row.get("latency_ms")
            if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not (0 < ms < float("inf")):
                raise ValueError(f"latency_ms is {ms!r}, not a positive number")
            iqr = row.get("latency_iqr_ms")
            if iqr is not None and (isinstance(iqr, bool) or not isinstance(iqr, (int, float))
                                    or not 0 <= iqr < float("inf")):
                raise ValueError(f"latency_iqr_ms is {iqr!r}")
            if "layer" not in row:  # a layer's row (measure_layers) has no α
                row["alpha"] = Fraction(row["alpha"])
        except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
            return None, f"cache entry {path} is not a valid measurement ({exc}); measuring again"
        if why := noise(row):
            what = (f"layer {row.get('layer')}" if "layer" in row else
                    f"{row.get('spec')} α={format_number(row['alpha'])} {row.get('resolution')}")
            return None, f"cache entry for {what} was noisy ({why}); measuring again"
        return row, ""

    def get(self, key: str) -> dict[str, Any] | None:
        return self.lookup(key)[0]

    def put(self, key: str, row: dict[str, Any]) -> None:
        data = dict(row) if "layer" in row else dict(row, alpha=str(row["alpha"]))
        data.pop("cached", None)
        try:
            write_atomic(self.path(key), json.dumps(data, sort_keys=True) + "\n")
        except OSError as exc:
            raise MobilecostError(f"cannot write to the measurement cache {self.folder}: "
                                  f"{exc.strerror or exc}") from None

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*.json")) if self.folder.is_dir() else 0
