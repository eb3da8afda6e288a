"""Every image backbone of paper B through the pipeline's own steps (issue 10 item 1): a tiny instance trains for
an epoch on prepared CIFAR-100 (the official pickles, written by the fixture) and its logit cache holds every
head's logits, exactly what the trained model outputs on the test images. BERT does the same on STS-B
(tests/data/test_text.py); the ResNet-34 paper config on SLURM (tests/slurm)."""
import numpy as np
import pytest
import torch

from eebench.data import load_split, prepare_dataset
from eebench.exits.sweep import load_cache
from eebench.inference import load_checkpoint
from eebench.io import MODEL_CHECKPOINT, read_checkpoint
from eebench.steps import cache_logits, train_model
from tests.fixtures import write_cifar100

CLASSES = 5  # labels the fixture uses; the network has CIFAR-100's 100 outputs
TINY = {
    "vit": ({"image_size": 32, "patch_size": 8, "hidden_dim": 16, "mlp_dim": 32, "num_layers": 3, "num_heads": 2},
            {"type": "linear"}),
    "msdnet": ({"base": 1, "step": 1, "channels": 4, "growth_rate": 2}, {"type": "msdnet", "hidden_channels": 8}),
    "resnet20": ({}, {"type": "sdn"}),
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar100(root, classes=CLASSES, per_class=4, test=12)
    out = root / "cifar100.npz"
    prepare_dataset("cifar100", {"root": str(root), "val_fraction": 0.5, "split_seed": 0}, out)
    return out


@pytest.mark.parametrize("backbone", sorted(TINY))
def test_a_tiny_instance_trains_an_epoch_and_caches_every_heads_logits(backbone, prepared, tmp_path):
    params, ic = TINY[backbone]
    model = {"backbone": backbone, "params": params, "ic": ic}
    training = {"max_epochs": 1, "patience": 1, "batch_size": 4, "lr": 1e-3, "augment": False, "num_workers": 0}
    checkpoint, cache_path = tmp_path / "model.pt", tmp_path / "cache.npz"
    train_model(str(prepared), model, training, "joint", 0, str(checkpoint))
    saved = read_checkpoint(checkpoint, MODEL_CHECKPOINT, keys=("history",))
    assert len(saved["history"]) == 1

    cache_logits(str(checkpoint), str(prepared), str(cache_path))
    cache = load_cache(cache_path)
    trained, _ = load_checkpoint(str(checkpoint))
    test, _ = load_split(prepared, "test")
    x = torch.stack([test[i][0] for i in range(len(test))])
    labels = np.array([int(test[i][1]) for i in range(len(test))])
    with torch.no_grad():
        expected = torch.stack(trained(x)).numpy()
    heads = len(trained.head_blocks)
    assert heads >= 3 and cache["test_logits"].shape == (heads, 12, 100)
    np.testing.assert_allclose(cache["test_logits"], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(cache["test_labels"], labels)
    assert (np.diff(cache["head_flops"]) > 0).all()  # a later exit costs more
