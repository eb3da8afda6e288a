"""Paper B's training mechanics as switches beside ours (eebench.training.loop): label smoothing, gradient
clipping, the sum or mean over heads, GPF's loss weights; each checked against hand-computed values, with the
default keeping our behaviour."""
import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from eebench.models import ModelSpec, build_model
from eebench.training import TrainingConfig
from eebench.training import loop
from eebench.training.config import SWITCH_DEFAULTS
from eebench.training.loop import train_phase
from eebench.training.losses import head_loss_factors, training_loss
from eebench.training.regimes import IC_PHASE_FROZEN_FINAL, JOINT_PHASE
from tests.fixtures import TOY_X, TOY_Y, first_step_grads, two_head_net

ROOT = Path(__file__).resolve().parents[2]
X = torch.tensor(TOY_X)
Y = torch.tensor(TOY_Y)



def grads_of(loss_fn):
    """Gradients of ``loss_fn(outputs)`` on a fresh two_head_net, per parameter name."""
    net = two_head_net()
    loss_fn(net(X)).backward()
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in net.named_parameters()}


def assert_grads(actual, expected):
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], msg=name)


# Label smoothing ----------------------------------------------------------------------------------------------


def log_softmax_by_hand(row):
    norm = math.log(sum(math.exp(v) for v in row))
    return [v - norm for v in row]


def test_label_smoothing_of_a_class_index_by_hand():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    logp = log_softmax_by_hand([2.0, 0.0, -1.0])
    # s = 0.1, C = 3: target (1 - s) * one_hot + s / C = [0.9333.., 0.0333.., 0.0333..]
    target = [0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3]
    expected = -sum(t * lp for t, lp in zip(target, logp))
    assert training_loss("single_label", 0.1)(logits, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-6)
    assert training_loss("single_label", 0.0)(logits, torch.tensor([0])).item() == pytest.approx(-logp[0], rel=1e-6)


