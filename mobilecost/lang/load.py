"""Where specs come from: the built-in ones shipped in `lang/specs/` (`builtin_names`), a
spec by name or path (`load_spec`), and a spec with another number of classes
(`with_classes`, `classes_of`)."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..errors import ConfigError, SpecError
from .parse import parse
from .spec import MAX_SPEC_BYTES, LayerDef, Spec
from .values import Channels

# --------------------------------------------------------------------------- loading

def builtin_names() -> list[str]:
    """Names of the specs shipped inside the package."""
    return sorted(_builtin_files())


@lru_cache(maxsize=1)
def _builtin_files() -> frozenset[str]:
    folder = resources.files("mobilecost.lang") / "specs"
    return frozenset(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".spec"))


@lru_cache(maxsize=None)
def _builtin(name: str) -> Spec:
    """A built-in spec, parsed once per process (a Spec is immutable: every caller may share
    it); package data does not change while the process runs."""
    builtin = resources.files("mobilecost.lang") / "specs" / f"{name}.spec"
    return parse(builtin.read_text(encoding="utf-8"), source=name)


def load_spec(name_or_path: str | Path | Spec) -> Spec:
    """A built-in spec by name (`mobilenet_v1`, parsed once per process) or a spec file by
    path (read each time: a file may change)."""
    if isinstance(name_or_path, Spec):
        return name_or_path
    text_name = str(name_or_path)
    if "/" not in text_name and not text_name.endswith(".spec") and text_name in _builtin_files():
        return _builtin(text_name)
    path = Path(text_name)
    if path.is_file():
        try:
            size = path.stat().st_size
            if size > MAX_SPEC_BYTES:
                raise SpecError(f"the spec file is {size:,} bytes; a spec may be at most "
                                f"{MAX_SPEC_BYTES:,} bytes ({MAX_SPEC_BYTES // 2**20} MiB)",
                                text_name)
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read spec file: {exc}", text_name) from None
        return parse(text, source=text_name)
    if path.exists():
        raise SpecError("not a spec file (it is a directory)", text_name)
    if "/" in text_name or path.suffix:
        raise SpecError("no such spec file", text_name)
    raise SpecError(f"unknown spec; built-in specs are {', '.join(builtin_names())}, "
                    f"or give the path of a spec file", text_name)


def with_classes(spec: Spec, classes: int) -> Spec:
    """The spec with `classes` outputs: its last statement, which must be a fixed-width
    classifier `fc N!` at the top level, becomes `fc classes!` (TF-slim's checkpoints have
    1001 classes, a background class first; torchvision's and Keras's 1000)."""
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ConfigError(f"the number of classes must be a positive integer, got {classes!r}")
    last = spec.body[-1] if spec.body else None
    if not (isinstance(last, LayerDef) and last.op == "fc" and last.channels is not None
            and last.channels.mode == "fixed"):
        raise SpecError("--classes needs a spec that ends in a fixed-width classifier "
                        "'fc N!'", spec.source, getattr(last, "line", 0))
    fc = last.replace(channels=Channels(classes, "fixed"))
    return replace(spec, body=spec.body[:-1] + (fc,))


def classes_of(spec: Spec) -> int | None:
    """The number of classes: N of a last statement `fc N!` at the top level, else None."""
    last = spec.body[-1] if spec.body else None
    if (isinstance(last, LayerDef) and last.op == "fc" and last.channels is not None
            and last.channels.mode == "fixed"):
        return last.channels.base
    return None
