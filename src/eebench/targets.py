"""Result paths and the inputs each target needs. The Snakemake input functions are one-line calls of these,
so the DAG's shape is plain, tested Python.

Paths are the run's identity and carry the model setting's name:
results/<stage>/<model>/<regime>/[<criterion>/]seed<seed>. A run two settings share (phase 1, a static head)
lives under the name of the first setting that has it (eebench.config.phase1_owner / static_owner).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from eebench import config as ee
from eebench.render.base import RunKey
from eebench.training import REGIMES

BACKBONE_REGIME = "backbone"
READINGS_TEX = "paper/readings.tex"  # the paper's "Deviations and readings" section (eebench.readings)
BODY_TEX = "paper/body.tex"  # the paper's tables and figures in the papers' order (eebench.render.paper)


def data_path(dataset: str) -> str:
    return f"results/data/{dataset}.npz"


def model_path(model: str, regime: str, seed: int | str) -> str:
    return f"results/models/{model}/{regime}/seed{seed}/model.pt"


def static_model_path(model: str, block: int, seed: int | str) -> str:
    return f"results/models/{model}/static/block{block}/seed{seed}/model.pt"


def logits_path(model_file: str) -> str:
    """results/models/<run>/model.pt -> results/logits/<run>.npz"""
    run = model_file.removeprefix("results/models/").removesuffix("/model.pt")
    return f"results/logits/{run}.npz"


def sweep_path(model: str, regime: str, criterion: str, seed: int | str) -> str:
    return f"results/sweeps/{model}/{regime}/{criterion}/seed{seed}.csv"


def budgets_slug(budgets: Sequence[float]) -> str:
    """[0.25, 0.5, 1.0] -> "25-50-100": the budgets spelled in the path, so tables with other budgets never
    share (or overwrite) a file."""
    return "-".join(f"{float(b) * 100:g}" for b in budgets)


def parse_budgets_slug(slug: str) -> list[float]:
    return [float(part) / 100.0 for part in slug.split("-")]


def budgets_path(model: str, regime: str, criterion: str, rule: str, budgets: Sequence[float] | str,
                 seed: int | str) -> str:
    slug = budgets if isinstance(budgets, str) else budgets_slug(budgets)
    return f"results/budgets/{model}/{regime}/{criterion}/{rule}/{slug}/seed{seed}.csv"


def analysis_path(analysis: str, model: str, regime: str, seed: int | str) -> str:
    return f"results/analysis/{analysis}/{model}/{regime}/seed{seed}.csv"


def mode_connectivity_path(model: str, regime_a: str, regime_b: str, seed: int | str) -> str:
    """The path between the ``regime_a`` and ``regime_b`` runs of ``model`` (B aligned to A), both of ``seed``."""
    return f"results/analysis/mode_connectivity/{model}/{regime_a}-{regime_b}/seed{seed}.csv"


def loss_landscape_path(model: str, regime: str, seed: int | str) -> str:
    return analysis_path("loss_landscape", model, regime, seed)


def bee_path(model: str, regime: str, criterion: str, seed: int | str) -> str:
    return f"results/bee/{model}/{regime}/{criterion}/seed{seed}.csv"


def final_outputs(config: dict[str, Any]) -> list[str]:
    tables = [f"paper/tables/{name}.tex" for name in config.get("tables", {})]
    figures = [f"paper/figures/{name}.pdf" for name in config.get("figures", {})]
    return tables + figures + [BODY_TEX, READINGS_TEX]


def resource(config: dict[str, Any], rule: str, key: str, model: str | None = None) -> Any:
    """A job's resource ``key``: the model entry's own ``resources.<rule>`` (for a job of that setting), else the
    top-level ``resources.<rule>``, else ``resources.default``."""
    resources = config.get("resources", {})
    own = ee.model_resources(config, model).get(rule, {}) if model is not None else {}
    for level in (own, resources.get(rule, {}), resources.get("default", {})):
        if key in level:
            return level[key]
    return None


# Training --------------------------------------------------------------------------------------------------


def trained_model_path(config: dict[str, Any], model: str, regime: str, seed: int | str) -> str:
    """Where the ``regime`` run of ``model`` is: its own path, or for the ``backbone`` regime (phase 1) the
    path of the first setting it shares that run with."""
    if regime == BACKBONE_REGIME:
        return model_path(ee.phase1_owner(config, model), regime, seed)
    return model_path(model, regime, seed)


def train_settings(config: dict[str, Any], model: str, regime: str) -> dict[str, Any]:
    """The network ``eebench train`` builds for ``model`` under ``regime``: without ICs for phase 1 alone."""
    settings = ee.network_settings(ee.model_entry(config, model))
    return ee.plain_backbone(settings) if regime == BACKBONE_REGIME else settings


def training_settings(config: dict[str, Any], model: str, regime: str | None) -> dict[str, Any]:
    """The training settings of ``model``'s run under ``regime`` (None: a static head). A single-loss run
    (phase 1, a static head) gets no loss scaling, so a change of scaling never reruns it."""
    training = ee.model_entry(config, model)["training"]
    return ee.phase1_training(training) if regime in (None, BACKBONE_REGIME) else training


def train_inputs(config: dict[str, Any], model: str, regime: str, seed: str) -> dict[str, str]:
    inputs = {"data": data_path(ee.model_entry(config, model)["dataset"])}
    if REGIMES.get(regime).reuses_backbone:
        inputs["init"] = trained_model_path(config, model, BACKBONE_REGIME, seed)
    return inputs


def static_head_paths(config: dict[str, Any], model: str, seed: int | str) -> list[str]:
    """The static baseline of every head of ``model``, in head order; the last head's is the plain backbone,
    i.e. the phase-1 run. A ``static_baseline:`` setting lends its own (same data, same heads)."""
    model = ee.static_baseline(config, model)
    blocks = ee.head_blocks(ee.model_entry(config, model))
    paths = [static_model_path(ee.static_owner(config, model, block), block, seed) for block in blocks[:-1]]
    return [*paths, trained_model_path(config, model, BACKBONE_REGIME, seed)]


def static_settings(config: dict[str, Any], model: str, block: int) -> dict[str, Any]:
    entry = ee.model_entry(config, model)
    return ee.static_settings(ee.network_settings(entry), int(block), ee.head_blocks(entry)[-1])


def run_meta(config: dict[str, Any], model: str) -> dict[str, Any]:
    """Names a run carries into its logit cache and every CSV made from it."""
    entry = ee.model_entry(config, model)
    return {"model": model, "dataset": entry["dataset"]}


# Metrics and rendering -------------------------------------------------------------------------------------


def bee_inputs(config: dict[str, Any], model: str, regime: str, criterion: str, seed: str) -> dict[str, Any]:
    return {
        "sweep": sweep_path(model, regime, criterion, seed),
        "static": [logits_path(path) for path in static_head_paths(config, model, seed)],
        "code": code_files("metrics"),
    }


def mode_connectivity_inputs(config: dict[str, Any], model: str, regime_a: str, regime_b: str,
                             seed: str) -> dict[str, Any]:
    return {
        "model_a": trained_model_path(config, model, regime_a, seed),
        "model_b": trained_model_path(config, model, regime_b, seed),
        "data": data_path(ee.model_entry(config, model)["dataset"]),
        "code": code_files("analysis"),
    }


def stage_path(config: dict[str, Any], stage: str, spec: dict[str, Any], run: RunKey, seed: int | str) -> str:
    if stage == "models":
        return trained_model_path(config, run.model, run.regime, seed)
    if stage == "logits":
        return logits_path(trained_model_path(config, run.model, run.regime, seed))
    if stage == "analysis":
        return analysis_path(spec["analysis"], run.model, run.regime, seed)
    if stage == "mode_connectivity":
        return mode_connectivity_path(run.model, run.regime, run.versus, seed)
    if stage == "loss_landscape":
        return loss_landscape_path(run.model, run.regime, seed)
    if stage == "budgets":
        return budgets_path(run.model, run.regime, run.criterion, spec["rule"], spec["budgets"], seed)
    if stage == "bee":
        return bee_path(run.model, run.regime, run.criterion, seed)
    if stage == "sweeps":
        return sweep_path(run.model, run.regime, run.criterion, seed)
    raise ValueError(f"unknown metric stage {stage!r}")


def render_inputs(config: dict[str, Any], section: str, name: str) -> list[str]:
    """The per-run metric files that table or figure ``name`` (under ``tables:`` or ``figures:``) reads."""
    spec = ee.render_spec(config, section, name)
    stage = ee.renderer(section, config[section][name]["kind"]).reads
    if stage == "rendered":  # a claims table: the CSVs of the entries its checks name, each once
        return [rendered_path(config, entry) for entry in dict.fromkeys(c["entry"] for c in spec["checks"])]
    runs = dict.fromkeys(ee.render_runs(config, section, name))  # in order, each once
    seeds = config[section][name].get("seeds", config["seeds"])  # an entry may read fewer (or other) seeds
    return [stage_path(config, stage, spec, run, seed) for run in runs for seed in seeds]


def rendered_path(config: dict[str, Any], name: str) -> str:
    """The numbers (CSV) of table or figure ``name``."""
    section = "tables" if name in config.get("tables", {}) else "figures"
    return f"paper/{section}/{name}.csv"


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