def test_label_smoothing_of_a_mixed_target_equals_the_authors_mixup_target():
    """Paper B's utils.py:68-73: each one-hot label smoothed (off = s/C, on = 1 - s + s/C), then mixed with
    lambda; here lambda = 0.7 between classes 0 and 1."""
    s, C, lam = 0.1, 3, 0.7
    off, on = s / C, 1 - s + s / C
    authors = [on * lam + off * (1 - lam), off * lam + on * (1 - lam), off]  # [0.66333, 0.30333, 0.03333]
    assert authors == pytest.approx([0.663333, 0.303333, 0.033333], abs=1e-6)
    logits = torch.tensor([[0.5, 1.0, -2.0]])
    logp = log_softmax_by_hand([0.5, 1.0, -2.0])
    expected = -sum(t * lp for t, lp in zip(authors, logp))
    mixed = torch.tensor([[lam, 1 - lam, 0.0]])  # what MixCollate makes of the pair
    assert training_loss("single_label", s)(logits, mixed).item() == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_reaches_mixcollate_targets():
    from eebench.data.augment import MixCollate

    torch.manual_seed(0)
    samples = [(torch.randn(3, 4, 4), torch.tensor(i % 3)) for i in range(4)]
    x, soft = MixCollate(3, cutmix_alpha=0.0, mixup_alpha=1.0)(samples)
    logits = torch.randn(4, 3)
    smoothed = soft * 0.8 + 0.2 / 3
    expected = -(smoothed * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
    torch.testing.assert_close(training_loss("single_label", 0.2)(logits, soft), expected)


def test_the_loop_trains_on_the_smoothed_loss(monkeypatch):
    grads, _ = first_step_grads(monkeypatch, label_smoothing=0.2)
    expected = grads_of(lambda out: sum(F.cross_entropy(o, Y, label_smoothing=0.2) for o in out))
    assert_grads(grads, expected)
    plain = grads_of(lambda out: sum(F.cross_entropy(o, Y) for o in out))
    assert not torch.allclose(grads["heads.1.weight"], plain["heads.1.weight"])


def test_label_smoothing_refuses_a_task_that_is_not_single_label():
    with pytest.raises(ValueError, match="single-label"):
        training_loss("multi_label", 0.1)


# Gradient clipping --------------------------------------------------------------------------------------------


def test_gradients_are_clipped_to_the_norm_before_the_step(monkeypatch):
    full = grads_of(lambda out: sum(F.cross_entropy(o, Y) for o in out))
    norm = torch.sqrt(sum((g ** 2).sum() for g in full.values())).item()
    assert norm > 0.05
    grads, _ = first_step_grads(monkeypatch, grad_clip_norm=0.05)
    assert_grads(grads, {n: g * (0.05 / (norm + 1e-6)) for n, g in full.items()})
    unclipped, _ = first_step_grads(monkeypatch, grad_clip_norm=10 * norm)  # above the norm: untouched
    assert_grads(unclipped, full)
    default, _ = first_step_grads(monkeypatch)
    assert_grads(default, full)


# Sum or mean over heads ---------------------------------------------------------------------------------------


def test_mean_over_heads_divides_the_weighted_sum_by_the_loss_sets_size(monkeypatch):
    g0 = grads_of(lambda out: F.cross_entropy(out[0], Y))
    g1 = grads_of(lambda out: F.cross_entropy(out[1], Y))
    summed, log = first_step_grads(monkeypatch, loss_scaling="increasing")  # alpha = 1/2, 1
    assert_grads(summed, {n: 0.5 * g0[n] + g1[n] for n in g0})
    assert log["loss_weights"] == pytest.approx([0.5, 1.0])
    mean, log = first_step_grads(monkeypatch, loss_scaling="increasing", head_loss_reduction="mean")
    assert_grads(mean, {n: (0.5 * g0[n] + g1[n]) / 2 for n in g0})
    assert log["loss_weights"] == pytest.approx([0.25, 0.5])


def test_a_single_head_loss_is_the_same_under_mean_and_authors_weights():
    for config in (TrainingConfig(head_loss_reduction="mean"), TrainingConfig(gpf_loss_weights="authors")):
        assert head_loss_factors((2,), [0.1, 0.2, 0.3], 3, config, gpf=True) == [1.0]


# GPF's loss weights -------------------------------------------------------------------------------------------


def test_gpf_authors_weights_by_hand():
    """K = 3 heads: the code's (i+1) / (K(K+1)/2) = 1/6, 2/6, 3/6 (sum 1, against the imitation loss's 1);
    ours with increasing scaling k/K = 1/3, 2/3, 1 (sum 2: the imitation loss half as strong)."""
    increasing = [1 / 3, 2 / 3, 1.0]
    authors = head_loss_factors((0, 1, 2), increasing, 3, TrainingConfig(gpf_loss_weights="authors"), gpf=True)
    assert authors == pytest.approx([1 / 6, 2 / 6, 3 / 6])
    ours = head_loss_factors((0, 1, 2), increasing, 3, TrainingConfig(), gpf=True)
    assert ours == pytest.approx(increasing)
    assert sum(ours) / sum(authors) == pytest.approx((3 + 1) / 2)
    # K = 7 (cnn_gpf): imitation 4 times weaker under ours
    k7 = [k / 7 for k in range(1, 8)]
    ratio = sum(head_loss_factors(tuple(range(7)), k7, 7, TrainingConfig(), gpf=True)) / sum(
        head_loss_factors(tuple(range(7)), k7, 7, TrainingConfig(gpf_loss_weights="authors"), gpf=True))
    assert ratio == pytest.approx(4.0)
    # Without the ICs' frozen final head in the loss set, the ICs keep the weights they have over all K heads.
    assert head_loss_factors((0, 1), increasing, 3, TrainingConfig(gpf_loss_weights="authors"),
                             gpf=True) == pytest.approx([1 / 6, 2 / 6])
    # A network without GPF's merge module is left alone.
    assert head_loss_factors((0, 1, 2), increasing, 3, TrainingConfig(gpf_loss_weights="authors"),
                             gpf=False) == pytest.approx(increasing)


def gpf_first_loss(gpf_loss_weights, phase=JOINT_PHASE):
    """The loop's first-step loss on a GPF network (one batch = the set, so the epoch's train_loss) and the
    heads' cross-entropies and imitation loss of the same forward pass, computed apart."""
    spec = ModelSpec(backbone="cnn", backbone_params={"widths": [4, 4, 4], "strides": [1, 1, 1]},
                     input_shape=(1, 4, 4), num_classes=3, ic={"type": "gpf", "state_dim": 4})
    model = build_model(spec, seed=0)
    torch.manual_seed(1)
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 3, (8,))
    twin = copy.deepcopy(model)
    loop.set_trainable(twin, phase.plans(twin.head_blocks, len(twin.blocks))[0])
    outputs = twin(x)
    ce = [F.cross_entropy(o, y).item() for o in outputs]
    imitation = twin.auxiliary_loss.item()
    config = TrainingConfig(batch_size=8, max_epochs=1, augment=False, loss_scaling="increasing",
                            gpf_loss_weights=gpf_loss_weights)
    history = train_phase(model, phase, TensorDataset(x, y), TensorDataset(x, y), "single_label", config,
                          torch.device("cpu"))
    return history[0]["train_loss"], ce, imitation


