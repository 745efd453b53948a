"""Figures as printed in Howard et al., "MobileNets" (arXiv:1704.04861, 2017).

Printed values are rounded and carry the odd typo; the engine never bends to them. Each
difference larger than rounding is explained where the value is shown, and in the README.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lang.spec import LayerKind

SOURCE = "Howard et al. 2017, MobileNets, arXiv:1704.04861"

# Table 2: resources per layer type, MobileNet 1.0-224 (% Mult-Adds, % parameters).
TABLE2: dict[LayerKind, tuple[float, float]] = {
    LayerKind.POINTWISE: (94.86, 74.59),
    LayerKind.DEPTHWISE: (3.06, 1.06),
    LayerKind.CONV: (1.19, 0.02),
    LayerKind.FC: (0.18, 24.33),
}

TABLE2_NOTES = {
    LayerKind.CONV: (
        "Printed 1.19% of Mult-Adds for the one full 3×3 convolution is a typo for 1.91%: "
        "3·3·3·32·112·112 = 10,838,016 of 568,740,352 is 1.906%, and the printed column sums "
        "to 99.29% with 1.19 but to 100.01% with 1.91."),
}


@dataclass(frozen=True, slots=True)
class Table3Row:
    label: str
    spec: str  # spec text of the one layer
    alpha: float
    rho: float
    macs_m: float  # printed million Mult-Adds
    params_m: float  # printed million parameters


# Table 3: one 14×14×512 layer with a 3×3×512×512 kernel as it is shrunk.
_CONV = "name table3_conv\ninput 14 512*\nconv 3 512\n"
_SEP = "name table3_separable\ninput 14 512*\ndw 3\npw 512\n"
TABLE3 = (
    Table3Row("Convolution", _CONV, 1.0, 1.0, 462, 2.36),
    Table3Row("Depthwise Separable Conv", _SEP, 1.0, 1.0, 52.3, 0.27),
    Table3Row("α = 0.75", _SEP, 0.75, 1.0, 29.6, 0.15),
    Table3Row("ρ = 0.714", _SEP, 0.75, 0.714, 15.1, 0.15),
)


@dataclass(frozen=True, slots=True)
class PublishedCost:
    table: str
    spec: str
    alpha: float
    resolution: int
    macs_m: float
    params_m: float
    note: str = ""


# Tables 4–7 (and MobileNetV2's Table 4): million Mult-Adds and million parameters as printed.
PUBLISHED_COSTS = (
    PublishedCost("4", "conv_mobilenet", 1.0, 224, 4866, 29.3,
                  "The engine gives 4,867.29M. 4,866 is the total without the FC layer "
                  "(4,867.29 - 1.02 = 4,866.27): the printed figure appears to leave the "
                  "classifier out, which the MobileNet rows of the same table do not."),
    PublishedCost("4", "mobilenet_v1", 1.0, 224, 569, 4.2),
    PublishedCost("5", "mobilenet_v1", 0.75, 224, 325, 2.6),
    PublishedCost("5", "shallow_mobilenet", 1.0, 224, 307, 2.9),
    PublishedCost("6", "mobilenet_v1", 0.5, 224, 149, 1.3),
    PublishedCost("6", "mobilenet_v1", 0.25, 224, 41, 0.5),
    PublishedCost("7", "mobilenet_v1", 1.0, 192, 418, 4.2),
    PublishedCost("7", "mobilenet_v1", 1.0, 160, 290, 4.2,
                  "The engine gives 290.68M, which rounds to 291. Every map at 160 is exactly "
                  "160/224 of its size at 224, so the hand computation ρ²·(568.74 - 1.02) + 1.02 "
                  "= 290.68 agrees: the printed 290 is truncated, not rounded."),
    PublishedCost("7", "mobilenet_v1", 1.0, 128, 186, 4.2),
    PublishedCost("9", "mobilenet_v1", 0.5, 160, 76, 1.32,
                  "The engine gives 76.52M, which rounds to 77: truncated like Table 7's 290 "
                  "(while Table 4 rounds 568.74 up to 569; the paper is not consistent)."),
    PublishedCost("V2 Table 4", "mobilenet_v2", 1.0, 224, 300, 3.4,
                  "MobileNetV2 paper (Sandler et al. 2018). The engine gives 300.77M Mult-Adds "
                  "and 3.47M weights (3.50M with FC bias and batchnorm γ, β, as torchvision "
                  "counts): the printed 300 and 3.4 are truncated, not rounded."),
)
