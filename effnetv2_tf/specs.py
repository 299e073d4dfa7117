"""The one table of EfficientNet V1/V2 model specs, and the rules that scale it.

Block strings follow the official notation rR_kK_sS_eE_iI_oO[_seX][_c1]: R repeats, kernel K, stride S
(first repeat only), expansion E, input I and output O channels before width scaling, squeeze-excite
ratio X relative to the block's input channels, c1 for Fused-MBConv (else MBConv).
"""

import dataclasses
import math
import re

V2_BASE = ("r1_k3_s1_e1_i32_o16_c1", "r2_k3_s2_e4_i16_o32_c1", "r2_k3_s2_e4_i32_o48_c1",
           "r3_k3_s2_e4_i48_o96_se0.25", "r5_k3_s1_e6_i96_o112_se0.25", "r8_k3_s2_e6_i112_o192_se0.25")
V2_S = ("r2_k3_s1_e1_i24_o24_c1", "r4_k3_s2_e4_i24_o48_c1", "r4_k3_s2_e4_i48_o64_c1",
        "r6_k3_s2_e4_i64_o128_se0.25", "r9_k3_s1_e6_i128_o160_se0.25", "r15_k3_s2_e6_i160_o256_se0.25")
V2_M = ("r3_k3_s1_e1_i24_o24_c1", "r5_k3_s2_e4_i24_o48_c1", "r5_k3_s2_e4_i48_o80_c1",
        "r7_k3_s2_e4_i80_o160_se0.25", "r14_k3_s1_e6_i160_o176_se0.25", "r18_k3_s2_e6_i176_o304_se0.25",
        "r5_k3_s1_e6_i304_o512_se0.25")
V2_L = ("r4_k3_s1_e1_i32_o32_c1", "r7_k3_s2_e4_i32_o64_c1", "r7_k3_s2_e4_i64_o96_c1",
        "r10_k3_s2_e4_i96_o192_se0.25", "r19_k3_s1_e6_i192_o224_se0.25", "r25_k3_s2_e6_i224_o384_se0.25",
        "r7_k3_s1_e6_i384_o640_se0.25")
V2_XL = ("r4_k3_s1_e1_i32_o32_c1", "r8_k3_s2_e4_i32_o64_c1", "r8_k3_s2_e4_i64_o96_c1",
         "r16_k3_s2_e4_i96_o192_se0.25", "r24_k3_s1_e6_i192_o256_se0.25", "r32_k3_s2_e6_i256_o512_se0.25",
         "r8_k3_s1_e6_i512_o640_se0.25")
V1_BASE = ("r1_k3_s1_e1_i32_o16_se0.25", "r2_k3_s2_e6_i16_o24_se0.25", "r2_k5_s2_e6_i24_o40_se0.25",
           "r3_k3_s2_e6_i40_o80_se0.25", "r3_k5_s1_e6_i80_o112_se0.25", "r4_k5_s2_e6_i112_o192_se0.25",
           "r1_k3_s1_e6_i192_o320_se0.25")

FEATURE_SIZE = 1280  # head width before width scaling
# ModelSpec.normalization "mean_std": ImageNet's per-channel mean and standard deviation, on the [0, 255] scale.
MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
DEPTH_DIVISOR = 8
MIN_DEPTH = 8


