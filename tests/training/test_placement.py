"""GPU-efficiency settings of the loop (bf16 autocast, channels-last), exercised on the CPU: "auto" changes
nothing there, the explicit settings really take effect."""
import pytest
import torch
from torch.utils.data import TensorDataset

from eebench.models import ModelSpec, build_model
from eebench.training import TrainingConfig
from eebench.training.loop import train_phase
from eebench.training.placement import Placement
from eebench.training.regimes import JOINT_PHASE

CNN = {"widths": [4, 6], "strides": [1, 2]}
CPU = torch.device("cpu")


def data(n=16):
    g = torch.Generator().manual_seed(0)
    # Two channels: with one, contiguous and channels-last strides coincide and a check could not fail.
    return TensorDataset(torch.randn(n, 2, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g))


def test_auto_is_full_precision_and_contiguous_on_the_cpu():
    placement = Placement.of(TrainingConfig(), CPU, convolutional=True)
    assert placement.autocast_dtype is None and not placement.channels_last and not placement.pin_memory


def test_auto_on_cuda_asks_for_bf16_and_channels_last(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    placement = Placement.of(TrainingConfig(), torch.device("cuda"), convolutional=True)
    assert placement.autocast_dtype == torch.bfloat16 and placement.channels_last and placement.pin_memory
    assert not Placement.of(TrainingConfig(), torch.device("cuda"), convolutional=False).channels_last


def test_auto_on_the_cpu_trains_bit_identically_to_fp32():
    states = []
    for precision in ("auto", "fp32"):
        model = build_model(ModelSpec("cnn", CNN, (2, 8, 8), 3), seed=0)
        torch.manual_seed(0)
        config = TrainingConfig(max_epochs=1, batch_size=8, augment=False, precision=precision)
        train_phase(model, JOINT_PHASE, data(), data(8), "single_label", config, CPU)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


@pytest.mark.parametrize("precision, memory_format", [("bf16", "channels_last"), ("fp32", "contiguous")])
def test_bf16_autocast_and_channels_last_take_effect(monkeypatch, precision, memory_format):
    model = build_model(ModelSpec("cnn", CNN, (2, 8, 8), 3), seed=0)
    seen = []
    real_forward = model.forward

    def forward(x):
        outputs = real_forward(x)
        seen.append((x.is_contiguous(memory_format=torch.channels_last), outputs[0].dtype))
        return outputs

    monkeypatch.setattr(model, "forward", forward)
    config = TrainingConfig(max_epochs=1, batch_size=8, augment=False, precision=precision,
                            memory_format=memory_format)
    history = train_phase(model, JOINT_PHASE, data(), data(8), "single_label", config, CPU)
    fast = precision == "bf16"
    expected_dtype = torch.bfloat16 if fast else torch.float32
    assert seen and all(channels_last == fast and dtype == expected_dtype for channels_last, dtype in seen)
    assert model.blocks[1][0].weight.is_contiguous(memory_format=torch.channels_last) == fast
    assert torch.isfinite(torch.tensor(history[0]["train_loss"]))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="precision must be auto, fp32 or bf16"):
        TrainingConfig(precision="fp16")
    with pytest.raises(ValueError, match="memory_format"):
        TrainingConfig(memory_format="nhwc")
