"""How heads pool tokens (Blocks.token_pool through GlobalPool), the example input, and that CNN/ResNet models are
bit-identical to what they were before token pooling existed."""
import hashlib

import pytest
import torch

from eebench.models import BACKBONES, IC_TYPES, ModelSpec, build_model
from eebench.models.backbones import Blocks
from eebench.models.heads import GlobalPool, set_token_pool


def test_global_pool_modes():
    tokens = torch.randn(2, 5, 3)
    assert torch.equal(GlobalPool()(tokens), tokens.mean(dim=1))
    assert torch.equal(GlobalPool("cls")(tokens), tokens[:, 0])
    image, flat = torch.randn(2, 3, 4, 4), torch.randn(2, 3)
    for mode in ("mean", "cls"):  # maps are always averaged; flat features pass through
        assert torch.equal(GlobalPool(mode)(image), image.mean(dim=(2, 3)))
        assert torch.equal(GlobalPool(mode)(flat), flat)
    with pytest.raises(ValueError, match="'mean' or 'cls'"):
        GlobalPool("max")
    assert "tokens=cls" in repr(GlobalPool("cls"))


@pytest.mark.parametrize("name", ["linear", "mlp", "sdn", "gpf"])
def test_set_token_pool_reaches_every_ic_types_pooling(name):
    extra = {"mlp": {"hidden": [4]}, "sdn": {"pool_size": 1}, "gpf": {"state_dim": 5}}.get(name, {})
    head = IC_TYPES.get(name)(6, 3, **extra)
    pools = [m for m in head.modules() if isinstance(m, GlobalPool)]
    assert pools and all(p.tokens == "mean" for p in pools)
    tokens = torch.randn(2, 4, 6)
    mean = head(tokens)
    set_token_pool(head, "cls")
    assert all(p.tokens == "cls" for p in pools)
    assert torch.equal(head(tokens), head(tokens[:, :1].expand(-1, 4, -1)))
    assert not torch.allclose(head(tokens), mean)


def test_blocks_validate_token_pool_and_widths():
    blocks = torch.nn.ModuleList([torch.nn.Identity()])
    with pytest.raises(ValueError, match="token_pool"):
        Blocks(blocks, [3], token_pool="first")
    with pytest.raises(ValueError, match="widths"):
        Blocks(blocks, [3, 3])


def test_cnn_heads_keep_mean_pooling_and_float_zero_examples():
    model = build_model(ModelSpec("cnn", {"widths": [4], "strides": [1]}, (1, 8, 8), 3))
    assert all(m.tokens == "mean" for m in model.modules() if isinstance(m, GlobalPool))
    example = model.example_input((1, 8, 8))
    assert example.dtype == torch.float32 and torch.equal(example, torch.zeros(1, 1, 8, 8))


def test_a_backbone_chooses_the_pooling_of_all_heads(monkeypatch):
    def tokens_backbone(input_shape, cls: bool):
        return Blocks(torch.nn.ModuleList([torch.nn.Identity(), torch.nn.Identity()]), [input_shape[-1]] * 2,
                      token_pool="cls" if cls else "mean")

    monkeypatch.setitem(BACKBONES._entries, "tokens_test", tokens_backbone)
    x = torch.randn(2, 5, 6)
    for cls in (True, False):
        spec = ModelSpec("tokens_test", {"cls": cls}, (5, 6), 3, ic={"type": "mlp", "hidden": [4]})
        model = build_model(spec, seed=0)
        changed = x.clone()
        changed[:, 1:] += 1
        same = [torch.equal(a, b) for a, b in zip(model(x), model(changed))]
        assert same == [cls, cls]
        static = build_model(ModelSpec(**{**spec.to_dict(), "placement": [0], "truncate_at": 0}), seed=0)
        assert static.heads["0"][0].tokens == ("cls" if cls else "mean")


# Fingerprints of seeded builds made with the code before token pooling (git e9d473e, torch 2.14.1 x86_64):
# sha256 (first 16 hex digits) of the state dict (keys and bytes, in order), and the sum of every head's logits
# in eval mode on torch.manual_seed(0); torch.randn(2, *input_shape).
BEFORE = {
    "cnn_sdn": (ModelSpec("cnn", {"widths": [16, 32, 64, 64], "strides": [1, 2, 1, 2]}, (1, 8, 8), 10,
                          ic={"type": "sdn", "pool_size": 2}), "3de9e265571a1e12", -3.580513662658632),
    "cnn_gpf": (ModelSpec("cnn", {"widths": [16, 32, 64, 64], "strides": [1, 2, 1, 2]}, (1, 8, 8), 10,
                          ic={"type": "gpf", "state_dim": 4}), "b7c44dae364ac643", -2.454241222003475),
    "resnet18_mlp": (ModelSpec("resnet18", {"cifar_stem": True}, (3, 8, 8), 7, ic={"type": "mlp", "hidden": [5]},
                               placement=[1, 3]), "6dd772f0c67031be", 0.53202024102211),
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_cnn_and_resnet_builds_are_bit_identical_to_before(name):
    spec, state_hash, logits_sum = BEFORE[name]
    model = build_model(spec, seed=11)
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().contiguous().numpy().tobytes())
    assert digest.hexdigest()[:16] == state_hash
    torch.manual_seed(0)
    x = torch.randn(2, *spec.input_shape)
    with torch.no_grad():
        total = float(torch.stack(model.eval()(x)).double().sum())
    assert total == pytest.approx(logits_sum, rel=1e-6, abs=1e-6)
