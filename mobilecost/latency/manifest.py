"""The manifest of an export folder: which file holds which configuration.

`mobilecost export` writes one model file per (α, resolution) of a grid and a `manifest.csv`
beside them, one row per file:

    spec, network, alpha, resolution, batch, format, opset, file, macs, params, sha256,
    max_abs_diff, torch_version, dtype, quantizer, calibration, top1_agreement, cosine,
    centred_cosine

`network` is the short hash of the spec's canonical text (`latency.Network.key`: a renamed
copy of a spec is the same network, an edited one is another); `alpha` is exact ('0.75',
'1/3'); `file` is a name inside the folder; `sha256` the file's hash when it was written;
`max_abs_diff` the largest difference between the file's output under its runtime (ONNX
Runtime for `onnx`, ExecuTorch for `pte`, LiteRT for `tflite`) and the torch module's when it
was checked. `opset` is the ONNX opset of an `onnx` file, 0 for the other formats. A
quantized file (`export --quantize int8`) has its `dtype`, how it was quantized (`quantizer`)
and on what (`calibration`), and its agreement with the float model on the same inputs
(`top1_agreement`, `cosine`, `centred_cosine`, torch.quantize; `max_abs_diff` is then
that of the float file); a float file's
dtype is fp32 and the three are empty. A manifest written before these columns reads as fp32.
Later commands (`calibrate` with device logs, a
resumed export) match results to configurations through these rows, and refuse a file whose
hash no longer matches its row.

Nothing here imports torch.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from pathlib import Path

from ..dtypes import lookup as lookup_dtype
from ..errors import MobilecostError
from ..lang.values import exact_text, to_fraction
from ..util import write_atomic

MANIFEST_NAME = "manifest.csv"
MAX_MANIFEST_BYTES = 16 * 2**20  # a manifest larger than this is refused before it is read


class ManifestError(MobilecostError):
    """A manifest that cannot be read, or that no longer matches the files beside it."""


@dataclass(frozen=True, slots=True)
class ManifestRow:
    spec: str
    network: str
    alpha: Fraction
    resolution: int
    batch: int
    format: str
    opset: int
    file: str
    macs: int
    params: int
    sha256: str
    max_abs_diff: float
    torch_version: str
    dtype: str = "fp32"
    quantizer: str = ""
    calibration: str = ""
    top1_agreement: float | None = None
    cosine: float | None = None
    centred_cosine: float | None = None

    @property
    def config(self) -> tuple[str, Fraction, int, int, str, int, str]:
        """What the file was made from: network, α, resolution, batch, format, opset, dtype."""
        return (self.network, self.alpha, self.resolution, self.batch, self.format, self.opset,
                self.dtype)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ManifestRow))
#: The columns a manifest must have (those of a manifest written before quantized files).
REQUIRED_COLUMNS = COLUMNS[:COLUMNS.index("dtype")]


def file_name(spec_name: str, alpha: Fraction, resolution: int, batch: int, fmt: str,
              dtype: str = "fp32") -> str:
    """The file of one configuration, named as TF's published MobileNets are
    (`mobilenet_v1_0.75_224.onnx`, `mobilenet_v1_0.75_224_int8.onnx` quantized); α that is no
    finite decimal is written n-d (`1-3`), a batch above 1 adds `_bN`."""
    a = exact_text(alpha).replace("/", "-")
    return (f"{spec_name}_{a}_{resolution}" + (f"_b{batch}" if batch != 1 else "")
            + (f"_{dtype}" if dtype != "fp32" else "") + f".{fmt}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def to_text(rows: list[ManifestRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        d = asdict(r)
        d["alpha"] = exact_text(r.alpha)
        d["max_abs_diff"] = f"{r.max_abs_diff:.3g}"
        for k in ("top1_agreement", "cosine", "centred_cosine"):
            d[k] = "" if d[k] is None else f"{d[k]:.4f}"
        w.writerow([d[c] for c in COLUMNS])
    return buf.getvalue()


def write_manifest(folder: Path, rows: list[ManifestRow]) -> Path:
    """Write (atomically) the folder's manifest, rows sorted by file name."""
    return write_atomic(Path(folder) / MANIFEST_NAME, to_text(sorted(rows, key=lambda r: r.file)))


def _int(text: str, what: str, where: str, low: int = 0) -> int:
    if not text.isdigit() or len(text) > 30 or int(text) < low:
        raise ManifestError(f"{where}: {what} must be a whole number >= {low}, got {text!r}")
    return int(text)


