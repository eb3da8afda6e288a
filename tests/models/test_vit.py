"""The ViT backbone (torchvision's VisionTransformer split per encoder layer): structure, equivalence with
torchvision, local pre-trained weights, class-token heads, costs, a training step, paper B's App. E sizes."""
import pytest
import torch
from torch.nn import functional as F
from torchvision.models import VisionTransformer
from torchvision.models.vision_transformer import EncoderBlock

from eebench.models import BACKBONES, ModelSpec, build_model, head_blocks, head_costs
from eebench.models.backbones import VIT_SIZES, ViTEmbedding
from eebench.models.heads import GlobalPool, set_token_pool
from tests.fixtures import run_blocks

TINY = dict(image_size=16, patch_size=4, hidden_dim=32, mlp_dim=64, num_layers=3, num_heads=2)


def spec(**overrides):
    base = dict(backbone="vit", backbone_params=TINY, input_shape=(3, 16, 16), num_classes=5)
    return ModelSpec(**{**base, **overrides})


def test_blocks_are_embedding_plus_layer_then_layers_and_the_final_norm_last():
    built = BACKBONES.get("vit")((3, 16, 16), **TINY)
    assert built.token_pool == "cls" and built.widths == [32, 32, 32] and len(built.blocks) == 3
    first, middle, last = built.blocks
    assert isinstance(first[0], ViTEmbedding) and isinstance(first[1], EncoderBlock)
    assert isinstance(middle, EncoderBlock)
    assert isinstance(last[0], EncoderBlock) and isinstance(last[1], torch.nn.LayerNorm)
    # one layer: embedding, the layer and the norm in the single block
    (only,) = BACKBONES.get("vit")((3, 16, 16), **{**TINY, "num_layers": 1}).blocks
    assert [type(m) for m in only] == [ViTEmbedding, EncoderBlock, torch.nn.LayerNorm]


def test_forward_gives_every_heads_logits_on_tokens():
    model = build_model(spec(), seed=0)
    outputs = model(torch.randn(4, 3, 16, 16))
    assert [tuple(o.shape) for o in outputs] == [(4, 5)] * 3
    assert [tuple(h.shape) for h in run_blocks(model, torch.randn(2, 3, 16, 16))] == [(2, 17, 32)] * 3
    assert all(m.tokens == "cls" for m in model.modules() if isinstance(m, GlobalPool))


def test_image_size_defaults_to_the_input_and_is_checked():
    built = BACKBONES.get("vit")((1, 8, 8), **{**TINY, "image_size": None})
    assert built.blocks[0](torch.randn(2, 1, 8, 8)).shape == (2, 5, 32)  # 1 channel: own patch embedding
    with pytest.raises(ValueError, match="16x16"):
        build_model(spec())(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="multiple of patch_size"):
        BACKBONES.get("vit")((3, 16, 16), **{**TINY, "patch_size": 5})


def torchvision_vit(num_classes=1000):
    torch.manual_seed(7)
    net = VisionTransformer(image_size=16, patch_size=4, num_layers=3, num_heads=2, hidden_dim=32, mlp_dim=64,
                            num_classes=num_classes)
    with torch.no_grad():  # torchvision starts the class token and the head at zero: make them count
        net.class_token.normal_()
        net.heads.head.weight.normal_()
    return net.eval()


def test_local_torchvision_weights_load_and_the_last_block_is_what_torchvisions_heads_see(tmp_path):
    net = torchvision_vit()
    path = tmp_path / "vit.pth"
    torch.save(net.state_dict(), path)  # torchvision's key layout: conv_proj.*, class_token, encoder.*, heads.*
    model = build_model(spec(backbone_params={**TINY, "weights": str(path)}), seed=0).eval()
    x = torch.randn(3, 3, 16, 16)
    features = run_blocks(model, x)[-1][:, 0]
    head = net.heads
    net.heads = torch.nn.Identity()  # torchvision's forward up to its classifier: encoder, LayerNorm, token 0
    assert torch.allclose(features, net(x), atol=1e-6)
    # every block is torchvision's layer: the encoder's layers one by one
    tokens = torch.cat([net.class_token.expand(3, -1, -1), net._process_input(x)], dim=1) + net.encoder.pos_embedding
    for block_output, layer in zip(run_blocks(model, x)[:-1], net.encoder.layers):
        tokens = layer(tokens)
        assert torch.allclose(block_output, tokens, atol=1e-6)
    # the pre-trained classifier is dropped: the final classifier is the pipeline's own
    assert not torch.equal(model.heads["2"][1].weight, head.head.weight[:5])


def test_weights_of_another_size_or_layout_are_refused(tmp_path):
    path = tmp_path / "vit.pth"
    torch.save(torchvision_vit().state_dict(), path)
    with pytest.raises(ValueError, match="do not fit"):
        build_model(spec(backbone_params={**TINY, "hidden_dim": 16, "weights": str(path)}))
    state = torchvision_vit().state_dict()
    state.pop("encoder.ln.weight")
    torch.save(state, path)
    with pytest.raises(ValueError, match="encoder.ln.weight"):
        build_model(spec(backbone_params={**TINY, "weights": str(path)}))


def test_a_missing_weights_file_raises_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "vit_b_16.pth"
    with pytest.raises(FileNotFoundError, match=str(path)):
        build_model(spec(backbone_params={**TINY, "weights": str(path)}))
    with pytest.raises(FileNotFoundError, match=str(path)), torch.device("meta"):
        head_blocks(spec(backbone_params={**TINY, "weights": str(path)}))


