"""eebench.torch_eager: torch's optimizers and FLOP counter without torch.compile guards compute what torch's own
do, and a training process no longer imports torch._dynamo (1.1-1.6 s a job)."""
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from eebench import torch_eager


def _train(optimizer_class, steps=5, **kwargs):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    optimizer = optimizer_class(model.parameters(), lr=0.01, **kwargs)
    data = torch.randn(steps, 4, 6)
    for x in data:
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()
    return model, optimizer


@pytest.mark.parametrize("ours, theirs, kwargs", [
    (torch_eager.AdamW, torch.optim.AdamW, {"weight_decay": 0.1}),
    (torch_eager.Adam, torch.optim.Adam, {}),
])
def test_unguarded_optimizers_match_torch(ours, theirs, kwargs):
    model_ours, opt_ours = _train(ours, **kwargs)
    model_theirs, opt_theirs = _train(theirs, **kwargs)
    for a, b in zip(model_ours.parameters(), model_theirs.parameters()):
        assert torch.equal(a, b)
    assert isinstance(opt_ours, theirs)
    # Their state dicts are interchangeable (resume checkpoints written before this class still load).
    _, fresh = _train(ours, steps=1, **kwargs)
    fresh.load_state_dict(opt_theirs.state_dict())
    assert fresh.state_dict()["state"][0]["step"] == opt_theirs.state_dict()["state"][0]["step"] == 5
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt_theirs.state_dict()["state"][0]["exp_avg"])


def test_step_updates_without_gradients_and_runs_closures_with_them():
    seen = []
    model = torch.nn.Linear(2, 1)
    before = model.weight.detach().clone()
    optimizer = torch_eager.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 2)).sum().backward()
    # With gradients on, the in-place update of a leaf that requires grad would raise: the step turns them off ...
    optimizer.step(lambda: seen.append(torch.is_grad_enabled()))
    assert not torch.equal(model.weight, before)
    assert seen == [True]  # ... except around the closure (torch's own rule)
    assert torch.is_grad_enabled()  # and restores the mode afterwards


def test_flop_counter_counts_what_torch_counts():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 10))
    x = torch.randn(2, 1, 8, 8)
    with FlopCounterMode(display=False) as theirs:
        model(x)
    with torch_eager.FlopCounter(display=False) as ours:
        model(x)
    # conv: 2 * (batch 2 * 64 positions * 4 out * 9 taps); linear: 2 * (2 * 256 * 10)
    assert ours.get_total_flops() == theirs.get_total_flops() == 2 * 2 * 64 * 4 * 9 + 2 * 2 * 256 * 10


def test_training_and_counting_do_not_import_dynamo():
    script = (
        "import sys, torch\n"
        "from eebench import torch_eager\n"
        "model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(72, 3))\n"
        "with torch_eager.FlopCounter(display=False):\n"
        "    model(torch.ones(1, 1, 8, 8))\n"
        "opt = torch_eager.AdamW(model.parameters(), lr=0.1)\n"
        "model(torch.ones(1, 1, 8, 8)).sum().backward(); opt.step(); opt.zero_grad()\n"
        "opt.load_state_dict(opt.state_dict())\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
