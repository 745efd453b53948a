"""Latencies from the logs of the standard on-device benchmark tools.

Two tools, told apart by their lines:

* TFLite / LiteRT `benchmark_model` (tensorflow/lite/tools/benchmark). Its run ends with

      INFO: Inference timings in us: Init: 119515, First inference: 87112, Warmup (avg): 58147.4, Inference (avg): 63743.2

  and just before it the statistics of the timed runs,
  `INFO: count=1000 first=52162 curr=49785 min=49088 max=686105 avg=63743.2 std=60716 p5=49620 median=51891 p95=68628`.
  The latency taken is that line's **median** (51.891 ms here), not `Inference (avg)`: one
  stall of the phone (max 686 ms above) moves the mean by 12 ms and the median not at all,
  and mobilecost's own timings are medians too, so a target mixes like with like. The
  statistics line is the one whose `avg` equals `Inference (avg)` (checked); a log from a
  version that prints no median gives its `Inference (avg)`, and the row says `avg`.
  The model is the `Graph: [path]` the log names.
* ONNX Runtime's `onnxruntime_perf_test`. Its run ends with `Average inference time cost: 62.29
  ms` (`Average inference time cost total:` in recent versions) and, in versions that keep
  each run's time, `P50 Latency: 0.0603562 s`: the latency is P50 (the median) where the log
  has it, else the average. The log does not name its model; its own file name does.

A log is matched to a configuration by the model's file name (the `Graph:` path's, or the
log's own), without the suffix: `mobilenet_v1_0.75_224.tflite`, `mobilenet_v1_0.75_224.log`
and `mobilenet_v1_0.75_224.onnx` are one configuration. With a manifest the name must be
one of its files', or name the same spec, α, resolution and batch as one (`mobilenet_v1_1.0_224`
for `mobilenet_v1_1_224.onnx`); without one it is read as `SPEC_ALPHA_RES[_bBATCH]`, the names `export`
writes and TF's published MobileNets carry (`mobilenet_v1_1.0_224`).

The precision of a log's model (`latency.precision`): its manifest row's `dtype`, else the
model's file name (`mobilenet_v1_1.0_224_quant`, `..._int8`: int8), else what the log states
(a TFLite op profile with a QUANTIZE operator: int8), else fp32. The precision word is not
part of the configuration: `mobilenet_v1_1.0_224_quant` is mobilenet_v1 α 1 at 224, in int8.

Refused, each in one MobilecostError: a log of neither tool, a log cut short (the tool
started but its summary line is missing), a log that matches no configuration, and two logs
of one configuration whose latencies differ by more than NOISY_IQR (10%) of the lower
(within that, the lower is kept: noise only adds time), logs of two precisions, and a log whose
name says another precision than its manifest row or its own op profile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from ..dtypes import lookup as lookup_dtype
from ..errors import MobilecostError
from ..lang.identity import Network, network_of
from ..lang.values import exact_text, to_fraction
from .manifest import ManifestRow, check_file
from .measurements import Config, Measurements, Point
from .options import NOISY_IQR
from .precision import log_dtype, short, single, split_name

MAX_LOG_BYTES = 64 * 2**20  # a log larger than this is refused before it is read
LOG_SUFFIXES = (".log", ".txt")
TOOLS = {"tflite": "TFLite benchmark_model", "ort": "onnxruntime_perf_test"}

_NUM = r"([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"
_TFLITE_SUMMARY = re.compile(r"Inference timings in us:.*?Inference \(avg\):\s*" + _NUM)
_TFLITE_STATS = re.compile(r"\bcount=(\d+)\b(.*)")
_TFLITE_GRAPH = re.compile(r"\bGraph:\s*\[([^\]]*)\]")
_TFLITE_START = re.compile(r"Running benchmark for|Initialized session in|STARTING!")
_ORT_AVG = re.compile(r"Average inference time cost(?: total)?:\s*" + _NUM + r"\s*ms")
_ORT_P50 = re.compile(r"P50 Latency:\s*" + _NUM + r"\s*s\b")
_ORT_COUNT = re.compile(r"Total inference requests:\s*(\d+)")
_ORT_START = re.compile(r"Session creation time cost:")
_ORT_LAST = re.compile(r"P999 Latency:")
_NAME = re.compile(r"^(?P<spec>.+)_(?P<alpha>[0-9]+(?:\.[0-9]+)?|[0-9]+-[0-9]+)_(?P<res>[0-9]+)"
                   r"(?:_b(?P<batch>[0-9]+))?$")


@dataclass(frozen=True, slots=True)
class DeviceLog:
    """What one benchmark log says."""

    path: Path
    tool: str            # 'tflite' or 'ort'
    model: str           # the model's file name without suffix, the key a configuration is matched by
    latency_ms: float
    statistic: str       # 'median' or 'avg'
    runs: int | None
    dtype: str | None = None  # the precision the model's name or the log states, None if neither
    dtype_from: str = ""      # which: "name '_quant'", 'op profile: QUANTIZE', 'manifest row of F'

    @property
    def where(self) -> str:
        """The log, and what says its precision: 'a.log (name '_quant')'."""
        return f"{self.path} ({self.dtype_from or 'no precision stated: fp32'})"


def _with_dtype(log: DeviceLog, text: str) -> DeviceLog:
    """The log with the precision its model's name or its text states; the two disagreeing is
    refused."""
    _, by_name, word = split_name(log.model)
    stated = log_dtype(text)
    if by_name is not None and stated is not None and by_name != stated:
        raise MobilecostError(f"{log.path}: model {log.model!r} is named {short(by_name)} "
                              f"('{word}') but the log's op profile runs a QUANTIZE operator "
                              f"({short(stated)})")
    if by_name is not None:
        return replace(log, dtype=by_name, dtype_from=f"name '{word}'")
    if stated is not None:
        return replace(log, dtype=stated, dtype_from="op profile: QUANTIZE")
    return log


def _stats(line: str) -> dict[str, float]:
    out = {}
    for key, value in re.findall(r"(\w+)=" + _NUM, line):
        out[key] = float(value)
    return out


def parse_tflite(text: str, path: Path) -> DeviceLog:
    summary = None
    stats_lines: list[str] = []
    graph = None
    for line in text.splitlines():
        if m := _TFLITE_SUMMARY.search(line):
            summary = float(m.group(1))
        elif _TFLITE_STATS.search(line):
            stats_lines.append(line)
        elif graph is None and (m := _TFLITE_GRAPH.search(line)):
            graph = m.group(1).strip()
    if summary is None:
        raise MobilecostError(f"{path}: TFLite benchmark_model log cut short: no 'Inference "
                              f"timings in us: ... Inference (avg)' line (did the run finish?)")
    # the timed runs' statistics: the last line whose avg is the summary's
    timed = next((s for s in map(_stats, reversed(stats_lines))
                  if "avg" in s and abs(s["avg"] - summary) <= 1e-6 * max(1.0, summary)), None)
    if timed is not None and "median" in timed:
        us, statistic = timed["median"], "median"
    else:
        us, statistic = summary, "avg"
    model = Path(graph.replace("\\", "/")).stem if graph else path.stem
    return _with_dtype(DeviceLog(path, "tflite", model, us / 1e3, statistic,
                                 int(timed["count"]) if timed is not None and "count" in timed
                                 else None), text)


def parse_ort(text: str, path: Path) -> DeviceLog:
    avg = _ORT_AVG.search(text)
    if avg is None:
        raise MobilecostError(f"{path}: onnxruntime_perf_test log cut short: no 'Average "
                              f"inference time cost' line (did the run finish?)")
    p50 = _ORT_P50.search(text)
    if "Min Latency:" in text and not _ORT_LAST.search(text):
        raise MobilecostError(f"{path}: onnxruntime_perf_test log cut short: its latency "
                              f"percentiles stop before 'P999 Latency'")
    count = _ORT_COUNT.search(text)
    if p50 is not None:
        ms, statistic = float(p50.group(1)) * 1e3, "median"
    else:
        ms, statistic = float(avg.group(1)), "avg"
    return _with_dtype(DeviceLog(path, "ort", path.stem, ms, statistic,
                                 int(count.group(1)) if count else None), text)


def read_log(path: Path) -> DeviceLog:
    """One log file, parsed by the tool that wrote it."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_LOG_BYTES:
            raise MobilecostError(f"{path}: larger than {MAX_LOG_BYTES // 2**20} MiB; not a "
                                  f"benchmark log")
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise MobilecostError(f"{path}: no such log") from None
    except OSError as exc:
        raise MobilecostError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if _TFLITE_SUMMARY.search(text) or _TFLITE_START.search(text):
        log = parse_tflite(text, path)
    elif _ORT_AVG.search(text) or _ORT_START.search(text):
        log = parse_ort(text, path)
    else:
        raise MobilecostError(f"{path}: neither a TFLite benchmark_model log ('Inference timings "
                              f"in us') nor an onnxruntime_perf_test one ('Average inference "
                              f"time cost')")
    if not log.latency_ms > 0:
        raise MobilecostError(f"{path}: the latency read is {log.latency_ms:g} ms, not positive")
    return log


