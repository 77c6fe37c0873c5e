"""Capsule maths against closed forms and a hand-computed routing example."""

from __future__ import annotations

import math

import pytest
import torch

from effconv.zoo.capsnet import CapsNet, ClassCapsules, dynamic_routing, margin_loss, squash, training_loss

# --- squash: v = |s|^2 / (1 + |s|^2) * s / |s| ------------------------------------------------


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ((3.0, 4.0), (15 / 26, 20 / 26)),  # |s| = 5: 25/26 * (3, 4)/5
        ((1.0, 0.0), (0.5, 0.0)),  # |s| = 1: half length
        ((0.0, 0.0), (0.0, 0.0)),  # zero stays zero
        ((0.0, -2.0, 0.0), (0.0, -0.8, 0.0)),  # |s| = 2: 4/5 * (0, -1, 0)
    ],
)
def test_squash_closed_form(s, expected):
    v = squash(torch.tensor([s], dtype=torch.float64))
    assert v[0].tolist() == pytest.approx(expected, abs=1e-9)


def test_squash_keeps_direction_and_maps_length():
    s = torch.randn(50, 8, dtype=torch.float64) * torch.logspace(-2, 2, 50, dtype=torch.float64)[:, None]
    v = squash(s)
    n = s.norm(dim=1)
    assert torch.allclose(v.norm(dim=1), n**2 / (1 + n**2), atol=1e-9)
    assert torch.allclose(torch.nn.functional.cosine_similarity(v, s, dim=1), torch.ones(50, dtype=torch.float64))


# --- margin loss: sum_k T_k max(0, .9 - |v_k|)^2 + .5 (1 - T_k) max(0, |v_k| - .1)^2 ----------


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        (0, 0.5 * (0.5 - 0.1) ** 2),  # present 0.95 > 0.9: 0; absent 0.05 < 0.1: 0, 0.5 -> .5*.16
        (2, (0.9 - 0.5) ** 2 + 0.5 * (0.95 - 0.1) ** 2),  # 0.16 + 0.36125
        (1, (0.9 - 0.05) ** 2 + 0.5 * ((0.95 - 0.1) ** 2 + (0.5 - 0.1) ** 2)),
    ],
)
def test_margin_loss_closed_form(label, expected):
    lengths = torch.tensor([[0.95, 0.05, 0.5]], dtype=torch.float64)
    assert float(margin_loss(lengths, torch.tensor([label]))) == pytest.approx(expected, abs=1e-12)


def test_margin_loss_is_a_batch_mean():
    lengths = torch.tensor([[0.95, 0.05, 0.5], [0.95, 0.05, 0.5]], dtype=torch.float64)
    both = float(margin_loss(lengths, torch.tensor([0, 2])))
    assert both == pytest.approx((0.08 + 0.16 + 0.36125) / 2, abs=1e-12)


# --- routing: two child capsules (i = 1, 2), two parents (j = 1, 2), 2-D in and out -----------
# u_1 = (1, 0) and u_2 = (0, 1), so u_hat_ij = W_ij u_i is column i of W_ij:
W = {
    (1, 1): [[1.0, 0.0], [0.0, 0.0]],  # u_hat_11 = (1, 0)
    (1, 2): [[0.0, 0.0], [1.0, 0.0]],  # u_hat_12 = (0, 1)
    (2, 1): [[0.0, 0.0], [0.0, 2.0]],  # u_hat_21 = (0, 2)
    (2, 2): [[0.0, 1.0], [0.0, -1.0]],  # u_hat_22 = (1, -1)
}
U_HAT = {(1, 1): (1.0, 0.0), (1, 2): (0.0, 1.0), (2, 1): (0.0, 2.0), (2, 2): (1.0, -1.0)}


def _hand_squash(s):
    n2 = s[0] ** 2 + s[1] ** 2
    return (0.0, 0.0) if n2 == 0 else tuple(x * n2 / ((1 + n2) * math.sqrt(n2)) for x in s)


def _hand_routing(iterations):
    """The routing algorithm written out in scalars: returns v[j] and c[(i, j)] of the last iteration."""
    b = {ij: 0.0 for ij in U_HAT}
    for it in range(iterations):
        # c_ij = exp(b_ij) / sum_k exp(b_ik): softmax over the parents of each child i
        c = {(i, j): math.exp(b[i, j]) / (math.exp(b[i, 1]) + math.exp(b[i, 2])) for (i, j) in U_HAT}
        # s_j = sum_i c_ij u_hat_ij ; v_j = squash(s_j)
        s = {j: tuple(c[1, j] * U_HAT[1, j][d] + c[2, j] * U_HAT[2, j][d] for d in range(2)) for j in (1, 2)}
        v = {j: _hand_squash(s[j]) for j in (1, 2)}
        if it + 1 < iterations:
            # b_ij += u_hat_ij . v_j
            b = {(i, j): b[i, j] + sum(U_HAT[i, j][d] * v[j][d] for d in range(2)) for (i, j) in U_HAT}
    return v, c


