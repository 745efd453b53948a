"""Notes on measured timings, as every report of them gives them: the setting (device, runtime,
threads, dtype, batch), what `latency_ms` is, and the noisy and the cached rows. `sweep
--measure` and `measure` give them alike."""

from __future__ import annotations

from typing import Any

from ..runtimes import RUNTIMES


def setting_note(row: dict[str, Any]) -> str:
    """Device, torch, threads, dtype, batch and format of a measurement, in one line."""
    rt = RUNTIMES.get(row.get("runtime") or "torch")
    if rt is not None and rt.file_format:  # a runtime that runs the exported file
        file = "exported file"
        if row["dtype"] in rt.quantizes:
            file = (f"{row['dtype']} file ({rt.quantizer}; calibrated on synthetic images, as "
                    f"`export --quantize` makes it by default)")
        return (f"{row['device_name']} (cpu), "
                f"{rt.describe(row['runtime_version'], row['graph_optimization'])} on the "
                f"{file}, {row['threads']} threads, {row['dtype']}, batch {row['batch']}.")
    return (f"{row['device_name']} ({row['device']}), torch {row['torch_version']}, "
            f"{row['threads']} threads, {row['dtype']}, batch {row['batch']}, "
            f"{row['memory_format']}" + (", torch.compile" if row["compile"] else "")
            + (", CUDA graphs" if row["cuda_graphs"] else "") + ".")


def timing_note(rows: list[dict[str, Any]], rounds: int) -> str:
    """What latency_ms is, for a report's notes."""
    if rounds > 1:
        return (f"latency_ms: the lowest of {rounds} round medians, latency_median_ms their "
                f"median; the grid was timed {rounds} times, one round after the other, and "
                "noise only ever adds time. Each round median is over `runs` timed runs "
                "(torch.utils.benchmark adaptive_autorange, after warm-up).")
    return ("latency_ms: median of `runs` timed runs (torch.utils.benchmark "
            "adaptive_autorange, after warm-up); each run averages calls_per_run calls.")


def noisy_note(rows: list[dict[str, Any]]) -> str | None:
    """A note on the rows flagged noisy, if any."""
    noisy = [r for r in rows if r.get("noisy")]
    if not noisy:
        return None
    return (f"{len(noisy)} of {len(rows)} timings are noisy (column noisy: IQR above 10% of the "
            f"median, or the machine's load above its cores while timing); they were taken "
            f"again and will be measured again on the next run.")


def measurement_notes(rows: list[dict[str, Any]], rounds: int, what: str = "") -> list[str]:
    """The setting, what latency_ms is, the noisy and the cached rows, as notes (`what`: a
    label for the setting, such as 'measured')."""
    if not rows:
        return []
    notes = [(f"{what}: " if what else "") + setting_note(rows[0]), timing_note(rows, rounds)]
    if noisy := noisy_note(rows):
        notes.append(noisy)
    cached = sum(1 for r in rows if r.get("cached"))
    if cached:
        notes.append(f"{cached} of {len(rows)} {what + ' ' if what else ''}rows come from the "
                     f"measurement cache (--fresh measures again).")
    return notes


__all__ = ["measurement_notes", "noisy_note", "setting_note", "timing_note"]