def log_files(paths: Sequence[Path]) -> list[Path]:
    """The log files of `paths`: files as given, folders' *.log and *.txt files (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix in LOG_SUFFIXES and f.is_file())
            if not found:
                raise MobilecostError(f"{p}: no benchmark logs (*.log, *.txt) in this folder")
            out += found
        else:
            out.append(p)
    return out


def _config_from_name(model: str, spec: str | None, where: Path) -> Config:
    m = _NAME.match(split_name(model)[0])
    if m is None:
        raise MobilecostError(f"{where}: model {model!r} matches no configuration: without "
                              f"--manifest its name must be SPEC_ALPHA_RES (as "
                              f"mobilenet_v1_0.75_224)")
    try:
        network = network_of(spec or m["spec"])
    except MobilecostError as exc:
        raise MobilecostError(f"{where}: model {model!r}: {exc}") from None
    alpha = to_fraction(m["alpha"].replace("-", "/"))
    return Config(network.name, alpha, int(m["res"]), int(m["batch"] or 1), network)


def _config_from_manifest(log: DeviceLog, rows: dict[str, ManifestRow], network: Network | None,
                          manifest: Path) -> tuple[Config, ManifestRow]:
    row = rows.get(log.model)
    if row is None and (m := _NAME.match(split_name(log.model)[0])):  # another spelling: 1.0 for 1
        key = (to_fraction(m["alpha"].replace("-", "/")), int(m["res"]), int(m["batch"] or 1))
        found = [r for r in rows.values() if (r.alpha, r.resolution, r.batch) == key
                 and Path(r.file).stem.startswith(m["spec"] + "_")
                 and (log.dtype is None or lookup_dtype(r.dtype).name == log.dtype)]
        row = found[0] if len(found) == 1 else None
    if row is None:
        raise MobilecostError(f"{log.path}: model {log.model!r} matches no configuration of "
                              f"{manifest} (its files: {', '.join(sorted(rows)[:3])}"
                              f"{', …' if len(rows) > 3 else ''})")
    net = network
    if net is None:
        try:
            net = network_of(row.spec)
        except MobilecostError:
            raise MobilecostError(f"{manifest}: spec {row.spec!r} is no built-in; give its spec "
                                  f"file with --spec") from None
    if log.dtype is not None and lookup_dtype(row.dtype).name != log.dtype:
        raise MobilecostError(f"{log.where}: the model is {short(log.dtype)} but {manifest} "
                              f"says {row.file} is {lookup_dtype(row.dtype).short}")
    if net.key != row.network:
        raise MobilecostError(f"{manifest}: {row.file} was exported from another network than "
                              f"{net.name} ({row.network} vs {net.key}); give the spec it was "
                              f"exported from with --spec")
    return Config(net.name, row.alpha, row.resolution, row.batch, net), row


def points_from_logs(paths: Sequence[Path], manifest_rows: Iterable[ManifestRow] | None = None,
                     manifest: Path | None = None, spec: str | None = None
                     ) -> tuple[list[Point], list[DeviceLog], str]:
    """The measured points of benchmark logs (files, or folders of *.log / *.txt), matched to
    configurations through the manifest's rows or else the file-name pattern; also the logs
    read (each with its precision where the manifest or the log says one) and the tool they
    come from. See the module's docstring for what is refused."""
    logs = [read_log(p) for p in log_files(paths)]
    tools = {log.tool for log in logs}
    if len(tools) > 1:
        raise MobilecostError("logs of both TFLite benchmark_model and onnxruntime_perf_test; "
                              "calibrate one target per runtime")
    network = network_of(spec) if spec is not None else None
    rows = None
    if manifest_rows is not None:
        rows = {Path(r.file).stem: r for r in manifest_rows}
    configs: list[Config] = []
    for k, log in enumerate(logs):
        if rows is not None:
            config, row = _config_from_manifest(log, rows, network, manifest or Path("manifest"))
            check_file(manifest.parent if manifest else Path("."), row, manifest)
            logs[k] = replace(log, dtype=lookup_dtype(row.dtype).name,
                              dtype_from=f"manifest row of {row.file}")
        else:
            config = _config_from_name(log.model, spec, log.path)
        configs.append(config)
    # one precision before one latency per configuration: an int8 and an fp32 log of one
    # configuration are two precisions, not two timings that disagree
    single({log.where: log.dtype or "float32" for log in logs}, "logs")
    seen: dict[Config, tuple[DeviceLog, int]] = {}
    points: list[Point] = []
    for log, config in zip(logs, configs):
        if config in seen:
            other, i = seen[config]
            low, high = sorted((other.latency_ms, log.latency_ms))
            if high - low > NOISY_IQR * low:
                raise MobilecostError(
                    f"{log.path} and {other.path} both time {config.spec} α="
                    f"{exact_text(config.alpha)} {config.resolution} and disagree "
                    f"({other.latency_ms:.3f} vs {log.latency_ms:.3f} ms, more than "
                    f"{NOISY_IQR:.0%} apart); keep one, or time it again")
            if log.latency_ms < other.latency_ms:
                points[i] = Point(config, log.latency_ms)
                seen[config] = (log, i)
            continue
        seen[config] = (log, len(points))
        points.append(Point(config, log.latency_ms))
    return points, logs, TOOLS[tools.pop()]


