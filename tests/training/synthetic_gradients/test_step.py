"""One synthetic-gradient step against an independent autograd computation of what it must do."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from effconv.training.synthetic_gradients import SyntheticGradient, synthetic_step, vgg_blocks


def _setup(condition: bool, seed: int = 0):
    torch.manual_seed(seed)
    blocks = vgg_blocks((4, 6), num_classes=10)  # two conv blocks + head block
    predictors = [SyntheticGradient(c, 10 if condition else 0) for c in (4, 6)]
    opts = [torch.optim.Adam(b.parameters(), lr=1e-2) for b in blocks]
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    return blocks, predictors, opts, x, y


@pytest.mark.parametrize("condition", [False, True])
def test_predictor_starts_at_zero(condition):
    pred = SyntheticGradient(5, 10 if condition else 0)
    h = torch.randn(3, 5, 4, 4)
    out = pred(h, torch.tensor([0, 1, 9]))
    assert out.shape == h.shape and torch.count_nonzero(out) == 0


def test_first_step_moves_only_the_head_and_matches_backprop():
    """Zero predictions: the lower blocks get zero gradients (Adam moves nothing); the head gets
    the true loss gradient, so it must end where one backprop step puts it."""
    blocks, predictors, opts, x, y = _setup(condition=False)
    ref = torch.nn.Sequential(*copy.deepcopy(blocks))
    before = [copy.deepcopy(b.state_dict()) for b in blocks]
    out = synthetic_step(blocks, predictors, opts, x, y)
    loss = out.loss

    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    ref_loss = F.cross_entropy(ref(x), y)
    ref_loss.backward()
    ref_opt.step()
    assert loss == pytest.approx(float(ref_loss.detach()), rel=1e-6)
    for k in (0, 1):  # conv and BN affine parameters unchanged
        for name, p in blocks[k].named_parameters():
            assert torch.equal(p, before[k][name]), name
    for p, q in zip(blocks[2].parameters(), ref[2].parameters()):
        assert torch.allclose(p, q, atol=1e-7)
    assert not torch.equal(blocks[2][2].weight, before[2]["2.weight"])


@pytest.mark.parametrize("condition", [False, True])
def test_predictors_regress_onto_the_gradient_from_the_block_above(condition):
    """Targets: the top predictor's is dL/dh_1 (true loss through the head); the lower one's is the
    top predictor's output sent back through block 1 (a vector-Jacobian product)."""
    blocks, predictors, opts, x, y = _setup(condition, seed=1)
    for p in predictors:  # non-zero predictions, so the bootstrapped target is not trivial
        torch.nn.init.normal_(p.out.weight, std=0.05)
    b0, b1, head = copy.deepcopy(blocks)
    p0, p1 = copy.deepcopy(predictors)
    h0 = b0(x).detach().requires_grad_(True)
    h1 = b1(h0)
    pred0, pred1 = p0(h0.detach(), y), p1(h1.detach(), y)
    h1_leaf = h1.detach().requires_grad_(True)
    (target1,) = torch.autograd.grad(F.cross_entropy(head(h1_leaf), y), h1_leaf)
    (target0,) = torch.autograd.grad(h1, h0, grad_outputs=pred1.detach())
    expected = ((pred0 - target0) ** 2).sum() / 8 + ((pred1 - target1) ** 2).sum() / 8

    sg_loss = synthetic_step(blocks, predictors, opts, x, y).predictor_loss
    assert float(sg_loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert float(expected.detach()) > 0
    sg_loss.backward()  # the regression loss reaches the predictors' parameters only
    assert all(p.grad is not None for m in predictors for p in m.parameters())


def test_rejects_a_single_block():
    from effconv.data import CLASSES, CifarArrays
    from effconv.training.synthetic_gradients import train_synthetic
    from effconv.training.session import TrainData

    split = CifarArrays(np.zeros((4, 32, 32, 3), np.uint8), np.zeros(4, np.int64), CLASSES)
    with pytest.raises(ValueError, match="at least two blocks"):
        train_synthetic([torch.nn.Flatten()], TrainData(split, split), 1)


def test_zoo_vgg_splits_into_blocks_that_chain_to_the_model_and_train():
    from effconv.specs import load_spec
    from effconv.training.synthetic_gradients import split_at_pools
    from effconv.zoo import build_model, with_arch

    torch.manual_seed(0)
    model = build_model(with_arch(load_spec("vgg19_3x3"), config="11_3x3", fc_width=32, dropout=0.0))
    blocks = split_at_pools(model)
    assert len(blocks) == 5  # 5 pools: cuts after the first 4; the 5th pool starts the head block
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        chained = x
        for block in blocks:
            chained = block(chained)
        assert torch.allclose(chained, model(x), atol=1e-6)
    channels = (64, 128, 256, 512)  # outputs of the first four blocks
    predictors = [SyntheticGradient(c) for c in channels]
    opts = [torch.optim.Adam(b.parameters(), lr=1e-3) for b in blocks]
    out = synthetic_step(blocks, predictors, opts, x, torch.tensor([3, 7]))
    assert out.loss > 0 and float(out.predictor_loss.detach()) > 0 and out.scores.shape == (2, 10)


def test_split_needs_two_pools():
    from effconv.training.synthetic_gradients import split_at_pools

    one_pool = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(2)), torch.nn.Flatten())
    with pytest.raises(ValueError, match="two MaxPool2d"):
        split_at_pools(one_pool)