def _row(d: dict[str, str], where: str) -> ManifestRow:
    try:
        alpha = to_fraction(d["alpha"])
    except MobilecostError:
        raise ManifestError(f"{where}: alpha {d['alpha']!r} is not a number") from None
    if alpha <= 0:
        raise ManifestError(f"{where}: alpha must be > 0, got {d['alpha']!r}")
    name = d["file"]
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ManifestError(f"{where}: file must be a file name in the manifest's folder, "
                            f"got {name!r}")
    sha = d["sha256"].lower()
    if len(sha) != 64 or any(ch not in "0123456789abcdef" for ch in sha):
        raise ManifestError(f"{where}: sha256 must be 64 hex digits, got {d['sha256']!r}")
    try:
        diff = float(d["max_abs_diff"])
    except ValueError:
        raise ManifestError(f"{where}: max_abs_diff {d['max_abs_diff']!r} is not a number") from None
    agreement = {}
    for k in ("top1_agreement", "cosine", "centred_cosine"):
        text = (d.get(k) or "").strip()
        try:
            agreement[k] = float(text) if text else None
        except ValueError:
            raise ManifestError(f"{where}: {k} {text!r} is not a number") from None
    dtype = (d.get("dtype") or "fp32").strip()
    try:
        lookup_dtype(dtype)
    except MobilecostError:
        raise ManifestError(f"{where}: dtype {dtype!r} is not one mobilecost knows") from None
    return ManifestRow(
        spec=d["spec"], network=d["network"], alpha=alpha,
        resolution=_int(d["resolution"], "resolution", where, 1),
        batch=_int(d["batch"], "batch", where, 1), format=d["format"],
        opset=_int(d["opset"], "opset", where, 1 if d["format"] == "onnx" else 0), file=name,
        macs=_int(d["macs"], "macs", where), params=_int(d["params"], "params", where),
        sha256=sha, max_abs_diff=diff, torch_version=d["torch_version"], dtype=dtype,
        quantizer=d.get("quantizer") or "", calibration=d.get("calibration") or "", **agreement)


def read_manifest(path: Path) -> list[ManifestRow]:
    """The rows of a manifest file, each checked; a bad one is one ManifestError naming the
    file and line. Two rows naming one file, or one configuration twice, are refused."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path}: larger than {MAX_MANIFEST_BYTES // 2**20} MiB; "
                                f"not a manifest")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest") from None
    except IsADirectoryError:
        raise ManifestError(f"{path}: is a folder; give the manifest file "
                            f"({path / MANIFEST_NAME})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot be read ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ManifestError(f"{path}: not a mobilecost manifest (no column "
                            f"{', '.join(missing)})")
    rows: list[ManifestRow] = []
    files: dict[str, int] = {}
    configs: dict[tuple, int] = {}
    for d in reader:
        where = f"{path}:{reader.line_num}"
        if None in d or any(d.get(c) is None for c in header):
            raise ManifestError(f"{where}: expected {len(header)} fields")
        row = _row(d, where)
        if row.file in files:
            raise ManifestError(f"{where}: file {row.file} is listed twice "
                                f"(also line {files[row.file]})")
        if row.config in configs:
            raise ManifestError(f"{where}: configuration α={exact_text(row.alpha)} "
                                f"{row.resolution} batch {row.batch} is listed twice "
                                f"(also line {configs[row.config]})")
        files[row.file] = configs[row.config] = reader.line_num
        rows.append(row)
    return rows


def check_file(folder: Path, row: ManifestRow, manifest: Path | None = None) -> Path | None:
    """The row's file in `folder` if it is there and its hash matches the row; None if it is
    not there. A file whose hash differs is a ManifestError: the file or the manifest was
    changed since the export."""
    path = Path(folder) / row.file
    if not path.is_file():
        return None
    got = sha256_file(path)
    if got != row.sha256:
        where = manifest or Path(folder) / MANIFEST_NAME
        raise ManifestError(
            f"{path}: sha256 {got[:12]}… does not match {where}'s {row.sha256[:12]}… (the file "
            f"or the manifest was edited); delete the file to export it again, or restore it")
    return path


__all__ = ["COLUMNS", "MANIFEST_NAME", "REQUIRED_COLUMNS", "ManifestError", "ManifestRow", "check_file", "file_name",
           "read_manifest", "sha256_file", "to_text", "write_manifest"]
