"""Result paths and the inputs each target needs. The Snakemake input functions are one-line calls of these,
so the DAG's shape is plain, tested Python.

Paths are the run's identity and carry the model setting's name: results/<stage>/<model>/<regime>/seed<seed>. A
run two settings share (phase 1, a static head) lives under the name of the first setting that has it
(eebench.config.phase1_owner / static_owner). A run's sweeps and budget tables (whatever the config's tables and
figures read of it, :func:`metrics_plan`) are one job's directory, results/metrics/<model>/<regime>/seed<seed>/
(sweeps/<criterion>.csv, budgets/<criterion>/<rule>/<budgets>.csv); its B_EE tables, where an entry reads them
(:func:`bee_plan`), another job's, results/bee/<model>/<regime>/seed<seed>/ (<criterion>.csv), the only one that
needs the static heads; laid out as eebench.metrics says.

A model evaluated from its own caches (``caches:``, eebench.config.is_external) trains nothing: each of its caches
is imported (checked, and named by the config's model, regime and seed) to the path a trained run's cache has,
results/logits/<model>/<regime>/seed<seed>.npz, and its static caches to results/logits/<model>/static/head<h>/
seed<seed>.npz (:func:`external_source`); every rule downstream reads them as it reads a trained run's.
"""
from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path
from typing import Any, Sequence

from eebench import config as ee
from eebench.config_checks import check_config
from eebench.external_models import external_static, is_external
from eebench.schema import validate_schema
from eebench.metrics import bee_file, budgets_file, sweep_file
from eebench.render import iter_render_entries, render_runs, renderer
from eebench.render.base import RunKey
from eebench.render.spec import check_paper_matches
from eebench.render.spec import entry_spec
from eebench.training import REGIMES

BACKBONE_REGIME = "backbone"
READINGS_TEX = "paper/readings.tex"  # the paper's "Deviations and readings" section (eebench.readings)
BODY_TEX = "paper/body.tex"  # the paper's tables and figures in the papers' order (eebench.render.paper)


# The config the workflow plans -------------------------------------------------------------------------------


def prepare_config(config: dict[str, Any]) -> None:
    """Everything the workflow does to a config before it plans a job, in place; workflow/rules/common.smk and
    ``eebench check-config`` both call this, so they cannot disagree. In order:

    1. a suite's ``include:`` files, each read and checked against the schema as it is alone, merged into one
       experiment (expand_includes);
    2. the JSON schema: unknown keys, types, ranges, names; its defaults are filled in (validate_schema);
    3. what the schema cannot see: ``base:`` inheritance, registry names, cross references between sections,
       dataset roots and model files on disk, each table's paper_match (check_config).

    Raises ee.ConfigError, one line naming the key (and the file, for an included file)."""

    def check_file(part: dict[str, Any], path: str) -> None:
        try:
            validate_schema(copy.deepcopy(part))  # the file's own defaults are not the suite's
        except ee.ConfigError as error:
            raise ee.ConfigError(f"include: {path}: {error}") from None

    expanded = ee.expand_includes(config, check_file)
    if expanded is not config:
        config.clear()
        config.update(expanded)
    validate_schema(config)
    check_config(config)
    check_paper_matches(config)  # each table's cells against the paper's values it is compared with


def checked_config(*paths: str | Path) -> dict[str, Any]:
    """The config the workflow would run for ``snakemake --configfile PATH...`` (several files merged as Snakemake
    merges them), read and checked as the workflow checks it (prepare_config)."""
    config = ee.load_config(paths[0])
    for path in paths[1:]:
        config = ee.update_config(config, ee.load_config(path))
    prepare_config(config)
    return config


def shell_json(obj: Any) -> str:
    """Settings as one shell word of compact JSON, quoted for the rule's shell command."""
    return shlex.quote(json.dumps(obj, sort_keys=True, separators=(",", ":")))


# Result paths ----------------------------------------------------------------------------------------------


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


