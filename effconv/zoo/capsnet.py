"""Capsule network (dynamic routing by agreement) for small images such as CIFAR-10.

Layout: conv stem (ReLU) -> primary capsules (a conv whose channels are read as `primary_types`
capsule types of `primary_dim` dimensions at every position, squashed) -> class capsules
(`num_classes` capsules of `class_dim` dimensions) computed by `routing_iterations` rounds of
routing by agreement -> optional reconstruction decoder (training only).

Conventions:
- `forward(x)` returns the LENGTHS of the class capsules, shape [N, num_classes], each in [0, 1).
  They are scores, not logits: argmax gives the class, but they are not log-probabilities, so
  train with `margin_loss` (or `training_loss`), not cross-entropy.
- Routing: the logits b[n, j, i] (parent j, child i) start at zero; the coupling coefficients
  c = softmax(b) are taken over the PARENTS j, so each child's coefficients sum to 1.
- The prediction vectors u_hat = W_ij u_i and the two routing contractions (weighted sum over
  children, agreement u_hat . v) are written with `torch.matmul` so that the ONNX export has
  MatMul nodes (W_ij as a MatMul with a weight initializer) and the profiler counts them.
  The routing loop has a fixed count, so the exporter unrolls it.
- The decoder reconstructs the model's input tensor as given (after the loader's normalization),
  so its output is linear rather than sigmoid; its loss is the per-image sum of squared errors,
  averaged over the batch and weighted by `RECON_WEIGHT`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from effconv.zoo.registry import register_arch
from effconv.zoo.blocks import named

M_POS = 0.9  # margin loss: present class capsules should be at least this long
M_NEG = 0.1  # absent class capsules should be at most this long
LAMBDA_NEG = 0.5  # down-weights the absent-class term (10 classes, 1 present)
RECON_WEIGHT = 0.0005  # reconstruction loss weight, so it does not dominate the margin loss
SQUASH_EPS = 1e-12  # added under the square root so squash(0) has a gradient


def squash(s: torch.Tensor, dim: int = -1, eps: float = SQUASH_EPS) -> torch.Tensor:
    """v = |s|^2 / (1 + |s|^2) * s / |s|, along `dim`: keeps direction, maps length to [0, 1)."""
    sq = (s * s).sum(dim=dim, keepdim=True)
    return s * (sq / ((1.0 + sq) * torch.sqrt(sq + eps)))


def dynamic_routing(u_hat: torch.Tensor, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Routing by agreement.

    u_hat: [N, J, I, D] predictions of child i for parent j. Returns (v [N, J, D], c [N, J, I]),
    the parent capsules and the coupling coefficients of the last iteration.
    Each iteration: c = softmax_j(b); s_j = sum_i c_ij u_hat_ij; v_j = squash(s_j);
    then, except after the last one, b_ij += u_hat_ij . v_j.
    """
    if iterations < 1:
        raise ValueError(f"routing needs at least 1 iteration, got {iterations}")
    # b = 0, written as a product with the input: the exporter would otherwise fold the uniform
    # first-iteration c into a batch-sized constant that a profiler counts as MatMul weights.
    b = u_hat[..., 0].detach() * 0.0
    for step in range(iterations):
        c = torch.softmax(b, dim=1)  # over parents j
        s = torch.matmul(c.unsqueeze(2), u_hat).squeeze(2)  # [N,J,1,I] @ [N,J,I,D] -> [N,J,D]
        v = squash(s)
        if step + 1 < iterations:
            b = b + torch.matmul(u_hat, v.unsqueeze(-1)).squeeze(-1)  # [N,J,I,D] @ [N,J,D,1]
    return v, c


class ClassCapsules(nn.Module):
    """`num_in` child capsules of `in_dim` -> `num_out` parents of `out_dim`, by dynamic routing."""

    def __init__(self, num_in: int, in_dim: int, num_out: int, out_dim: int, iterations: int) -> None:
        super().__init__()
        self.num_out, self.out_dim, self.iterations = num_out, out_dim, iterations
        # W[i] maps child i's vector to its predictions for all parents at once: [I, in_dim, J*D].
        # Init scale: each prediction coordinate has variance ~ 0.01 * |u|^2 (u has length < 1).
        self.weight = nn.Parameter(torch.randn(num_in, in_dim, num_out * out_dim) * 0.1)

    def predictions(self, u: torch.Tensor) -> torch.Tensor:
        """u [N, I, in_dim] -> u_hat [N, J, I, D]; one batched MatMul against the weight."""
        n, i, _ = u.shape
        u_hat = torch.matmul(u.transpose(0, 1), self.weight)  # [I,N,d] @ [I,d,J*D] -> [I,N,J*D]
        return u_hat.reshape(i, n, self.num_out, self.out_dim).permute(1, 2, 0, 3)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        v, _ = dynamic_routing(self.predictions(u), self.iterations)
        return v


