"""Configuration checks that a JSON schema cannot express (names must exist in registries, cross references
between sections), and the small lookups the workflow needs. Every error names the offending key."""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    pass


def load_config(path: str | Path) -> dict[str, Any]:
    with open(path) as handle:
        return yaml.safe_load(handle)


def registries() -> dict[str, Any]:
    """Every registry a config refers to, by the kind of name it holds."""
    from eebench.data import DATASETS
    from eebench.exits.criteria import CRITERIA
    from eebench.models import BACKBONES, IC_TYPES
    from eebench.render.figures import FIGURES
    from eebench.render.tables import TABLES
    from eebench.training import REGIMES

    return {
        "dataset": DATASETS, "backbone": BACKBONES, "ic": IC_TYPES, "regime": REGIMES,
        "criterion": CRITERIA, "table": TABLES, "figure": FIGURES,
    }


def _require(kind: str, name: Any, key: str) -> None:
    registry = registries()[kind]
    if name not in registry:
        raise ConfigError(f"{key}: unknown {kind} {name!r}; choose one of: {', '.join(registry.names())}")


def _require_section(config: dict, section: str, name: str, key: str) -> None:
    if name not in config.get(section, {}):
        raise ConfigError(f"{key}: {name!r} is not configured under '{section}:' (configured: "
                          f"{', '.join(config.get(section, {})) or 'none'})")


def check_config(config: dict[str, Any]) -> None:
    for name, params in config.get("datasets", {}).items():
        _require("dataset", name, f"datasets.{name}")
        # Paper-scale data is never downloaded: a missing root fails here, before any job starts.
        if "root" in params and not Path(params["root"]).is_dir():
            raise ConfigError(f"datasets.{name}.root: directory {params['root']} does not exist "
                              f"(resolved from {Path.cwd()}); put the {name} files there or fix the path")
    for name, backbone in config.get("backbones", {}).items():
        _require("backbone", name, f"backbones.{name}")
        _require("ic", backbone.get("ic", {}).get("type", "linear"), f"backbones.{name}.ic.type")
    for section, kind in (("tables", "table"), ("figures", "figure")):
        for name, spec in config.get(section, {}).items():
            key = f"{section}.{name}"
            _require(kind, spec.get("kind"), f"{key}.kind")
            for i, dataset in enumerate(experiment_datasets(spec)):
                _require("dataset", dataset, f"{key}.datasets[{i}]" if "datasets" in spec else f"{key}.dataset")
                _require_section(config, "datasets", dataset, f"{key}.dataset")
            _require("backbone", spec.get("backbone"), f"{key}.backbone")
            _require_section(config, "backbones", spec["backbone"], f"{key}.backbone")
            _require("criterion", spec.get("criterion"), f"{key}.criterion")
            for i, regime in enumerate(experiment_regimes(spec)):
                _require("regime", regime, f"{key}.regimes[{i}]" if "regimes" in spec else f"{key}.regime")


def experiment_datasets(spec: dict[str, Any]) -> list[str]:
    return list(spec["datasets"]) if "datasets" in spec else [spec["dataset"]]


def experiment_regimes(spec: dict[str, Any]) -> list[str]:
    return list(spec["regimes"]) if "regimes" in spec else [spec["regime"]]


def model_settings(config: dict[str, Any], backbone: str) -> dict[str, Any]:
    entry = config["backbones"][backbone]
    return {
        "backbone": backbone,
        "params": entry.get("params", {}),
        "ic": entry.get("ic", {"type": "linear"}),
        "placement": entry.get("placement"),
    }


def num_heads(config: dict[str, Any], backbone: str) -> int:
    from eebench.models import ModelSpec, head_blocks

    settings = model_settings(config, backbone)
    # The number of heads depends on the backbone's blocks and the placement only, not on the data.
    spec = ModelSpec(backbone=backbone, backbone_params=settings["params"], input_shape=(3, 32, 32),
                     num_classes=2, ic=settings["ic"], placement=settings["placement"])
    return len(head_blocks(spec))


def shell_json(obj: Any) -> str:
    """Settings as one shell word of compact JSON, quoted for the rule's shell command."""
    return shlex.quote(json.dumps(obj, sort_keys=True, separators=(",", ":")))