def metrics_dir(model: str, regime: str, seed: int | str) -> str:
    """The directory of one run's sweeps and budget tables (one ``compute_metrics`` job's output)."""
    return f"results/metrics/{model}/{regime}/seed{seed}"


def bee_dir(model: str, regime: str, seed: int | str) -> str:
    """The directory of one run's B_EE tables (one ``compute_bee`` job's output)."""
    return f"results/bee/{model}/{regime}/seed{seed}"


def sweep_path(model: str, regime: str, criterion: str, seed: int | str) -> str:
    return f"{metrics_dir(model, regime, seed)}/{sweep_file(criterion)}"


def budgets_path(model: str, regime: str, criterion: str, rule: str, budgets: Sequence[float],
                 seed: int | str) -> str:
    """The budget table of ``rule`` and ``budgets``: the budgets are spelled in its name (e.g. 25-50-75-100.csv),
    so tables with other budgets never share (or overwrite) a file."""
    return f"{metrics_dir(model, regime, seed)}/{budgets_file(criterion, rule, budgets)}"


def analysis_path(analysis: str, model: str, regime: str, seed: int | str) -> str:
    return f"results/analysis/{analysis}/{model}/{regime}/seed{seed}.csv"


def mode_connectivity_path(model: str, regime_a: str, regime_b: str, seed: int | str) -> str:
    """The path between the ``regime_a`` and ``regime_b`` runs of ``model`` (B aligned to A), both of ``seed``."""
    return f"results/analysis/mode_connectivity/{model}/{regime_a}-{regime_b}/seed{seed}.csv"


def loss_landscape_path(model: str, regime: str, seed: int | str) -> str:
    return analysis_path("loss_landscape", model, regime, seed)


def bee_path(model: str, regime: str, criterion: str, seed: int | str) -> str:
    return f"{bee_dir(model, regime, seed)}/{bee_file(criterion)}"


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
    path of the first setting it shares that run with (a model evaluated from its caches shares none)."""
    if regime == BACKBONE_REGIME and not is_external(ee.resolved_read_only(config)[model]):
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


def static_logits_paths(config: dict[str, Any], model: str, seed: int | str) -> list[str]:
    """The logit caches of ``model``'s static baseline of every head, in head order (what B_EE reads): the
    trained static models' (:func:`static_head_paths`), or a model evaluated from its caches its imported static
    caches."""
    entry = ee.model_entry(config, model)
    if is_external(entry):
        heads = len(external_static(entry, seed) or [])
        return [static_import_path(model, head, seed) for head in range(1, heads + 1)]
    return [logits_path(path) for path in static_head_paths(config, model, seed)]


def static_settings(config: dict[str, Any], model: str, block: int) -> dict[str, Any]:
    entry = ee.model_entry(config, model)
    return ee.static_settings(ee.network_settings(entry), int(block), ee.head_blocks(entry)[-1])


def run_meta(config: dict[str, Any], model: str) -> dict[str, Any]:
    """Names a run carries into its logit cache and every CSV made from it."""
    entry = ee.model_entry(config, model)
    return {"model": model, "dataset": entry["dataset"]}


# Models evaluated from their own caches ------------------------------------------------------------------------


def external_models(config: dict[str, Any], external: bool = True) -> list[str]:
    """The model entries evaluated from their own caches (``caches:``), or with ``external`` False those this
    workflow trains, in config order."""
    return [name for name, entry in ee.resolved_read_only(config).items() if is_external(entry) == external]


def static_import_path(model: str, head: int | str, seed: int | str) -> str:
    """Where the static cache of head ``head`` (1-based) of a model evaluated from its caches is imported to."""
    return f"results/logits/{model}/static/head{head}/seed{seed}.npz"


def external_source(config: dict[str, Any], model: str, seed: int | str, head: int | str | None = None) -> str:
    """The file a model evaluated from its caches names for its run of ``seed``, or with ``head`` (1-based) for
    that head's static cache: what the ``import_logits`` job reads."""
    entry = ee.model_entry(config, model)
    if head is None:
        if str(seed) not in entry["caches"]["seeds"]:
            raise ValueError(f"models.{model}.caches.seeds: no cache of seed {seed} (seeds: "
                             f"{', '.join(entry['caches']['seeds'])})")
        return entry["caches"]["seeds"][str(seed)]
    static = external_static(entry, seed) or []
    if not 1 <= int(head) <= len(static):
        raise ValueError(f"models.{model}.caches.static: no static cache of head {head} for seed {seed} "
                         f"({len(static)} given)")
    return static[int(head) - 1]


