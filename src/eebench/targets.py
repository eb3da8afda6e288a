"""Result paths and the inputs each target needs. The Snakemake input functions are one-line calls of these,
so the DAG's shape is plain, tested Python.

Paths are the run's identity: results/<stage>/<dataset>/<backbone>/<regime>/[<criterion>/]seed<seed>.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from eebench.config import experiment_datasets, experiment_regimes, num_heads
from eebench.training import REGIMES

# Keys of a table/figure entry that pick the experiment; everything else is passed to the renderer.
EXPERIMENT_KEYS = ("kind", "dataset", "datasets", "backbone", "criterion", "regime")


def data_path(dataset: str) -> str:
    return f"results/data/{dataset}.npz"


def model_path(dataset: str, backbone: str, regime: str, seed: int | str) -> str:
    return f"results/models/{dataset}/{backbone}/{regime}/seed{seed}/model.pt"


def static_logits_path(dataset: str, backbone: str, head: int, seed: int | str) -> str:
    return f"results/logits/{dataset}/{backbone}/static/head{head}/seed{seed}.npz"


def budgets_path(dataset: str, backbone: str, regime: str, criterion: str, seed: int | str) -> str:
    return f"results/budgets/{dataset}/{backbone}/{regime}/{criterion}/seed{seed}.csv"


def sweep_path(dataset: str, backbone: str, regime: str, criterion: str, seed: int | str) -> str:
    return f"results/sweeps/{dataset}/{backbone}/{regime}/{criterion}/seed{seed}.csv"


def bee_path(dataset: str, backbone: str, regime: str, criterion: str, seed: int | str) -> str:
    return f"results/bee/{dataset}/{backbone}/{regime}/{criterion}/seed{seed}.csv"


def final_outputs(config: dict[str, Any]) -> list[str]:
    tables = [f"paper/tables/{name}.tex" for name in config.get("tables", {})]
    figures = [f"paper/figures/{name}.pdf" for name in config.get("figures", {})]
    return tables + figures


def resource(config: dict[str, Any], rule: str, key: str) -> Any:
    resources = config.get("resources", {})
    return resources.get(rule, {}).get(key, resources.get("default", {}).get(key))


def train_inputs(config: dict[str, Any], dataset: str, backbone: str, regime: str, seed: str) -> dict[str, str]:
    inputs = {"data": data_path(dataset)}
    if REGIMES.get(regime).reuses_backbone:
        inputs["init"] = model_path(dataset, backbone, "backbone", seed)
    return inputs


def run_data(run: str) -> str:
    """The prepared dataset of a model run path '<dataset>/<backbone>/...'."""
    return data_path(run.split("/", 1)[0])


def bee_inputs(config: dict[str, Any], dataset: str, backbone: str, regime: str, criterion: str, seed: str) -> dict[str, Any]:
    heads = range(1, num_heads(config, backbone) + 1)
    return {
        "sweep": sweep_path(dataset, backbone, regime, criterion, seed),
        "static": [static_logits_path(dataset, backbone, h, seed) for h in heads],
        "code": code_files("metrics"),
    }


def _runs(config: dict[str, Any], spec: dict[str, Any], path) -> list[str]:
    return [
        path(dataset, spec["backbone"], regime, spec["criterion"], seed)
        for dataset in experiment_datasets(spec)
        for regime in experiment_regimes(spec)
        for seed in config["seeds"]
    ]


# Result path of each per-run metric stage a table or figure can read (eebench.render.base.METRIC_STAGES).
STAGE_PATHS = {"budgets": budgets_path, "bee": bee_path}


def render_inputs(config: dict[str, Any], section: str, name: str) -> list[str]:
    """The per-run metric files that table or figure ``name`` (under ``tables:`` or ``figures:``) reads."""
    from eebench.render import FIGURES, TABLES

    spec = config[section][name]
    renderer = {"tables": TABLES, "figures": FIGURES}[section].get(spec["kind"])
    return _runs(config, spec, STAGE_PATHS[renderer.reads])


def render_options(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if key not in EXPERIMENT_KEYS}


def code_files(*packages: str) -> list[str]:
    """Source files of eebench modules, as inputs of the cheap rules: editing e.g. the rendering code reruns
    rendering (and nothing upstream). Training rules deliberately do not list code: retraining is costly and
    is asked for explicitly (``--forcerun train_model``)."""
    root = Path(__file__).resolve().parent
    files: list[str] = []
    for name in packages:
        path = root / name
        files += sorted(str(p) for p in path.glob("*.py")) if path.is_dir() else [str(path.with_suffix(".py"))]
    return files