def test_every_head_reads_the_class_token_only():
    model = build_model(spec(ic={"type": "mlp", "hidden": [8]}), seed=0).eval()
    outputs = [h.detach() for h in run_blocks(model, torch.randn(2, 3, 16, 16))]
    for index, hidden in enumerate(outputs):
        head = model.heads[str(index)]
        hidden = hidden.clone().requires_grad_(True)
        logits = head(hidden)
        # the logits' gradient reaches token 0 and nothing else ...
        (grad,) = torch.autograd.grad(logits.sum(), hidden)
        assert grad[:, 0].abs().sum() > 0 and torch.count_nonzero(grad[:, 1:]) == 0
        # ... so rewriting every other token changes nothing
        changed = hidden.detach().clone()
        changed[:, 1:] = torch.randn_like(changed[:, 1:]) * 10
        assert torch.equal(head(changed), logits.detach())
        # (a mean-pooling head would have changed: the check has teeth)
        set_token_pool(head, "mean")
        assert not torch.allclose(head(changed), head(hidden.detach()))
        set_token_pool(head, "cls")


@pytest.mark.parametrize("ic", [{"type": "sdn", "pool_size": 1}, {"type": "gpf", "state_dim": 4}])
def test_other_ic_types_read_the_class_token_too(ic):
    model = build_model(spec(ic=ic), seed=0).eval()
    assert [m.tokens for m in model.modules() if isinstance(m, GlobalPool)] == ["cls"] * 3
    hidden = run_blocks(model, torch.randn(2, 3, 16, 16))[0].detach()
    changed = hidden.clone()
    changed[:, 1:] = 0
    assert torch.equal(model.heads["0"](changed), model.heads["0"](hidden))


def test_costs_are_positive_increasing_and_match_a_hand_count():
    model = build_model(spec(), seed=0)
    costs, backbone = head_costs(model, (3, 16, 16))
    t, d, m = 17, 32, 64  # 16 patches + class token
    layer = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * 2 * t * d * m  # qkv, scores+values, out, MLP
    embed = 2 * 16 * d * 3 * 4 * 4  # conv_proj: 16 patches, 3 * 4 * 4 inputs each
    head = 2 * d * 5
    assert costs == [embed + layer + head, embed + 2 * layer + 2 * head, embed + 3 * layer + 3 * head]
    assert backbone == embed + 3 * layer + head
    # the same count whichever attention path runs (eval without grad: torch's fused MHA; training: SDPA)
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 16, 16))
    assert counter.get_total_flops() == costs[-1]


def test_one_optimiser_step_of_the_joint_loss_trains_blocks_and_heads():
    model = build_model(spec(), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    loss = sum(F.cross_entropy(logits, y) for logits in model(x))
    loss.backward()
    optimiser.step()
    after = model.state_dict()
    for key in ("blocks.0.0.conv_proj.weight", "blocks.0.0.class_token", "blocks.0.0.pos_embedding",
                "blocks.1.self_attention.in_proj_weight", "blocks.2.1.weight", "heads.0.1.weight", "heads.2.1.weight"):
        assert not torch.equal(before[key], after[key]), key


def test_seeded_builds_are_identical():
    a, b = build_model(spec(), seed=3).state_dict(), build_model(spec(), seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = build_model(spec(), seed=4).state_dict()
    assert not torch.equal(a["blocks.0.0.pos_embedding"], c["blocks.0.0.pos_embedding"])


@pytest.mark.parametrize("name, blocks, tokens, gmacs", [
    ("vit_t_cifar", 7, 65, 0.195), ("vit_t_imagenet", 12, 197, 1.254), ("vit_s", 12, 197, 4.599),
    ("vit_b", 12, 197, 17.564)])
def test_paper_b_sizes(name, blocks, tokens, gmacs):
    size = VIT_SIZES[name]
    shape = (3, size["image_size"], size["image_size"])
    with torch.device("meta"):
        model = build_model(ModelSpec("vit", size, shape, 1000, placement=[]))
        hidden = model.blocks[0](torch.empty(1, *shape))
    assert len(model.blocks) == blocks and tuple(hidden.shape) == (1, tokens, size["hidden_dim"])
    _, backbone = head_costs(model, shape)
    # torchvision lists vit_b_16 (with its 1000-class classifier) at 17.564 GFLOPS, i.e. multiply-adds
    assert round(backbone / 2e9, 3) == gmacs
    if name == "vit_b":  # the parameters are torchvision's vit_b_16 without its classifier
        from torchvision.models import vit_b_16

        with torch.device("meta"):
            reference = vit_b_16()
        count = lambda modules: sum(p.numel() for m in modules for p in m.parameters())  # noqa: E731
        assert count(model.blocks) == count([reference]) - count([reference.heads]) == 85_798_656


def test_paper_b_placements():
    # E.3 ViT-T/CIFAR {0, ..., 6}: the IC at 6 is the final classifier here (one head per block); E.8 ViT-B {3, 5, 7, 9}
    assert head_blocks(ModelSpec("vit", VIT_SIZES["vit_t_cifar"], (3, 32, 32), 100, placement=list(range(7)))) \
        == list(range(7))
    assert head_blocks(ModelSpec("vit", VIT_SIZES["vit_b"], (3, 224, 224), 100, placement=[3, 5, 7, 9])) \
        == [3, 5, 7, 9, 11]