def external_meta(config: dict[str, Any], model: str, regime: str, seed: int | str,
                  head: int | str | None = None) -> dict[str, Any]:
    """Names an imported cache carries (merged over its own meta) as a trained run's cache has them: the config's
    model name, the dataset and backbone it is shown with, the regime and seed (a static cache: regime "static"
    and its head), so that its sweeps, budget tables and B_EE read as a trained run's."""
    entry = ee.model_entry(config, model)
    meta = {"model": model, "dataset": entry["dataset"], "backbone": entry["backbone"]}
    if head is None:
        return {**meta, "regime": regime, "seed": int(seed)}
    return {**meta, "regime": "static", "head": int(head), "seed": int(seed)}


# Metrics and rendering -------------------------------------------------------------------------------------


# The stages a run's metric jobs write into a directory of the run: sweeps and budget tables into metrics_dir
# (compute_metrics), B_EE into bee_dir (compute_bee); every other stage is a file of its own job.
METRICS_STAGES = ("sweeps", "budgets", "bee")


def _entry_runs(config: dict[str, Any], section: str, name: str) -> tuple[str, list[RunKey], list[Any]]:
    """What table or figure ``name`` reads: its stage, its runs (in order, each once) and its seeds (an entry may
    read fewer, or other, seeds than the config's)."""
    stage = renderer(section, config[section][name]["kind"]).reads
    runs = list(dict.fromkeys(render_runs(config, section, name)))
    return stage, runs, list(config[section][name].get("seeds", config["seeds"]))


RunPlans = dict[tuple[str, str, str], Any]


def _run_plans(config: dict[str, Any]) -> tuple[RunPlans, RunPlans]:
    """(:func:`metrics_plans`, :func:`bee_plans`), computed together, once per frozen config (the Snakefile's,
    whose input and params functions ask for every job)."""
    frozen = ee.is_frozen(config)
    cached = _PLANS.get(id(config)) if frozen else None
    if cached is not None and cached[0] is config:
        return cached[1]
    needs: dict[tuple[str, str, str], dict[str, set]] = {}
    for section, name, _ in iter_render_entries(config):
        stage, runs, seeds = _entry_runs(config, section, name)
        if stage not in METRICS_STAGES:
            continue
        spec = entry_spec(config, section, name) if stage == "budgets" else {}
        for run in runs:
            for seed in seeds:
                need = needs.setdefault((run.model, run.regime, str(seed)),
                                        {"sweeps": set(), "budgets": set(), "bee": set()})
                need["sweeps"].add(run.criterion)  # budget tables and B_EE read the criterion's sweep
                if stage == "budgets":
                    need["budgets"].add((run.criterion, spec["rule"], tuple(float(b) for b in spec["budgets"])))
                elif stage == "bee":
                    need["bee"].add(run.criterion)
    plans, bee_plans = {}, {}
    for key, need in needs.items():
        plan = _empty_plan(config)
        for criterion in sorted(need["sweeps"]):
            registered, params = ee.criterion_setting(config, criterion)
            plan["sweeps"].append({"name": criterion, "criterion": registered, "params": params})
        plan["budgets"] = [{"criterion": criterion, "rule": rule, "budgets": list(budgets)}
                           for criterion, rule, budgets in sorted(need["budgets"])]
        plans[key] = plan
        if need["bee"]:
            bee_plans[key] = sorted(need["bee"])
    if frozen:
        _PLANS[id(config)] = (config, (plans, bee_plans))
    return plans, bee_plans