def test_gpf_loss_in_the_loop_weighs_imitation_as_the_authors_code():
    """methods/early_exit.py:219-222: sum((i+1) L_i) / (K(K+1)/2) + imitation; ours: sum(k/K L_k) + imitation,
    K = 3 here (two ICs and the final head)."""
    authors, ce, imitation = gpf_first_loss("authors")
    assert imitation > 0
    assert authors == pytest.approx((ce[0] + 2 * ce[1] + 3 * ce[2]) / 6 + imitation, rel=1e-5)
    ours, ce_ours, imitation_ours = gpf_first_loss("ours")
    assert ce_ours == pytest.approx(ce) and imitation_ours == pytest.approx(imitation)
    assert ours == pytest.approx((ce[0] + 2 * ce[1] + 3 * ce[2]) / 3 + imitation, rel=1e-5)
    # relative weight of classification against imitation: ours (K+1)/2 = 2 times the authors'
    assert (ours - imitation) / (authors - imitation) == pytest.approx(2.0, rel=1e-5)


def test_gpf_authors_weights_in_disjoint_keep_the_code_s_denominator():
    authors, ce, imitation = gpf_first_loss("authors", IC_PHASE_FROZEN_FINAL)
    assert authors == pytest.approx((ce[0] + 2 * ce[1]) / 6 + imitation, rel=1e-5)


def test_gpf_authors_weights_refuse_another_loss_scaling():
    spec = ModelSpec(backbone="cnn", backbone_params={"widths": [4, 4], "strides": [1, 1]}, input_shape=(1, 4, 4),
                     num_classes=3, ic={"type": "gpf", "state_dim": 4})
    data = TensorDataset(torch.randn(4, 1, 4, 4), torch.randint(0, 3, (4,)))
    config = TrainingConfig(max_epochs=1, loss_scaling="decreasing", gpf_loss_weights="authors", augment=False)
    with pytest.raises(ValueError, match="gpf_loss_weights"):
        train_phase(build_model(spec, seed=0), JOINT_PHASE, data, data, "single_label", config, torch.device("cpu"))


# Settings -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key, value", [("early_stopping", "theirs"), ("gpf_loss_weights", "paper"),
                                        ("head_loss_reduction", "max"), ("label_smoothing", 1.0),
                                        ("label_smoothing", -0.1), ("grad_clip_norm", 0.0)])
def test_bad_values_are_refused(key, value):
    with pytest.raises(ValueError, match=key):
        TrainingConfig(**{key: value})


def test_the_identity_omits_the_switches_at_their_defaults():
    """A resume checkpoint written before the switches existed still matches a run that leaves them alone."""
    identity = TrainingConfig().identity()
    assert not set(SWITCH_DEFAULTS) & set(identity) and "checkpoint_every_batches" not in identity
    assert TrainingConfig(early_stopping="authors", grad_clip_norm=1.0).identity()["grad_clip_norm"] == 1.0


def test_schema_gives_the_switches_no_default_so_existing_runs_keep_their_params():
    """Schema validation fills schema defaults into the config (as Snakemake's validate), i.e. into every training
    JSON (a params change reruns); the switches must stay absent from a config that does not set them, and
    validate when set."""
    from eebench.schema import ConfigError, validate_schema
    from eebench.training.config import training_schema

    properties = training_schema()["properties"]
    assert set(SWITCH_DEFAULTS) <= set(properties)
    assert all("default" not in properties[key] for key in SWITCH_DEFAULTS)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate_schema(config)
    assert not set(SWITCH_DEFAULTS) & set(config["training"])
    config["training"].update(early_stopping="authors", label_smoothing=0.1, grad_clip_norm=1.0,
                              gpf_loss_weights="authors", head_loss_reduction="mean")
    validate_schema(config)
    TrainingConfig(**config["training"])  # every schema-valid setting is a loop setting
    config["training"]["early_stopping"] = "theirs"
    with pytest.raises(ConfigError, match="theirs"):
        validate_schema(config)


@pytest.mark.parametrize("settings, augmented", [
    ({"augment": True, "validation_augment": True}, True),
    ({"augment": True}, False),
    ({"augment": False, "validation_augment": True}, False),  # no augmentation to apply
])
def test_validation_augment_gives_early_stopping_augmented_images(monkeypatch, tmp_path, settings, augmented):
    """Early stopping reads the augmented validation split only under validation_augment (with augment); the
    logit cache's val logits are the plain split's either way."""
    from eebench import steps
    from eebench.data import load_split, prepare_dataset

    prepare_dataset("digits", {"split_seed": 0}, tmp_path / "d.npz")
    calls = []
    real = steps.load_augmented_validation
    monkeypatch.setattr(steps, "load_augmented_validation", lambda path: calls.append(path) or real(path))
    network = {"backbone": "cnn", "params": {"widths": [4, 4], "strides": [1, 2]}, "ic": {"type": "linear"},
               "placement": None}
    training = {"batch_size": 256, "max_epochs": 1, "patience": 1, **settings}
    steps.train_model(tmp_path / "d.npz", network, training, "joint", 0, tmp_path / "m.pt",
                      logits=tmp_path / "l.npz")
    assert len(calls) == int(augmented)
    val, _ = load_split(tmp_path / "d.npz", "val")
    assert np.load(tmp_path / "l.npz")["val_labels"].tolist() == val.tensors[1].tolist()
