"""The efficiency study's four experiments (section VII) as data, and how a run of one is set up.

An experiment is a set of runs (a zoo spec plus overrides) and the paper's claims about them; the
claims' verdict rules live in effconv.experiments.verdicts, and effconv.experiments.runner trains
the runs.

Scale: `scale` 1.0 is the paper's recipe (the spec's [train] table: 20,000 Adam steps for the VGGs,
300,000 for AlexNet). A smaller scale multiplies the steps by `scale` and trains on a fixed random
subset of round(50,000 x scale) images (at least 10 batches); every run is evaluated `evals` times
(on `eval_images` test images, the trainer's fixed random draw: default all 10,000 at full scale,
max(500, 10,000 x scale) below).

`width_mult` (< 1, for CI and CPU smoke runs only) narrows every conv and FC layer of the built
model; such runs are not the paper's models: experiment.json records the multiplier, config.json's
spec still describes the full-width model, and effconv.training.checkpoint.load_run cannot load them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from effconv.errors import UsageError

if TYPE_CHECKING:
    from torch import nn

    from effconv.specs import ModelSpec
    from effconv.training.api import TrainConfig

CIFAR_TRAIN_IMAGES = 50_000
DEFAULT_EVALS = 20  # evaluations per run, at any scale (enough points for a curve and its wobble)


@dataclass(frozen=True)
class Claim:
    rule: str  # key of effconv.experiments.verdicts.RULES
    text: str  # what the paper says (paraphrased closely)


@dataclass(frozen=True)
class RunPlan:
    label: str  # the run's folder name and its name in reports
    spec: str  # zoo spec name
    arch: tuple[tuple[str, Any], ...] = ()  # [arch] overrides (effconv.zoo.with_arch)


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    claims: tuple[Claim, ...]
    runs: tuple[RunPlan, ...]


_ACTS = ("relu", "swish", "elu", "crelu")


def _vgg(act: str, suffix: str = "") -> str:
    return "vgg19_3x3" + ("" if act == "relu" else f"_{act}") + suffix


EXPERIMENTS: dict[str, Experiment] = {
    "kernel-size": Experiment(
        "kernel-size", "Kernel size: VGG-19 3x3 vs VGG-19 5x5 vs VGG-14 mixed kernels (section VII-a)",
        (Claim("three_by_three_sufficient", "3x3 convolutions yield sufficient results (as VGG says)"),
         Claim("larger_kernels_converge_worse", "convergence worsens when the kernel size increases"),
         Claim("mixed_costs_more_time", "the shallower 14-layer net with larger kernels takes more "
               "execution time (computation cost) than the 19-layer 3x3 net")),
        (RunPlan("3x3", "vgg19_3x3"), RunPlan("5x5", "vgg19_5x5"), RunPlan("mixed", "vgg14_mixed")),
    ),
    "optimizer": Experiment(
        "optimizer", "Optimizer: AlexNet with SGD momentum vs Adam, lr 0.005 (section VII-b)",
        (Claim("adam_converges_faster", "Adam converges faster than momentum"),
         Claim("adam_more_accurate", "Adam converges more accurately than momentum"),
         Claim("adam_oscillates_less", "Adam oscillates less than momentum (its second moment damps it)"),
         Claim("momentum_faster_start", "momentum converges faster at the very beginning")),
        (RunPlan("momentum", "alexnet_cifar"), RunPlan("adam", "alexnet_cifar_adam")),
    ),
    "activation": Experiment(
        "activation", "Activation: ReLU, Swish, ELU, CReLU on VGG-19 3x3 (section VII-c)",
        (Claim("relu_best", "ReLU is on average the best activation"),
         Claim("swish_close", "Swish is the exception: close to ReLU, not clearly worse"),
         Claim("crelu_worst", "CReLU gives the worst results")),
        tuple(RunPlan(a, _vgg(a)) for a in _ACTS),
    ),
    "batch-norm": Experiment(
        "batch-norm", "Batch normalization: each activation with and without it, and LRN (section VII-d)",
        (Claim("bn_doubles_time", "batch normalization increases the execution time nearly twofold"),
         Claim("bn_raises_accuracy", "batch normalization raises accuracy"),
         Claim("bn_helps_crelu_most", "the accuracy gain is most evident with CReLU")),
        tuple(RunPlan(f"{a}-bn", _vgg(a)) for a in _ACTS)
        + tuple(RunPlan(f"{a}-nobn", _vgg(a, "_nobn")) for a in _ACTS)
        + (RunPlan("relu-lrn", "vgg19_3x3_lrn"),),
    ),
}


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise UsageError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


@dataclass(frozen=True)
class RunOptions:
    scale: float = 1.0  # 0 < scale <= 1; 1.0 is the paper's recipe
    width_mult: float = 1.0  # CI/CPU smoke runs only: narrows every layer (see the module doc)
    evals: int = DEFAULT_EVALS
    eval_images: int | None = None  # None: all at full scale, max(500, 10,000 x scale) below
    batch_size: int | None = None  # None: the spec's
    device: str = "auto"
    seed: int = 0
    threads: int | None = None  # torch intra-op threads on CPU (None: torch's default); 1 is far
    # faster than 2 when other processes compete for the cores (idle threads spin at barriers)
    precision: str | None = None  # None: the spec's (fp32); bf16 autocast for the GPU visits
    deterministic: bool = False  # torch's deterministic algorithms (the pack's equality tests)

    def __post_init__(self) -> None:
        if not 0 < self.scale <= 1:
            raise UsageError(f"--scale must be in (0, 1], got {self.scale}")
        if not 0 < self.width_mult <= 1:
            raise UsageError(f"--width-mult must be in (0, 1], got {self.width_mult}")
        for flag, value in (("--evals", self.evals), ("--eval-images", self.eval_images), ("--threads", self.threads)):
            if value is not None and value < 1:
                raise UsageError(f"{flag} must be >= 1, got {value}")
        if self.precision not in (None, "fp32", "bf16", "fp16"):
            raise UsageError(f"--precision must be fp32, bf16 or fp16, got {self.precision!r}")


def run_config(spec: "ModelSpec", options: RunOptions) -> "TrainConfig":
    """The spec's recipe shrunk to `options.scale` (see the module doc for the rules)."""
    from effconv.training.api import config_from_table

    base = config_from_table(spec.train, {"batch_size": options.batch_size, "precision": options.precision},
                             source=spec.source)
    steps = max(1, round(base.total_steps(CIFAR_TRAIN_IMAGES) * options.scale))
    full = options.scale >= 1
    subset = None if full else min(CIFAR_TRAIN_IMAGES, max(10 * base.batch_size, round(CIFAR_TRAIN_IMAGES * options.scale)))
    return replace(
        base, steps=steps, epochs=None, eval_every=max(1, steps // options.evals), log_every=max(1, min(50, steps // options.evals)),
        subset=subset, eval_subset=eval_images(options), device=options.device, seed=options.seed,
        deterministic=options.deterministic or base.deterministic,
    )


def eval_images(options: RunOptions) -> int | None:
    """Test images per evaluation: all (None) at full scale, else max(500, 10,000 x scale)."""
    if options.eval_images is not None:
        return options.eval_images
    return None if options.scale >= 1 else max(500, round(10_000 * options.scale))


def narrow_model(model: "nn.Module", width: float) -> "nn.Module":
    """Scale the channels of every Conv2d/Linear/BatchNorm by `width`, except the model's input
    channels and its class count (CI only). Widths must stay whole numbers."""
    from torch import nn

    if width == 1.0:
        return model
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    def s(c: int) -> int:
        v = c * width
        if v < 1 or abs(v - round(v)) > 1e-9:
            raise UsageError(f"--width-mult {width} does not divide a layer of {c} channels into a whole number")
        return round(v)

    for parent in list(model.modules()):
        for name, m in list(parent.named_children()):
            if isinstance(m, nn.Conv2d):
                if m.groups != 1:
                    raise UsageError("--width-mult supports plain convolutions only (no grouped or depthwise)")
                cin = m.in_channels if m is layers[0] else s(m.in_channels)
                new = nn.Conv2d(cin, s(m.out_channels), m.kernel_size, m.stride, m.padding, bias=m.bias is not None)
            elif isinstance(m, nn.Linear):
                new = nn.Linear(s(m.in_features), m.out_features if m is layers[-1] else s(m.out_features), bias=m.bias is not None)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                new = type(m)(s(m.num_features), eps=m.eps, momentum=m.momentum)
            else:
                continue
            setattr(parent, name, new)
    return model


def build_run_model(spec: "ModelSpec", width: float, seed: int) -> "nn.Module":
    """The spec's model, narrowed by `width`, with initial weights drawn from `seed`."""
    import torch

    from effconv.zoo import build_model

    torch.manual_seed(seed)
    return narrow_model(build_model(spec), width)


def plan_spec(run: RunPlan) -> "ModelSpec":
    from effconv.specs import load_spec
    from effconv.zoo import with_arch

    spec = load_spec(run.spec)
    return with_arch(spec, **dict(run.arch)) if run.arch else spec


__all__ = ["EXPERIMENTS", "Claim", "Experiment", "RunOptions", "RunPlan", "build_run_model", "eval_images",
           "get_experiment", "narrow_model", "plan_spec", "run_config"]