@dataclasses.dataclass(frozen=True)
class StageSpec:
  """One stage of blocks, decoded from a block string (channels before width scaling)."""
  repeats: int
  kernel_size: int
  strides: int
  expand_ratio: int
  input_filters: int
  output_filters: int
  se_ratio: float | None
  fused: bool


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A named model: its stages, scaling coefficients and the official recipe values."""
  name: str
  stages: tuple[str, ...]
  width: float
  depth: float
  train_size: int
  eval_size: int
  dropout_rate: float
  family: str  # "v1" or "v2": which round_filters rule the official code used
  normalization: str  # "center_128": (x-128)/128; "mean_std": ImageNet mean/std (the V1 preprocessing)
  augment: str  # "randaug" or "autoaug" (AutoAugment policy v0, the V1 recipe)
  randaug_magnitude: float = 0.0
  mixup_alpha: float = 0.0


def _v1(name, width, depth, eval_size, dropout_rate):
  # V1 trains at 0.8 x eval size rounded down to a multiple of 16 (official efficientnetv1_params).
  return ModelSpec(name, V1_BASE, width, depth, int(0.8 * eval_size) // 16 * 16, eval_size, dropout_rate,
                   "v1", "mean_std", "autoaug")


MODEL_SPECS = {spec.name: spec for spec in (
    # V2-B0..B3 keep the V1 preprocessing and AutoAugment of the official recipe.
    ModelSpec("efficientnetv2-b0", V2_BASE, 1.0, 1.0, 192, 224, 0.2, "v2", "mean_std", "autoaug"),
    ModelSpec("efficientnetv2-b1", V2_BASE, 1.0, 1.1, 192, 240, 0.2, "v2", "mean_std", "autoaug"),
    ModelSpec("efficientnetv2-b2", V2_BASE, 1.1, 1.2, 208, 260, 0.3, "v2", "mean_std", "autoaug"),
    ModelSpec("efficientnetv2-b3", V2_BASE, 1.2, 1.4, 240, 300, 0.3, "v2", "mean_std", "autoaug"),
    ModelSpec("efficientnetv2-s", V2_S, 1.0, 1.0, 300, 384, 0.2, "v2", "center_128", "randaug",
              randaug_magnitude=10),
    ModelSpec("efficientnetv2-m", V2_M, 1.0, 1.0, 384, 480, 0.3, "v2", "center_128", "randaug",
              randaug_magnitude=15, mixup_alpha=0.2),
    ModelSpec("efficientnetv2-l", V2_L, 1.0, 1.0, 384, 480, 0.4, "v2", "center_128", "randaug",
              randaug_magnitude=20, mixup_alpha=0.5),
    ModelSpec("efficientnetv2-xl", V2_XL, 1.0, 1.0, 384, 512, 0.4, "v2", "center_128", "randaug",
              randaug_magnitude=20, mixup_alpha=0.5),
    _v1("efficientnet-b0", 1.0, 1.0, 224, 0.2),
    _v1("efficientnet-b1", 1.0, 1.1, 240, 0.2),
    _v1("efficientnet-b2", 1.1, 1.2, 260, 0.3),
    _v1("efficientnet-b3", 1.2, 1.4, 300, 0.3),
    _v1("efficientnet-b4", 1.4, 1.8, 380, 0.4),
    _v1("efficientnet-b5", 1.6, 2.2, 456, 0.4),
    _v1("efficientnet-b6", 1.8, 2.6, 528, 0.5),
    _v1("efficientnet-b7", 2.0, 3.1, 600, 0.5),
)}

_TOKEN = re.compile(r"^(r|k|s|e|i|o|se|c)(\d+(?:\.\d+)?)$")


def decode_stage(block_string):
  """Decodes 'r2_k3_s1_e1_i24_o24_c1' into a StageSpec; raises ValueError naming a bad token."""
  values = {}
  for token in block_string.split("_"):
    match = _TOKEN.match(token)
    if not match:
      raise ValueError(f"Bad token {token!r} in block string {block_string!r}: expected one of "
                       "rN, kN, sN, eN, iN, oN, seX, cN.")
    values[match.group(1)] = match.group(2)
  missing = [key for key in ("r", "k", "s", "e", "i", "o") if key not in values]
  if missing:
    raise ValueError(f"Block string {block_string!r} lacks {', '.join(missing)}.")
  return StageSpec(
      repeats=int(values["r"]), kernel_size=int(values["k"]), strides=int(values["s"]),
      expand_ratio=int(values["e"]), input_filters=int(values["i"]), output_filters=int(values["o"]),
      se_ratio=float(values["se"]) if "se" in values else None, fused=values.get("c", "0") == "1")


def round_filters(filters, width, family):
  """Scales a channel count by the width coefficient and rounds it to a multiple of 8.

  The V1 rule adds one divisor when rounding lost more than 10%; the V2 code dropped that rule, and the
  V2 checkpoints were trained without it (it only matters for V1-B3's first stage: 24 vs 16 channels).
  """
  scaled = filters * width
  rounded = max(MIN_DEPTH, int(scaled + DEPTH_DIVISOR / 2) // DEPTH_DIVISOR * DEPTH_DIVISOR)
  if family == "v1" and rounded < 0.9 * scaled:
    rounded += DEPTH_DIVISOR
  return int(rounded)


def round_repeats(repeats, depth):
  return int(math.ceil(depth * repeats))


def get_model_spec(name):
  """Returns the ModelSpec called `name`; an unknown name raises ValueError listing the valid ones."""
  try:
    return MODEL_SPECS[name]
  except KeyError:
    raise ValueError(f"Unknown model name {name!r}. Valid names: {', '.join(MODEL_SPECS)}.") from None