def test_hand_routing_first_iteration_by_hand():
    # b = 0 -> c = 1/2 everywhere; s_1 = (0.5, 1.0), s_2 = (0.5, 0.0);
    # |s_2|^2 = 0.25 -> v_2 = 0.25 / 1.25 / 0.5 * s_2 = 0.4 * s_2 = (0.2, 0);
    # |s_1|^2 = 1.25 -> v_1 = sqrt(1.25) / 2.25 * (0.5, 1.0)
    v, c = _hand_routing(1)
    assert set(c.values()) == {0.5}
    assert v[2] == pytest.approx((0.2, 0.0), abs=1e-15)
    k = math.sqrt(1.25) / 2.25
    assert v[1] == pytest.approx((0.5 * k, k), abs=1e-15)
    # agreement: b_11 = 0.5 k, b_21 = 2 k, b_12 = 0, b_22 = 0.2 -> iteration 2, child 1:
    # c_11 = 1 / (1 + exp(-0.5 k)); child 2: c_21 = 1 / (1 + exp(0.2 - 2 k))
    _, c2 = _hand_routing(2)
    assert c2[1, 1] == pytest.approx(1 / (1 + math.exp(-0.5 * k)), abs=1e-15)
    assert c2[2, 1] == pytest.approx(1 / (1 + math.exp(0.2 - 2 * k)), abs=1e-15)


def _u_hat_tensor():
    """[N=1, J=2, I=2, D=2] in the layout dynamic_routing takes (parent first)."""
    return torch.tensor([[[U_HAT[i, j] for i in (1, 2)] for j in (1, 2)]], dtype=torch.float64)


@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_dynamic_routing_matches_hand_computation(iterations):
    v, c = dynamic_routing(_u_hat_tensor(), iterations)
    hv, hc = _hand_routing(iterations)
    assert torch.allclose(v[0], torch.tensor([hv[1], hv[2]], dtype=torch.float64), atol=1e-6, rtol=0)
    want_c = torch.tensor([[hc[i, j] for i in (1, 2)] for j in (1, 2)], dtype=torch.float64)
    assert torch.allclose(c[0], want_c, atol=1e-6, rtol=0)
    assert torch.allclose(c[0].sum(dim=0), torch.ones(2, dtype=torch.float64))  # per child, over parents


@pytest.mark.parametrize("iterations", [1, 3])
def test_class_capsules_apply_w_ij_then_route(iterations):
    layer = ClassCapsules(num_in=2, in_dim=2, num_out=2, out_dim=2, iterations=iterations).double()
    with torch.no_grad():  # weight[i, :, j*D:(j+1)*D] = W_ij^T, since u_hat_ij = u_i @ W_ij^T
        for (i, j), w in W.items():
            layer.weight[i - 1, :, (j - 1) * 2 : j * 2] = torch.tensor(w, dtype=torch.float64).T
    u = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    assert torch.equal(layer.predictions(u), _u_hat_tensor())
    hv, _ = _hand_routing(iterations)
    assert torch.allclose(layer(u)[0], torch.tensor([hv[1], hv[2]], dtype=torch.float64), atol=1e-6, rtol=0)


def test_routing_rejects_zero_iterations():
    with pytest.raises(ValueError, match="at least 1"):
        dynamic_routing(_u_hat_tensor(), 0)


# --- decoder and total loss ------------------------------------------------------------------

SMALL = dict(stem_channels=8, stem_kernel=5, stem_stride=2, primary_types=4, primary_kernel=5, decoder_hidden=(16,))


def test_reconstruction_reads_only_the_labelled_capsule():
    torch.manual_seed(0)
    model = CapsNet(**SMALL).double()
    v = torch.randn(3, 10, 16, dtype=torch.float64)
    labels = torch.tensor([1, 4, 9])
    other = v.clone()
    other[torch.arange(3), (labels + 1) % 10] += 5.0  # change a capsule that is not the label's
    assert torch.equal(model.reconstruct(v, labels), model.reconstruct(other, labels))
    changed = v.clone()
    changed[torch.arange(3), labels] += 5.0
    assert not torch.allclose(model.reconstruct(v, labels), model.reconstruct(changed, labels))


def test_training_loss_is_margin_plus_weighted_reconstruction():
    torch.manual_seed(0)
    model = CapsNet(**SMALL).double()
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    y = torch.tensor([0, 3, 5, 7])
    with torch.no_grad():
        loss, lengths = training_loss(model, x, y)
        v = model.forward_capsules(x)
        sse = ((model.reconstruct(v, y) - x.reshape(4, -1)) ** 2).sum(dim=1).mean()
        assert torch.allclose(lengths, model(x))
    assert float(loss) == pytest.approx(float(margin_loss(lengths, y) + 0.0005 * sse), rel=1e-12)
    assert ((lengths >= 0) & (lengths < 1)).all()
