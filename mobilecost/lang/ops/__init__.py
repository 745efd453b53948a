"""The op table: every layer op declared once.

An op is one class registered with `@register` (`lang.opbase`); `OPS` maps its name to its one
instance. It declares, in one place:

* its **grammar**: positional arguments and options, each with how its text is read and
  written (the shared ones are below; an op declares its own beside it), for the ops written
  as a statement of a spec; the canonical text (`text`) follows from it;
* how the spec **builder** turns the statement into concrete layers (`build`: one `emit`,
  or several, as `ir` does), and what else makes a statement wrong (`check`);
* for the ops that are concrete layers: its **kind** (a `LayerKind`), its **size rule**
  (`out_size`), its **cost rules** (Mult-Adds, weights, biases, batchnorm parameters,
  elements read) and how Table 1 prints it (`describe`, `filter_shape`).

The torch module of each concrete op is registered, under the same name, in
`mobilecost.torch.build.MODULES` (only `mobilecost.torch` imports torch).

The ops live by family: `common` (pure formulas, squeeze-and-excitation's constants, the
shared options and checks), `basic` (MobileNet v1 to V3 and MnasNet), `mnv4` (MobileNetV4's
blocks and attention), `paths` (parallel paths, layout, views). This package imports them in
that order, which is the order of `OPS` and of the statements.

Adding an op: write one `Op` subclass in the module of its family with `@register` (its
options too, if it has new ones; shared ones in `common`; a new module imported here), its
torch module in `mobilecost/torch/build.py` with `@register_module`, and its tests;
`tests/lang/test_ops.py` checks that every op has what its role needs. The grid engine
runs `build` with channel counts that are int64 arrays over α (see `Op.build`): integer
arithmetic and `lang.values`' helpers run on both; an op that cannot declares
`vector_channels = False` and is walked one α at a time.
"""

from __future__ import annotations

from ..opbase import FIELDS, OPS, STATEMENTS, areas, layer_ops, statement_ops

# the op modules, in the order their ops register (the order of OPS and of the statements)
from . import basic, mnv4, paths  # noqa: F401
from .basic import expanded_width, squeeze_excite
from .common import (
    ACT,
    BN,
    CHANNELS,
    EXPAND,
    GATE,
    GATES,
    GROUPS,
    KERNEL,
    LAYER_SCALE,
    PAD,
    PAD_SAME,
    RATIO,
    SE_DIVISOR,
    SQUEEZE_FROM,
    STRIDE,
    WINDOW,
    conv_macs,
    conv_params,
    fc_macs,
    kernel_list,
    kernel_or_none,
)

# OPS, STATEMENTS and FIELDS are opbase's, filled by the `@register`s above: import them from here.
__all__ = ["ACT", "BN", "CHANNELS", "EXPAND", "FIELDS", "GATE", "GATES", "GROUPS", "KERNEL",
           "LAYER_SCALE", "OPS", "PAD", "PAD_SAME", "RATIO", "SE_DIVISOR", "SQUEEZE_FROM",
           "STATEMENTS", "STRIDE", "WINDOW", "conv_macs", "conv_params", "expanded_width",
           "fc_macs", "kernel_list", "kernel_or_none", "layer_ops", "squeeze_excite",
           "statement_ops", "areas"]