def measurements_from_logs(paths: Sequence[Path], manifest: Path | None = None,
                           spec: str | None = None):
    """`targets.Measurements` from benchmark logs (see `points_from_logs`), each configuration
    checked to be buildable; and a note on what was read."""
    from ..lang.spec import build
    from .manifest import read_manifest
    from .measurements import MAX_LATENCY_MS, MIN_LATENCY_MS, Measurements

    rows = read_manifest(manifest) if manifest is not None else None
    points, logs, tool = points_from_logs(paths, rows, manifest, spec)
    dtype = single({log.where: log.dtype or "float32" for log in logs}, "logs")
    for p in points:
        try:
            build(p.config.network.spec(), p.config.alpha, p.config.resolution)
        except MobilecostError as exc:
            raise MobilecostError(f"{p.config.label}: {exc}") from None
        if not MIN_LATENCY_MS <= p.latency_ms <= MAX_LATENCY_MS:
            raise MobilecostError(f"{p.config.label}: a latency of {p.latency_ms:g} ms is out of "
                                  f"range")
    stats = sorted({log.statistic for log in logs})
    kinds = {"name": "file names", "op": "op profiles", "manifest": "manifest"}
    said = sorted({kinds[log.dtype_from.split(" ")[0]] for log in logs if log.dtype_from})
    note = (f"{len(logs)} {tool} log(s), {len(points)} configuration(s); latency: the "
            f"{' or '.join(stats)} of each log's timed runs"
            + (" (median where the log gives one, else the average)" if len(stats) > 1 else "")
            + f"; precision {short(dtype)} ("
            + (f"by the {', '.join(said)}" if said else "no log names one: fp32") + ")")
    return Measurements(tuple(points), dtype, tool), note


def read_inputs(paths: Sequence[Path], manifest: Path | None = None,
                spec: str | None = None) -> tuple[Measurements, str, list[str]]:
    """What `calibrate` is given: one CSV of measurements, or device benchmark logs (files or
    folders); the measurements, their source as text, and notes on what was read."""
    from .measurements import read_measurements

    csvs = [m for m in paths if m.suffix.lower() == ".csv"]
    if csvs:
        if len(paths) > 1:
            raise MobilecostError("give one CSV of measurements, or benchmark logs, not both "
                                  "or several CSVs")
        if manifest is not None or spec is not None:
            raise MobilecostError("--manifest and --spec go with benchmark logs, not a CSV")
        if paths[0].is_dir():
            raise MobilecostError(f"{paths[0]}: is a folder, not a CSV")
        return read_measurements(paths[0]), str(paths[0]), []
    data, note = measurements_from_logs(paths, manifest, spec)
    return data, ", ".join(map(str, paths)), [note]


__all__ = ["DeviceLog", "LOG_SUFFIXES", "TOOLS", "log_files", "measurements_from_logs",
           "parse_ort", "parse_tflite", "points_from_logs", "read_inputs", "read_log"]