class CapsNet(nn.Module):
    """See the module docstring. `forward` returns class-capsule lengths [N, num_classes]."""

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int = 32,
        stem_channels: int = 256,
        stem_kernel: int = 9,
        stem_stride: int = 1,
        primary_types: int = 32,
        primary_dim: int = 8,
        primary_kernel: int = 9,
        primary_stride: int = 2,
        class_dim: int = 16,
        routing_iterations: int = 3,
        decoder_hidden: Sequence[int] = (512, 1024),
    ) -> None:
        super().__init__()
        self.primary_dim = primary_dim
        self.input_numel = in_channels * input_size * input_size
        stem_conv = nn.Conv2d(in_channels, stem_channels, stem_kernel, stem_stride)
        self.stem = named(("conv", stem_conv), ("act", nn.ReLU(inplace=True)))
        self.primary = nn.Conv2d(stem_channels, primary_types * primary_dim, primary_kernel, primary_stride)
        side = _conv_out(_conv_out(input_size, stem_kernel, stem_stride), primary_kernel, primary_stride)
        if side < 1:
            raise ValueError(f"input_size {input_size} is too small for kernels {stem_kernel}/{primary_kernel}")
        self.num_primary = primary_types * side * side
        self.classes = ClassCapsules(self.num_primary, primary_dim, num_classes, class_dim, routing_iterations)
        self.decoder = _decoder(num_classes * class_dim, decoder_hidden, self.input_numel)

    def primary_capsules(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, C, H, W] -> squashed primary capsules [N, I, primary_dim] (I = types * h * w)."""
        p = self.primary(self.stem(x))
        n, ch, h, w = p.shape
        p = p.reshape(n, ch // self.primary_dim, self.primary_dim, h, w).permute(0, 1, 3, 4, 2)
        return squash(p.reshape(n, -1, self.primary_dim))

    def forward_capsules(self, x: torch.Tensor) -> torch.Tensor:
        """Class capsules [N, num_classes, class_dim]."""
        return self.classes(self.primary_capsules(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return capsule_lengths(self.forward_capsules(x))

    def reconstruct(self, v: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the capsule of `labels` (or of the longest capsule) -> [N, input_numel]."""
        if self.decoder is None:
            raise ValueError("this CapsNet was built without a decoder (decoder_hidden = [])")
        if labels is None:
            labels = capsule_lengths(v).argmax(dim=1)
        mask = F.one_hot(labels, v.shape[1]).to(v.dtype).unsqueeze(-1)
        return self.decoder((v * mask).flatten(1))


def capsule_lengths(v: torch.Tensor) -> torch.Tensor:
    """Euclidean length of each capsule (last dim). Written as sqrt(sum(v^2)) for the exporter."""
    return torch.sqrt((v * v).sum(dim=-1))


def margin_loss(
    lengths: torch.Tensor, labels: torch.Tensor, m_pos: float = M_POS, m_neg: float = M_NEG, lam: float = LAMBDA_NEG
) -> torch.Tensor:
    """sum_k T_k max(0, m+ - |v_k|)^2 + lam (1 - T_k) max(0, |v_k| - m-)^2, averaged over the batch."""
    t = F.one_hot(labels, lengths.shape[1]).to(lengths.dtype)
    present = t * torch.clamp(m_pos - lengths, min=0.0) ** 2
    absent = lam * (1.0 - t) * torch.clamp(lengths - m_neg, min=0.0) ** 2
    return (present + absent).sum(dim=1).mean()


def training_loss(
    model: CapsNet, images: torch.Tensor, labels: torch.Tensor, recon_weight: float = RECON_WEIGHT
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, lengths): margin loss plus, if the model has a decoder, the weighted reconstruction
    loss (per-image sum of squared errors against the input, batch mean). `lengths` [N, classes]
    serve as scores for accuracy."""
    v = model.forward_capsules(images)
    lengths = capsule_lengths(v)
    loss = margin_loss(lengths, labels)
    if model.decoder is not None and recon_weight > 0:
        recon = model.reconstruct(v, labels)
        loss = loss + recon_weight * ((recon - images.flatten(1)) ** 2).sum(dim=1).mean()
    return loss, lengths


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return math.floor((size - kernel) / stride) + 1


def _decoder(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Module | None:
    if not hidden:
        return None
    layers: list[tuple[str, nn.Module]] = []
    for i, width in enumerate(hidden, 1):
        layers += [(f"fc{i}", nn.Linear(in_features, width)), (f"act{i}", nn.ReLU(inplace=True))]
        in_features = width
    layers.append(("out", nn.Linear(in_features, out_features)))
    return named(*layers)


# The zoo builder is the class itself: its keyword-only options (with typed defaults) are the
# spec's [arch] keys, checked by effconv.zoo.check_arch.
register_arch("capsnet")(CapsNet)