_PLANS: dict[int, tuple[dict[str, Any], tuple[RunPlans, RunPlans]]] = {}


def _empty_plan(config: dict[str, Any]) -> dict[str, Any]:
    return {"max_points": config.get("sweep", {}).get("max_points", 0), "sweeps": [], "budgets": []}


def metrics_plans(config: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """:func:`metrics_plan` of every run some table or figure reads sweeps, budget tables or B_EE of, by (model,
    regime, seed as text)."""
    return _run_plans(config)[0]


def bee_plans(config: dict[str, Any]) -> dict[tuple[str, str, str], list[str]]:
    """:func:`bee_plan` of every run some table or figure reads B_EE of (one ``compute_bee`` job each), by
    (model, regime, seed as text)."""
    return _run_plans(config)[1]


def metrics_plan(config: dict[str, Any], model: str, regime: str, seed: int | str) -> dict[str, Any]:
    """The sweeps and budget tables of run (``model``, ``regime``, ``seed``) that the config's tables and figures
    read, as ``eebench metrics --plan`` (eebench.metrics.run_metrics) takes them:

    - ``max_points``: the config's ``sweep: max_points``;
    - ``sweeps``: every criterion name an entry reads of this run (budget tables and B_EE read its sweep), by
      name, each ``{"name", "criterion": its registered criterion, "params"}`` (a ``criteria:`` setting resolved);
    - ``budgets``: ``{"criterion", "rule", "budgets"}`` of every distinct budget table an entry of stage
      ``budgets`` reads (its ``rule`` and ``budgets``, defaults filled as entry_spec fills them), sorted.

    An entry's ``seeds`` are respected (an entry reading seed 0 adds nothing to seed 1's plan). Sorted, so the
    plan (the job's params) changes exactly when what is read of the run does; a run no entry reads has an empty
    plan. B_EE is :func:`bee_plan`'s."""
    plan = metrics_plans(config).get((model, regime, str(seed)))
    return _empty_plan(config) if plan is None else copy.deepcopy(plan)  # the cached one stays as computed


def bee_plan(config: dict[str, Any], model: str, regime: str, seed: int | str) -> list[str]:
    """The criterion names whose B_EE of run (``model``, ``regime``, ``seed``) the config's tables and figures
    read, sorted (``eebench bee-run --criteria``, eebench.metrics.run_bees; the ``compute_bee`` job's params, so
    adding or removing one reruns it); empty where none is read (the run has no ``compute_bee`` job). Each is
    among its :func:`metrics_plan`'s sweeps."""
    return list(bee_plans(config).get((model, regime, str(seed)), []))


def metrics_inputs(config: dict[str, Any], model: str, regime: str, seed: int | str) -> dict[str, Any]:
    """A run's metric job reads its logit cache (the shared run's, for phase 1); never the static heads."""
    return {"logits": logits_path(trained_model_path(config, model, regime, seed)),
            "code": code_files("exits", "metrics", "sweep_metrics")}


def bee_inputs(config: dict[str, Any], model: str, regime: str, seed: int | str) -> dict[str, Any]:
    """A run's B_EE job reads the run's metric directory (its sweeps) and the static model of every head
    (:func:`static_logits_paths`, in head order)."""
    return {"metrics": metrics_dir(model, regime, seed),
            "static": static_logits_paths(config, model, seed),
            "code": code_files("metrics", "sweep_metrics")}


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
    """The per-run metric files that table or figure ``name`` (under ``tables:`` or ``figures:``) reads (what the
    renderer is given: ``--inputs``)."""
    spec = entry_spec(config, section, name)
    stage, runs, seeds = _entry_runs(config, section, name)
    if stage == "rendered":  # a claims table: the CSVs of the entries its checks name, each once
        return [rendered_path(config, entry) for entry in dict.fromkeys(c["entry"] for c in spec["checks"])]
    return [stage_path(config, stage, spec, run, seed) for run in runs for seed in seeds]


def trained_runs(config: dict[str, Any], section: str, name: str) -> list[str]:
    """The trained checkpoints behind the numbers of table or figure ``name``: every run and seed it reads (both
    models of a mode-connectivity pair), and for an entry reading B_EE the static heads too; none for a claims
    table (it reads other entries' numbers), nor for a model evaluated from its own caches."""
    stage, runs, seeds = _entry_runs(config, section, name)
    paths: list[str] = []
    if stage == "rendered":
        return paths
    for run in runs:
        if is_external(ee.resolved_read_only(config)[run.model]):  # trained elsewhere: no checkpoint or record
            continue
        for seed in seeds:
            paths.append(trained_model_path(config, run.model, run.regime, seed))
            if stage == "mode_connectivity":
                paths.append(trained_model_path(config, run.model, run.versus, seed))
            if stage == "bee":
                paths += static_head_paths(config, run.model, seed)
    return list(dict.fromkeys(paths))


def render_spec(config: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    """The renderer's settings (:func:`eebench.render.spec.entry_spec`); a claims table's checks also carry ``runs``,
    the trained checkpoints behind the entry each check reads (:func:`trained_runs`), so that it marks a verdict
    read on runs that trained a phase to its epoch cap; a table's also say which of the paper's values it is
    compared with (:func:`eebench.render.spec.comparison_spec`)."""
    from eebench.render.spec import comparison_spec

    spec = entry_spec(config, section, name)
    if section == "tables":
        spec = {**spec, **comparison_spec(config, name)}
    if _entry_runs(config, section, name)[0] != "rendered":
        return spec
    return {**spec, "checks": [{**check, "runs": trained_runs(config, _section_of(config, check["entry"]), check["entry"])}
                               for check in spec["checks"]]}


def _section_of(config: dict[str, Any], name: str) -> str:
    return "tables" if name in config.get("tables", {}) else "figures"


def render_dependencies(config: dict[str, Any], section: str, name: str) -> list[str]:
    """What the job rendering ``name`` waits for (its rule's ``input:``): for an entry reading sweeps or budget
    tables, the metric directory (:func:`metrics_dir`) of each of its runs and seeds, for one reading B_EE the
    B_EE directory (:func:`bee_dir`), each once (a file inside a job's directory output cannot be an input); for
    any other entry, its files (:func:`render_inputs`)."""
    stage, runs, seeds = _entry_runs(config, section, name)
    if stage == "rendered":  # the checked entries' numbers, and the checkpoints whose histories the claims read
        checks = render_spec(config, section, name)["checks"]
        return list(dict.fromkeys([*render_inputs(config, section, name), *(p for c in checks for p in c["runs"])]))
    if stage not in METRICS_STAGES:
        return render_inputs(config, section, name)
    directory = bee_dir if stage == "bee" else metrics_dir
    return list(dict.fromkeys(directory(run.model, run.regime, seed) for run in runs for seed in seeds))


def rendered_path(config: dict[str, Any], name: str) -> str:
    """The numbers (CSV) of table or figure ``name``."""
    return f"paper/{_section_of(config, name)}/{name}.csv"


def code_files(*packages: str) -> list[str]:
    """Source files of eebench modules and packages, with a package's data (the transcribed numbers of
    ``paper_numbers``), as inputs of the cheap rules: editing e.g. the rendering code reruns rendering (and
    nothing upstream). Training rules deliberately do not list code: retraining is costly and is asked for
    explicitly (``--forcerun train_model``)."""
    root = Path(__file__).resolve().parent
    files: list[str] = []
    for name in packages:
        path = root / name
        files += (sorted(str(p) for p in path.iterdir() if p.suffix in (".py", ".csv")) if path.is_dir()
                  else [str(path.with_suffix(".py"))])
    return files
