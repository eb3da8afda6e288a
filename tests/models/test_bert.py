"""The BERT backbone (Hugging Face BertModel from a local directory, split per encoder layer): equivalence with
BertModel, the attention mask in every layer, [CLS] heads, token inputs and their costs, a training step."""
import copy
import shutil

import pytest
import torch
from torch.nn import functional as F

from eebench.models import BACKBONES, ModelSpec, build_model, head_blocks, head_costs
from eebench.models.backbones import BertInput, token_example_input
from eebench.models.heads import set_token_pool
from tests.fixtures import run_blocks

T = 12


@pytest.fixture
def bert_spec(tiny_bert_dir):
    def make(**overrides):
        base = dict(backbone="bert", backbone_params={"model_dir": str(tiny_bert_dir)}, input_shape=(2, T),
                    num_classes=3)
        return ModelSpec(**{**base, **overrides})
    return make


def tokens(batch=3, rows=2, pad_from=(T, 7, 4), seed=0):
    """[batch, rows, T] int64: random ids (0 at padding), mask 1 before ``pad_from[i]``, token types 0/1."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (batch, T), generator=generator)
    mask = torch.zeros(batch, T, dtype=torch.long)
    for i, end in enumerate(pad_from[:batch]):
        mask[i, :end] = 1
    ids = ids * mask
    types = (torch.arange(T) >= T // 2).long().expand(batch, T) * mask
    return torch.stack([ids, mask, types][:rows], dim=1)


def reference(model_dir):
    from transformers import BertModel

    return BertModel.from_pretrained(model_dir, local_files_only=True, add_pooling_layer=False).eval()


def test_blocks_are_embeddings_plus_layer_0_then_one_layer_each(bert_spec):
    built = BACKBONES.get("bert")((2, T), **bert_spec().backbone_params)
    assert len(built.blocks) == 2 and built.widths == [32, 32] and built.token_pool == "cls"
    assert isinstance(built.blocks[0][0], BertInput)
    assert built.blocks[0].training  # from_pretrained's eval mode is undone, like every other backbone
    shared = {id(built.blocks[0][0].shared), id(built.blocks[0][1].shared), id(built.blocks[1].shared)}
    assert len(shared) == 1


@pytest.mark.parametrize("rows", [2, 3])
def test_blocks_compute_what_bertmodel_computes_with_padding_and_token_types(bert_spec, tiny_bert_dir, rows):
    model = build_model(bert_spec(input_shape=(rows, T)), seed=0).eval()
    x = tokens(rows=rows)
    hidden = run_blocks(model, x)[-1]
    ref = reference(tiny_bert_dir)
    kwargs = {"token_type_ids": x[:, 2]} if rows == 3 else {}
    expected = ref(input_ids=x[:, 0], attention_mask=x[:, 1], **kwargs).last_hidden_state
    assert torch.allclose(hidden, expected, atol=1e-5)
    # every block is BertModel's layer with the extended mask
    states = ref(input_ids=x[:, 0], attention_mask=x[:, 1], output_hidden_states=True, **kwargs).hidden_states
    for block_output, state in zip(run_blocks(model, x), states[1:]):
        assert torch.allclose(block_output, state, atol=1e-5)


def test_the_attention_mask_reaches_every_layer(bert_spec):
    model = build_model(bert_spec(), seed=0).eval()
    x = tokens()
    changed = x.clone()
    changed[1, 0, 7:] = 55  # ids under padding (mask 0) ...
    changed[2, 0, 4:] = 66
    with torch.no_grad():
        before, after = model(x), model(changed)
    # ... change no head: no layer attends to padding
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(before, after))
    # the same change where the mask says "token" changes every head (the check has teeth)
    unmasked, unmasked_changed = x.clone(), changed.clone()
    unmasked[:, 1] = unmasked_changed[:, 1] = 1
    with torch.no_grad():
        before, after = model(unmasked), model(unmasked_changed)
    assert all(not torch.allclose(a[1:], b[1:]) for a, b in zip(before, after))
    # a later block alone would attend to padding: without the mask its [CLS] output differs
    hidden = run_blocks(model, x)[0].detach()
    layer = model.blocks[1].layer
    with torch.no_grad():
        assert not torch.allclose(layer(hidden, None)[1:, 0], model.blocks[1](hidden)[1:, 0])


def test_every_head_reads_the_cls_token_only(bert_spec):
    model = build_model(bert_spec(ic={"type": "mlp", "hidden": [8]}), seed=0).eval()
    for index, hidden in enumerate(run_blocks(model, tokens())):
        head = model.heads[str(index)]
        hidden = hidden.detach().requires_grad_(True)
        logits = head(hidden)
        (grad,) = torch.autograd.grad(logits.sum(), hidden)
        assert grad[:, 0].abs().sum() > 0 and torch.count_nonzero(grad[:, 1:]) == 0
        changed = hidden.detach().clone()
        changed[:, 1:] = torch.randn_like(changed[:, 1:])
        assert torch.equal(head(changed), logits.detach())
        set_token_pool(head, "mean")  # teeth: a mean-pooling head would have moved
        assert not torch.allclose(head(changed), head(hidden.detach()))
        set_token_pool(head, "cls")


def test_costs_are_positive_increasing_match_a_hand_count_and_need_no_valid_dummy(bert_spec):
    model = build_model(bert_spec(), seed=0)
    costs, backbone = head_costs(model, (2, T))  # flops.py feeds float zeros: ids 0, mask 0
    d, m = 32, 64
    layer = 2 * T * d * 3 * d + 2 * 2 * T * T * d + 2 * T * d * d + 2 * 2 * T * d * m
    head = 2 * d * 3
    assert costs == [layer + head, 2 * layer + 2 * head] and backbone == 2 * layer + head
    # the backbone's valid example (mask all ones) costs the same
    from torch.utils.flop_counter import FlopCounterMode

    example = model.example_input((2, T))
    assert example.dtype == torch.int64 and example.shape == (1, 2, T) and bool(example[0, 1].all())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(example)
    assert counter.get_total_flops() == costs[-1]
    assert head_costs(build_model(bert_spec(input_shape=(3, T))), (3, T)) == (costs, backbone)


def test_token_input_shapes_in_a_model_spec(bert_spec):
    spec = bert_spec(input_shape=(3, T))
    again = ModelSpec.from_dict({**spec.to_dict(), "input_shape": [3, T]})  # as read back from JSON
    assert again == spec and again.input_shape == (3, T)
    assert tuple(token_example_input((3, T)).shape) == (1, 3, T)
    assert tuple(token_example_input((3, 32, 32)).shape) == (1, 2, 32)  # a non-token shape: (2, last)
    model = build_model(again)
    assert all(o.shape == (3, 3) for o in model(tokens(rows=3)))


def test_bad_inputs_are_refused(bert_spec):
    model = build_model(bert_spec())
    with pytest.raises(ValueError, match=r"\[B, 2 or 3, T\]"):
        model(torch.zeros(2, T, dtype=torch.long))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(torch.ones(1, 2, 65, dtype=torch.long))
    with pytest.raises(TypeError, match="integers"):
        model(tokens().float() + 0.5)
    assert all(o.shape == (3, 3) for o in model(tokens().float()))  # integral floats are ids (head_costs' zeros)
    model(tokens())
    with pytest.raises(RuntimeError, match="run the blocks in order"):
        model.blocks[1](torch.zeros(2, 5, 32))


def test_one_optimiser_step_of_the_joint_loss_trains_blocks_and_heads(bert_spec):
    model = build_model(bert_spec(), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = sum(F.cross_entropy(o, torch.tensor([0, 1, 2])) for o in model(tokens()))
    loss.backward()
    optimiser.step()
    after = model.state_dict()
    for key in ("blocks.0.0.embeddings.word_embeddings.weight", "blocks.0.1.layer.attention.self.query.weight",
                "blocks.1.layer.output.dense.weight", "heads.0.1.weight", "heads.1.1.weight"):
        assert not torch.equal(before[key], after[key]), key


def test_regression_head_for_sts_b(bert_spec):
    model = build_model(bert_spec(num_classes=1, input_shape=(3, T)), seed=0)
    outputs = model(tokens(rows=3))
    assert [tuple(o.shape) for o in outputs] == [(3, 1)] * 2
    sum(F.mse_loss(o.squeeze(1), torch.rand(3)) for o in outputs).backward()


def test_pretrained_weights_are_the_directorys(bert_spec, tiny_bert_dir):
    state = build_model(bert_spec(), seed=0).state_dict()
    ref = reference(tiny_bert_dir).state_dict()
    assert torch.equal(state["blocks.0.0.embeddings.word_embeddings.weight"], ref["embeddings.word_embeddings.weight"])
    assert torch.equal(state["blocks.1.layer.output.dense.weight"], ref["encoder.layer.1.output.dense.weight"])
    other = build_model(bert_spec(), seed=1).state_dict()  # the seed draws the heads only
    assert torch.equal(state["blocks.1.layer.output.dense.weight"], other["blocks.1.layer.output.dense.weight"])
    assert not torch.equal(state["heads.1.1.weight"], other["heads.1.1.weight"])


def test_a_missing_model_dir_raises_naming_it(tmp_path):
    path = tmp_path / "bert-base-uncased"
    spec = ModelSpec("bert", {"model_dir": str(path)}, (2, T), 3)
    with pytest.raises(FileNotFoundError, match=str(path)):
        build_model(spec)
    with pytest.raises(FileNotFoundError, match=str(path)), torch.device("meta"):
        build_model(spec)


def test_head_blocks_at_dag_time_read_only_the_config(tiny_bert_dir, tmp_path):
    config_only = tmp_path / "config_only"
    config_only.mkdir()
    shutil.copy(tiny_bert_dir / "config.json", config_only / "config.json")
    # eebench.config builds every model with input_shape (3, 32, 32) on the meta device to find its heads
    spec = ModelSpec("bert", {"model_dir": str(config_only)}, (3, 32, 32), 2, placement=[0])
    assert head_blocks(spec) == [0, 1]


def test_a_copy_has_its_own_mask_holder(bert_spec):
    model = build_model(bert_spec(), seed=0).eval()
    clone = copy.deepcopy(model)
    assert clone.blocks[1].shared is clone.blocks[0][0].shared is not model.blocks[0][0].shared
    x = tokens()
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(x), clone(x)))


def test_bert_base_sizes_and_costs(tmp_path):
    from transformers import BertConfig

    BertConfig().save_pretrained(tmp_path)  # bert-base: 12 layers, hidden 768, 12 heads, FFN 3072
    spec = ModelSpec("bert", {"model_dir": str(tmp_path)}, (2, 128), 2, placement=list(range(11)))
    with torch.device("meta"):
        model = build_model(spec)
        _, backbone = head_costs(model, spec.input_shape)
    assert model.head_blocks == list(range(12))
    # per layer 12 * T * D^2 (projections, FFN) + 2 * T^2 * D (scores, values) multiply-adds: 11.17 G at T = 128
    assert backbone == 2 * (12 * (12 * 128 * 768 ** 2 + 2 * 128 ** 2 * 768) + 768 * 2)


def test_gradient_equilibriums_hooks_pass_the_hidden_states_between_blocks(bert_spec):
    # The mask travels beside the [B, T, D] tensor, so hooks that wrap block outputs and inputs keep working.
    from eebench.training.scaling import GradientEquilibrium

    model = build_model(bert_spec(), seed=0)
    equilibrium = GradientEquilibrium(model.blocks, model.head_blocks)
    equilibrium.set_heads([0, 1])
    outputs = model(tokens())
    sum(F.cross_entropy(o, torch.tensor([0, 1, 2])) for o in outputs).backward()
    assert model.blocks[0][0].embeddings.word_embeddings.weight.grad is not None
    equilibrium.remove()
