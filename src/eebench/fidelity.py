"""Fidelity presets: one switch for every reading where paper B's text and tables and the authors' released code
(kamadforge/early-exit-benchmark) do otherwise.

``fidelity: paper`` (the default) follows the papers' text and tables; ``fidelity: authors_code`` switches every
reading below to what the released code does. A preset only fills keys a setting leaves unset (the global
``training:``, the model's own ``training:`` and ``ic:`` all count as set), so a config that states a value keeps
it, and the preset is applied where model settings are resolved, before a run's identity is computed: two
presets that agree on a setting share its runs, two that differ never do. Under ``paper`` every switch is at
the value the code takes when the key is absent, so the preset writes nothing and existing runs keep their
identity.

Where the text, the tables and the code agree (the frozen final classifier of disjoint training: Tables 6, 16, 20
and ``model.train('without_backbone')``), there is no switch: both presets use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

PRESETS: tuple[str, ...] = ("paper", "authors_code")
DEFAULT_PRESET = "paper"


@dataclass(frozen=True)
class Switch:
    """One reading that the presets set: ``section`` and ``key`` of a resolved model entry (``training`` or
    ``ic``), its value under each preset, the Reading (``eebench.readings``) that says why, and which settings
    it applies to (a model entry and the config -> bool)."""

    section: str
    key: str
    values: dict[str, Any]
    reading: str
    applies: Callable[[dict[str, Any], dict[str, Any]], bool] = lambda entry, config: True

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}"


def _mixes_labels(entry: dict[str, Any], config: dict[str, Any]) -> bool:
    """The authors smooth labels by 0.1 only where Mixup or CutMix is on (train.py:227, methods/early_exit.py:164),
    and only single-label cross-entropy."""
    dataset = config.get("datasets", {}).get(entry["dataset"], {})
    mixing = any(float(dataset.get(key) or 0) > 0 for key in ("mixup_alpha", "cutmix_alpha"))
    return mixing and entry.get("task") in (None, "single_label")


SWITCHES: tuple[Switch, ...] = (
    Switch("training", "early_stopping", {"paper": "ours", "authors_code": "authors"}, "Early stopping"),
    Switch("training", "label_smoothing", {"paper": 0.0, "authors_code": 0.1}, "Label smoothing", _mixes_labels),
    Switch("training", "gpf_loss_weights", {"paper": "ours", "authors_code": "authors"}, "GPF's loss weights",
           lambda entry, config: entry["ic"].get("type") == "gpf"),
    Switch("training", "head_loss_reduction", {"paper": "sum", "authors_code": "mean"}, "Sum or mean over heads"),
    Switch("training", "validation_augment", {"paper": False, "authors_code": True}, "The authors' validation split",
           lambda entry, config: entry["training"].get("augment", True)),
    Switch("ic", "activation", {"paper": "relu", "authors_code": "gelu"}, "Activation inside two-layer ICs",
           lambda entry, config: entry["ic"].get("type") == "mlp"),
)


def check_preset(preset: Any, key: str) -> str:
    if preset not in PRESETS:
        raise ValueError(f"{key}: unknown fidelity preset {preset!r}; choose {' or '.join(PRESETS)}")
    return preset


def apply_preset(entry: dict[str, Any], explicit: dict[str, set[str]], preset: str,
                 config: dict[str, Any]) -> dict[str, Any]:
    """``entry`` (a resolved model setting) with every switch that applies to it and that ``explicit`` (the keys
    the config sets, per section) leaves unset filled with ``preset``'s value, where that value differs from
    the default (the ``paper`` value, what the code takes when the key is absent)."""
    for switch in SWITCHES:
        value = switch.values[preset]
        if switch.key in explicit.get(switch.section, set()) or value == switch.values[DEFAULT_PRESET]:
            continue
        if switch.applies(entry, config):
            entry[switch.section] = {**entry[switch.section], switch.key: value}
    return entry


def differences() -> list[dict[str, Any]]:
    """The switches as rows (key, each preset's value, the reading): what ``authors_code`` changes."""
    return [{"key": switch.path, **switch.values, "reading": switch.reading} for switch in SWITCHES]
