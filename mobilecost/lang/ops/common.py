"""The op table's shared pieces: the pure cost formulas, the constants of squeeze-and-
excitation, the grammar options several ops take, and the checks they share."""

from __future__ import annotations

from ...errors import ConfigError
from ..kinds import ACTIVATIONS
from ..opbase import (
    Arg,
    Builder,
    LayerDef,
    Option,
    channel_count,
    choice,
    expansion,
    kernel_size,
    positive,
    window,
    yes_no,
    yes_no_text,
)
from ..values import (
    MAX_CHANNELS,
    exact_text,
)

# --------------------------------------------------------------------------- pure formulas


def conv_macs(kernel: int, in_channels: int, out_channels: int, out_size: int, groups: int = 1) -> int:
    """K·K·(M/g)·N·D_F·D_F: eq. (2) for g = 1, eq. (4) for depthwise (g = M = N)."""
    return kernel * kernel * (in_channels // groups) * out_channels * out_size * out_size


def conv_params(kernel: int, in_channels: int, out_channels: int, groups: int = 1) -> int:
    """K·K·(M/g)·N weights."""
    return kernel * kernel * (in_channels // groups) * out_channels


def fc_macs(in_features: int, out_features: int) -> int:
    return in_features * out_features


#: Squeeze-and-excitation's squeeze width is make_divisible(c / r, SE_DIVISOR) for c channels
#: and ratio r, as in MobileNetV3 (TF-slim, torchvision, Keras) and MnasNet, whatever the spec's
#: own rounding rule.
SE_DIVISOR = 8

#: The gates squeeze-and-excitation may end with: hard-sigmoid (MobileNetV3), sigmoid (MnasNet).
GATES = ("hsigmoid", "sigmoid")

#: What an inverted residual's squeeze width is taken from: `exp`, the expanded width c,
#: make_divisible(c / R, 8) (MobileNetV3: TF-slim, torchvision, Keras); `in`, the block's input
#: width, max(1, int(in / R)) (MnasNet-A1 and EfficientNet in TensorFlow's reference code:
#: `max(1, int(input_filters * se_ratio))`).
SQUEEZE_FROM = ("exp", "in")


# --------------------------------------------------------------------------- shared grammar

KERNEL = Arg("kernel", "a kernel size", kernel_size("a kernel size"))
CHANNELS = Arg("channels", "a channel count", channel_count("channel count"))
WINDOW = Arg("kernel", "a kernel size or 'global'", window,
             lambda k: "global" if k == 0 else str(k))
RATIO = Arg("se", "an SE ratio", positive("SE ratio", MAX_CHANNELS))

STRIDE = Option("s", "stride", 1, kernel_size("stride"))
ACT = Option("act", "act", None, choice("act", tuple(ACTIVATIONS)))
BN = Option("bn", "bn", True, yes_no("bn"), yes_no_text)
#: A convolution's own bias (`bias=yes`: one per output channel; the head's 1×1 convolution of
#: MobileNetV3 and LCNet after the global pool, which has no batchnorm).
CONV_BIAS = Option("bias", "own_bias", False, yes_no("bias"), yes_no_text)


def _pad(text: str) -> str:
    if text not in ("same", "valid", "tf"):
        raise ValueError("pad must be same, valid or tf")
    return text


#: Padding: `same` pads K // 2 on every side (torch's and timm's symmetric padding; odd
#: kernels), `tf` TensorFlow's SAME (the `tf_` ports of timm: max((⌈h/s⌉ - 1)·s + K - h, 0)
#: rows in all, the odd one at the bottom and right; any kernel), `valid` none. `same` and
#: `tf` give the same output side, ⌈h/s⌉, hence the same cost; the numbers differ.
PAD = Option("pad", "pad", "same", _pad)
PAD_SAME = Option("pad", "pad", "same", choice("pad", ("same", "tf")))  # blocks: no valid
GATE = Option("gate", "gate", "hsigmoid", choice("gate", GATES))
GROUPS = Option("g", "groups", 1, positive("groups"))
EXPAND = Option("t", "expand", 6, expansion, exact_text)
LAYER_SCALE = Option("ls", "layer_scale", False, yes_no("ls"), yes_no_text)


def kernel_or_none(what: str):
    """A reader of a kernel size or 0 (no such convolution)."""
    read_positive = positive(what)

    def read(text: str) -> int:
        return 0 if text == "0" else read_positive(text)

    return read


def kernel_list(text: str) -> tuple[int, ...]:
    """Kernel sizes separated by commas, `3,5,7`: one per channel group."""
    return tuple(positive("each kernel size")(k) for k in text.split(","))


def _odd(pad: str, *kernels: tuple[str | None, int]) -> tuple[str, str | None] | None:
    """The refusal of an even kernel under `same` padding (0: no convolution), with the key of
    the option that set it (None: the first argument)."""
    if pad == "same":
        for key, k in kernels:
            if k and k % 2 == 0:
                return "SAME padding needs an odd kernel size (pad=tf takes any)", key
    return None


def check_groups(b: Builder, d: LayerDef, out: int) -> None:
    """Refuse a grouped convolution whose channels the groups do not divide."""
    g = d.groups
    if g > 1 and (b.channels % g or out % g):
        raise ConfigError(f"{b.where(d.line)}: '{d.op} ... g={g}' needs input and output "
                          f"channels divisible by {g}, got {b.channels} and {out} at alpha "
                          f"{float(b.alpha):g}")
