"""The layer-spec language's text: tokenise and parse a spec (its canonical text is
`lang.spec.format_spec`).

A spec is a line-oriented text file describing a network at α = 1. Grammar::

    spec       := line*
    line       := [statement] ['#' comment]
    statement  := header | layer | block-open | '}'

    header     := 'name' NAME
                | 'input' SIZE INCH                  # base input size; its channels (3! for an image)
                | 'rounding' 'int' ['min=' N]        # c -> max(min, floor(α·c)): the paper, Keras, TF-slim
                | 'rounding' 'multiple' N            # c -> nearest multiple of N, not below 90% (MobileNetV2)
                | 'activation' ACT                   # default activation after conv layers

    layer      := 'conv' K CH [sS] [opts]            # full K×K convolution to CH channels
                | 'dw'   K    [sS] [opts]            # depthwise K×K convolution, channels unchanged
                | 'pw'   CH   [sS] [opts]            # pointwise 1×1 convolution to CH channels
                | 'ir'   CH   [sS] ['t=' T | 'h=' CH] ['k=' K] ['act=' ACT] ['se=' R] ['gate=' GATE]
                         ['squeeze=' (exp | in)] ['seact=' ACT] ['pad=' (same | tf)]
                                                     # inverted residual (MobileNetV2): pw to
                                                     #   round(T·in) (T: 6, 2.5 or 7/3) or to h=CH
                                                     #   (MobileNetV3's widths; none if it equals in),
                                                     #   dw K×K, linear pw to CH; add when s=1, in=CH;
                                                     #   act: after the expansion and the depthwise;
                                                     #   se=R: squeeze-and-excitation after the dw,
                                                     #   squeezing to make_divisible(hidden/R, 8)
                                                     #   (squeeze=exp) or int(in/R) (squeeze=in)
                | 'se'   R    ['act=' ACT] ['gate=' GATE] ['w=' CH]
                                                     # squeeze-and-excitation: global pool, 1×1 conv
                                                     #   (bias) to make_divisible(c/R, 8), act (relu),
                                                     #   1×1 conv (bias) to c, gate, channel-wise scale;
                                                     #   w=CH: that squeeze width instead
                | 'avgpool' ('global' | K [sS])      # pooling, no padding; stride defaults to K
                | 'maxpool' K [sS]
                | 'fc' CH ['act=' ACT] ['bias=' yes|no]
                                                     # fully connected on the flattened input;
                                                     #   no activation unless act= is given
                | 'uib' CH [sS] ['a=' K0] ['k=' K0] ['t=' T] ['act=' ACT] ['ls=' yes|no]
                        ['pad=' (same | tf)]
                                                     # Universal Inverted Bottleneck (MobileNetV4):
                                                     #   [dw a×a], pw to make_divisible(in·T, 8),
                                                     #   [dw k×k], linear pw to CH, [layer scale];
                                                     #   add when s=1, in=CH (a=0 / k=0: none)
                | 'fused' CH [sS] ['t=' T] ['k=' K] ['act=' ACT] ['ls=' yes|no] ['pad=' (same | tf)]
                                                     # K×K conv to in·T, linear pw to CH
                | 'attn' CH ['heads=' N] ['d=' N] ['kv=' N] ['kvs=' N] ['k=' K] ['bn=' yes|no]
                        ['ls=' yes|no] ['pad=' (same | tf)]
                                                     # self-attention; kv=1: Mobile MQA; kvs:
                                                     #   key/value downsampling stride
                | 'mixdw' K(','K)* [sS] ['act=' ACT] ['bn=' yes|no] ['pad=' (same | tf)]
                                                     # MixNet's mixed depthwise convolution
                | 'ghost' CH [sS] ['ratio=' N] ['k=' K] ['dw=' K] ['act=' ACT] ['pad=' (same | tf)]
                                                     # GhostNet's ghost module
                | 'shuffle' N                        # ShuffleNet's channel shuffle, N groups
                | 'norm'                             # batchnorm on its own
                | 'layerscale'                       # a learned γ per channel

    block-open := 'repeat' N '{'                     # the body N times
                | 'residual' '{'                     # the body, then add its input to its output

    CH         := INT       # scales with α by the spec's rounding rule
                | INT '!'   # fixed: never scales (the number of classes)
                | INT '+'   # scales with α but never below INT (MobileNetV2's last 1280)
    SIZE       := INT       # a square input, 224
                | INT 'x' INT   # height x width, 224x160 (torch's NCHW order; '×' too)
    INCH       := INT '!' | INT '+'   # as CH
                | INT '*'   # scales with α, as CH does: the input of a block cut from a network
                            # (a bare INT is refused: 'input 320 240' is not 240 channels)
    sS         := 's' INT   # stride (default 1)
    opts       := 'act=' ACT | 'bn=' (yes | no) | 'pad=' (same | valid | tf) | 'g=' N
                | 'bias=' (yes | no)
                                                     # g: groups (conv, pw); tf: TensorFlow's SAME;
                                                     #   bias: the convolution's own (default no)
    K0         := K | '0'                            # a kernel size, or 0: no such convolution
    ACT        := relu | relu6 | hswish | hsigmoid | sigmoid | silu | gelu | none
    GATE       := hsigmoid | sigmoid                 # hsigmoid (MobileNetV3) is the default
    R          := INT                                # SE ratio, ≥ 1

Blocks close with '}' on a line of its own and nest, at most MAX_DEPTH (64) deep. A spec may
build at most MAX_LAYERS (100,000) layers, counted with repeats multiplied out before anything
is built, and hold at most MAX_SPEC_BYTES (8 MiB) of text. Convolutions use SAME padding by
default, so a feature map of side h leaves a stride-s layer with side ceil(h / s); pooling uses none
(floor((h - k) / s) + 1), and 'avgpool global' averages the whole map to 1×1. Each rule applies
to the height and the width on their own: a 224x160 input leaves a 7×5 map after stride 32.

Each layer op's arguments and options are declared once, in the op table (`lang.ops`), each
with how its text is read; this parser is generic over that table (an op registered later
parses too) and checks only the syntax: headers, blocks, the tokens of a statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import SpecError
from .kinds import ACTIVATIONS
from .opbase import channel_count, choice, positive
from .ops import STATEMENTS
from .spec import (
    MAX_DEPTH,
    MAX_LAYERS,
    MAX_SPEC_BYTES,
    LayerDef,
    Node,
    Repeat,
    Residual,
    Spec,
    check_expansion,
)
from .values import MAX_CHANNELS, MAX_DIGITS, MAX_RESOLUTION, Channels, Rounding

# --------------------------------------------------------------------------- parser

_TOKEN = re.compile(r"\S+")
_INT = re.compile(r"[0-9]+")
_STRIDE = re.compile(r"s([0-9]+)")  # the stride's option is written sN, not s=N
_HEADERS = ("name", "input", "rounding", "activation")


@dataclass(slots=True)
class _Tok:
    text: str
    line: int
    col: int


def _token_lines(text: str, chunk: int = 1 << 20) -> Iterator[list[_Tok]]:
    """The tokens of each line that has any, read lazily (a refused spec is never tokenised
    whole). Lines break as str.splitlines breaks them; chunks end just after a newline, where
    splitlines breaks anyway."""
    n, start = 0, 0
    while start < len(text):
        end = text.find("\n", start + chunk)
        end = len(text) if end < 0 else end + 1
        for raw in text[start:end].splitlines():
            n += 1
            code = raw.split("#", 1)[0]
            toks = [_Tok(m.group(), n, m.start() + 1) for m in _TOKEN.finditer(code)]
            if toks:
                yield toks
        start = end


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.headers: dict[str, object] = {}
        self.lines = _token_lines(text)  # one iterator, shared by the nested blocks
        self.depth = 0  # blocks open
        self.written = 0  # layer statements so far: each expands to at least one layer

    def error(self, msg: str, tok: _Tok | None, show: bool = True) -> SpecError:
        if tok is None:
            return SpecError(msg, self.source)
        return SpecError(msg, self.source, tok.line, tok.col, tok.text if show else None)

    def parse(self) -> Spec:
        body = self.block(None)
        if "input" not in self.headers:
            raise SpecError("missing 'input SIZE CHANNELS' line (e.g. 'input 224 3!')", self.source)
        if not body:
            raise SpecError("the spec has no layers", self.source)
        (height, width), in_c = self.headers["input"]
        check_expansion(body, self.source)
        return Spec(
            name=str(self.headers.get("name", Path(self.source).stem)),
            resolution=height, in_channels=in_c, body=body,
            rounding=self.headers.get("rounding", Rounding()),
            activation=str(self.headers.get("activation", "relu")),
            source=self.source, width=None if width == height else width)

    def block(self, opener: _Tok | None) -> tuple[Node, ...]:
        if opener is not None:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"blocks nest more than {MAX_DEPTH} deep", opener, show=False)
        nodes: list[Node] = []
        for toks in self.lines:
            head = toks[0]
            kw = head.text
            if kw == "}":
                if opener is None:
                    raise self.error("'}' closes no block", head)
                self.expect_end(toks, 1)
                if not nodes:
                    raise self.error("empty block", opener)
                self.depth -= 1
                return tuple(nodes)
            if kw in _HEADERS:
                if opener is not None:
                    raise self.error(f"'{kw}' must be at the top level, not inside a block", head)
                self.header(toks)
            elif kw == "repeat":
                count = self.int_arg(toks, 1, "repeat count")
                self.open_brace(toks, 2)
                nodes.append(Repeat(count, self.block(head), line=head.line))
            elif kw == "residual":
                self.open_brace(toks, 1)
                nodes.append(Residual(self.block(head), line=head.line))
            elif kw in STATEMENTS:
                self.written += 1
                if self.written > MAX_LAYERS:
                    raise self.error(f"more than {MAX_LAYERS:,} layers written; a spec may "
                                     f"expand to at most {MAX_LAYERS:,}", head, show=False)
                nodes.append(self.layer(toks))
            else:
                keywords = (*STATEMENTS, *_HEADERS, "repeat", "residual", "}")
                raise self.error(f"unknown layer kind; expected one of {', '.join(keywords)}", head)
        if opener is not None:
            raise self.error(f"'{opener.text}' block opened here is never closed with '}}'",
                             opener, show=False)
        return tuple(nodes)

    # -- helpers
    def arg(self, toks: list[_Tok], i: int, what: str) -> _Tok:
        if i >= len(toks):
            last = toks[-1]
            raise SpecError(f"'{toks[0].text}' needs {what}", self.source, last.line,
                            last.col + len(last.text))
        return toks[i]

    def read(self, tok: _Tok, reader: Callable[[str], Any], text: str | None = None) -> Any:
        """`reader` (an op table reader) on the token's text, its ValueError as this token's
        SpecError (the token shown unless it is longer than a number may be)."""
        try:
            return reader(tok.text if text is None else text)
        except ValueError as exc:
            raise self.error(str(exc), tok, show=len(tok.text) <= MAX_DIGITS) from None

    def int_arg(self, toks: list[_Tok], i: int, what: str) -> int:
        return self.read(self.arg(toks, i, what), positive(what))

    def input_size(self, tok: _Tok) -> tuple[int, int]:
        """`224` or `224x160` (height x width)."""
        h_text, x, w_text = tok.text.replace("×", "x").partition("x")
        if x and not (h_text and w_text):
            raise self.error("input size must be HEIGHTxWIDTH with both sides (e.g. 224x160)", tok)
        h = self.read(tok, positive("input height" if x else "input resolution", MAX_RESOLUTION),
                      h_text)
        return (h, self.read(tok, positive("input width", MAX_RESOLUTION), w_text) if x else h)

    def input_channels(self, tok: _Tok, res: tuple[int, int]) -> Channels:
        """The input's channels, with their mark: `3!` (fixed: an image), `64+` (never below),
        `512*` (scales with α, as a layer's do: the input of a block cut from a network). A bare
        number is refused: `input 320 240` would read as 240 channels of a 320×320 input."""
        m = re.fullmatch(r"([0-9]+)\*", tok.text)
        if m:
            return self.read(tok, channel_count("input channel count"), m.group(1))
        if _INT.fullmatch(tok.text):
            raise self.error(
                f"input channels need a mark: {tok.text}! (fixed, as an image's 3!) or "
                f"{tok.text}* (scaling with alpha); a {res[0]}x{tok.text} input is written "
                f"'input {res[0]}x{tok.text} 3!'", tok)
        return self.read(tok, channel_count("input channel count"))

    def open_brace(self, toks: list[_Tok], i: int) -> None:
        tok = self.arg(toks, i, "'{' to open its block")
        if tok.text != "{":
            raise self.error("expected '{' to open the block", tok)
        self.expect_end(toks, i + 1)

    def expect_end(self, toks: list[_Tok], i: int) -> None:
        if i < len(toks):
            raise self.error(f"unexpected token after '{toks[0].text}'", toks[i])

    def header(self, toks: list[_Tok]) -> None:
        kw = toks[0]
        if kw.text in self.headers:
            raise self.error(f"'{kw.text}' given twice", kw, show=False)
        if kw.text == "name":
            tok = self.arg(toks, 1, "a name")
            if not re.fullmatch(r"[A-Za-z0-9_.\-]+", tok.text):
                raise self.error("name may hold letters, digits, '_', '-' and '.' only", tok)
            self.expect_end(toks, 2)
            self.headers["name"] = tok.text
        elif kw.text == "input":
            res = self.input_size(self.arg(toks, 1, "an input size (224, or 224x160)"))
            chans = self.input_channels(self.arg(toks, 2, "the input channels (3! for an image)"), res)
            self.expect_end(toks, 3)
            self.headers["input"] = (res, chans)
        elif kw.text == "activation":
            tok = self.arg(toks, 1, "an activation")
            self.read(tok, choice("activation", tuple(ACTIVATIONS)))
            self.expect_end(toks, 2)
            self.headers["activation"] = tok.text
        else:  # rounding
            tok = self.arg(toks, 1, "a rule: 'int [min=N]' or 'multiple N'")
            if tok.text == "int":
                minimum = 1
                if len(toks) > 2:
                    opt = toks[2]
                    if not opt.text.startswith("min="):
                        raise self.error("expected 'min=N'", opt)
                    minimum = self.read(opt, positive("min", MAX_CHANNELS), opt.text[4:])
                self.expect_end(toks, 3)
                self.headers["rounding"] = Rounding("int", min=minimum)
            elif tok.text == "multiple":
                divisor = self.read(self.arg(toks, 2, "divisor"), positive("divisor", MAX_CHANNELS))
                self.expect_end(toks, 3)
                self.headers["rounding"] = Rounding("multiple", divisor=divisor)
            else:
                raise self.error("rounding must be 'int' or 'multiple N'", tok)

    def layer(self, toks: list[_Tok]) -> LayerDef:
        """A layer statement, read by its op's grammar (`ops.OPS[op].grammar`): its arguments,
        then its options, each by its own reader."""
        head = toks[0]
        rule = STATEMENTS[head.text]
        grammar = rule.grammar
        fields: dict[str, Any] = {}
        for i, arg in enumerate(grammar.args, start=1):
            fields[arg.field] = self.read(self.arg(toks, i, arg.what), arg.read)
        allowed = {o.key: o for o in rule.options_for(LayerDef(head.text, **fields))}
        where: dict[str, _Tok] = {}
        for tok in toks[1 + len(grammar.args):]:
            m = _STRIDE.fullmatch(tok.text)
            key, val = ("s", m.group(1)) if m else (tok.text.split("=", 1) + [None])[:2]
            if val is None or key not in allowed:
                opts = ", ".join(sorted("sN" if a == "s" else f"{a}=" for a in allowed)) or "none"
                raise self.error(f"unexpected argument to '{head.text}' (options: {opts})", tok)
            if key in where:
                raise self.error(f"'{key}' given twice", tok)
            where[key] = tok
            fields[allowed[key].field] = self.read(tok, allowed[key].read, val)
        d = LayerDef(head.text, line=head.line, **fields)
        wrong = rule.check(d, frozenset(where))
        if wrong is not None:
            message, key = wrong
            raise self.error(message, where[key] if key in where else toks[min(1, len(toks) - 1)])
        return d


def parse(text: str, source: str = "<spec>") -> Spec:
    """Parse spec text; errors name `source`, the line, the column and the offending token.

    Text longer than MAX_SPEC_BYTES characters, blocks nested deeper than MAX_DEPTH and bodies
    that would build more than MAX_LAYERS layers are refused before any of it is expanded."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"the spec is {len(text):,} characters long; a spec may be at most "
                        f"{MAX_SPEC_BYTES:,} ({MAX_SPEC_BYTES // 2**20} MiB)", source)
    return _Parser(text, source).parse()
