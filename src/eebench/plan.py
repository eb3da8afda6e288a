"""What a config costs before it runs (``eebench plan --config FILE``): per rule and in total, the jobs the workflow
would plan, their GPU-hours and CPU-hours, estimated from FLOPs.

The jobs are the Snakemake DAG's, found as Snakemake finds them: from the default target (every table and figure,
the body and the readings: eebench.targets.final_outputs) each job's inputs are asked of the same functions the
rules' input functions call (eebench.targets), and each input path is matched against the rules' output patterns
(workflow/rules/*.smk), so phase-1 runs and static heads that settings share are one job, as in the DAG
(tests/test_plan.py checks the counts by hand on a small config, and the paper suite's against ``snakemake -n``).

A job's cost is its FLOPs divided by an assumed throughput, so every number is an estimate:

- FLOPs per sample of a network are counted with torch.utils.flop_counter (matmuls and convolutions; eebench.models
  counts the per-head FLOPs of the logit caches the same way), on a network built on the meta device (no weights,
  no memory, no data): per block and per head, for the input shape and classes of the model's dataset
  (:data:`eebench.cost_model.DATASET_SIZES`).
- A training step costs its forward (the whole network, every head, as the loop runs it) plus a backward of about
  twice the forward of the part that gradients flow through (gradients with respect to activations and to
  weights, each about one forward: forward + backward ~ 3 x forward, Kaplan et al. 2020 §2.1), i.e. from the
  first trained block on, or only the trained heads in a phase whose blocks are frozen (paper B's disjoint phase
  2). Each epoch also runs one forward over the validation split (early stopping), and the job ends with one
  forward over the validation and test splits (the logit cache); the authors' early stopping
  (``training.early_stopping: authors``), which validates more often in phases that train ICs, is not counted.
  A regime is its phases
  (eebench.training.REGIMES); a job runs each phase for ``max_epochs`` (an upper bound: early stopping usually
  ends it sooner), and, in the second column, for the epochs the papers report where they do
  (:data:`eebench.cost_model.REPORTED_EPOCHS`), else ``max_epochs``.
- The analyses cost forward passes: mode connectivity one per lambda and sample of each split it measures (and of
  the BatchNorm recomputation), the loss landscape one per grid point and sample, a per-layer analysis one per
  test sample it reads.
- A job asking for GPUs runs at the GPU kind's peak (:data:`eebench.cost_model.DEVICE_KINDS`) x an assumed utilisation per GPU;
  its GPU-hours are its FLOPs at that rate and its CPU-hours its wall time x its threads (the cores it holds). A
  job asking none (a CPU config, or a local rule) runs at one CPU core's rate per thread. Jobs that do no network
  arithmetic (data preparation, sweeps, metrics, rendering) cost a wall time each, partly measured
  (:data:`eebench.cost_model.LOCAL_SECONDS`).

Planning needs no data: a dataset root, tokenizer or model directory or weights file that is absent is replaced
by a stand-in (an empty directory, an empty file, a directory with BERT-base's config.json) before the config is
checked as the workflow checks it (eebench.targets.prepare_config), so those existence checks are the only ones
skipped, and the plan lists what was absent.
"""
from __future__ import annotations

import copy
import json
import re
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from eebench import config as ee
from eebench import targets
from eebench.cost_model import (
    CPU_CORE, DEFAULT_GPU, DEFAULT_UTILISATION, DEVICE_KINDS, LOCAL_RULES, LOCAL_SECONDS,
    REPORTED_EPOCHS, DatasetSize, DeviceKind, NetworkCost, dataset_size, network_cost,
)

# Jobs --------------------------------------------------------------------------------------------------------


@dataclass
class Job:
    """One planned job: its rule, its FLOPs at max_epochs and at the papers' epochs (the same for a job that does
    not train), the GPUs and threads it asks for, and the wall seconds it spends besides its FLOPs."""

    rule: str
    flops: float = 0.0
    paper_flops: float = 0.0
    gpus: int = 0
    threads: int = 1
    seconds: float = 0.0  # wall time besides the FLOPs (one core)
    wildcards: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)


# The rules' output patterns (workflow/rules/*.smk), most specific first, with the wildcards they bind.
_PATTERNS: tuple[tuple[str, re.Pattern], ...] = tuple((rule, re.compile(pattern)) for rule, pattern in (
    ("import_static_logits", r"results/logits/(?P<model>[^/]+)/static/head(?P<head>\d+)/seed(?P<seed>\d+)\.npz"),
    ("train_static_head", r"results/(?:models|logits)/(?P<model>[^/]+)/static/block(?P<block>\d+)/seed(?P<seed>\d+)"
                          r"(?:/model\.pt|\.npz)"),
    ("train_model", r"results/(?:models|logits)/(?P<model>[^/]+)/(?P<regime>[^/]+)/seed(?P<seed>\d+)"
                    r"(?:/model\.pt|\.npz)"),
    ("compute_metrics", r"results/metrics/(?P<model>[^/]+)/(?P<regime>[^/]+)/seed(?P<seed>\d+)"),
    ("compute_bee", r"results/bee/(?P<model>[^/]+)/(?P<regime>[^/]+)/seed(?P<seed>\d+)"),
    ("connect_modes", r"results/analysis/mode_connectivity/(?P<model>[^/]+)/(?P<regime_a>[^/-]+)-(?P<regime_b>[^/]+)"
                      r"/seed(?P<seed>\d+)\.csv"),
    ("map_loss_landscape", r"results/analysis/loss_landscape/(?P<model>[^/]+)/(?P<regime>[^/]+)/seed(?P<seed>\d+)"
                           r"\.csv"),
    ("analyze_layers", r"results/analysis/(?P<analysis>[^/]+)/(?P<model>[^/]+)/(?P<regime>[^/]+)/seed(?P<seed>\d+)"
                       r"\.csv"),
    ("prepare_dataset", r"results/data/(?P<dataset>[^/]+)\.npz"),
    ("render_table", r"paper/tables/(?P<name>[^/]+)\.(?:tex|csv)"),
    ("render_figure", r"paper/figures/(?P<name>[^/]+)\.(?:pdf|png|csv)"),
    ("render_body", re.escape(targets.BODY_TEX)),
    ("render_readings", re.escape(targets.READINGS_TEX)),
))


def _producer(path: str, imported: set[str]) -> tuple[str, str, dict[str, str]] | None:
    """The rule whose output ``path`` is, the job's identity (its rule and wildcards: one job writes a model and
    its cache) and its wildcards; None for a file no rule writes (source code, a model's own caches). A run's
    cache of a model in ``imported`` (evaluated from its own caches) is imported, not trained."""
    for rule, pattern in _PATTERNS:
        match = pattern.fullmatch(path)
        if match:
            wildcards = match.groupdict()
            if rule == "train_model" and wildcards["model"] in imported:
                rule = "import_logits"
            return rule, json.dumps([rule, wildcards], sort_keys=True), wildcards
    return None


def plan_jobs(config: dict[str, Any]) -> list[Job]:
    """Every job the workflow plans for a checked config (eebench.targets.prepare_config), ``all`` included as
    Snakemake counts it, each with its cost."""
    imported = set(targets.external_models(config))
    jobs: dict[str, Job] = {"all": Job("all", inputs=targets.final_outputs(config))}
    pending = list(jobs["all"].inputs)
    while pending:
        found = _producer(pending.pop(), imported)
        if found is None or found[1] in jobs:
            continue
        rule, key, wildcards = found
        jobs[key] = job = _job(config, rule, wildcards, imported)
        pending += job.inputs
    return list(jobs.values())


def _job(config: dict[str, Any], rule: str, w: dict[str, str], imported: set[str]) -> Job:
    """A job of ``rule`` with wildcards ``w``: its inputs, as the rule's input functions give them, and its cost.
    Of a model evaluated from its own caches (``imported``) only the start of each job is counted: its caches'
    sizes are its own."""
    model = w.get("model")
    gpus = 0 if rule in LOCAL_RULES else int(targets.resource(config, rule, "gpu", model) or 0)
    threads = 1 if rule in LOCAL_RULES else int(targets.resource(config, rule, "threads", model) or 1)
    job = Job(rule, gpus=gpus, threads=threads, seconds=LOCAL_SECONDS["start"] if rule in LOCAL_RULES else 0.0,
              wildcards=w)
    if rule in ("render_table", "render_figure"):
        job.inputs = targets.render_dependencies(config, rule.removeprefix("render_") + "s", w["name"])
    if rule.startswith("render_"):
        job.seconds += LOCAL_SECONDS["render"]
        return job
    if rule == "prepare_dataset":
        size = dataset_size(config, w["dataset"])
        job.seconds += LOCAL_SECONDS["prepare_per_sample"] * (size.train + size.val + size.test)
        return job
    if model in imported:
        if rule == "compute_metrics":
            job.inputs = [targets.metrics_inputs(config, model, w["regime"], w["seed"])["logits"]]
        elif rule == "compute_bee":
            inputs = targets.bee_inputs(config, model, w["regime"], w["seed"])
            job.inputs = [inputs["metrics"], *inputs["static"]]
        return job  # import_logits, import_static_logits: a check and a copy
    entry = ee.model_entry(config, model)
    size = dataset_size(config, entry["dataset"])
    data = targets.data_path(entry["dataset"])
    if rule == "train_model":
        job.inputs = list(targets.train_inputs(config, model, w["regime"], w["seed"]).values())
        job.flops, job.paper_flops = _training_flops(config, model, w["regime"], size)
    elif rule == "train_static_head":
        job.inputs = [data]
        network = network_cost(targets.static_settings(config, model, w["block"]), size)
        epochs = entry["training"]["max_epochs"]  # no paper reports a static head's epochs
        job.flops = job.paper_flops = (_phase_flops(network, epochs, size, network.forward) +
                                       (size.val + size.test) * network.forward)
    elif rule == "compute_metrics":
        job.inputs = [targets.metrics_inputs(config, model, w["regime"], w["seed"])["logits"]]
        criteria = len(targets.metrics_plan(config, model, w["regime"], w["seed"])["sweeps"])
        job.seconds += criteria * _exit_seconds(config, model, w["regime"], size)
    elif rule == "compute_bee":
        inputs = targets.bee_inputs(config, model, w["regime"], w["seed"])
        job.inputs = [inputs["metrics"], *inputs["static"]]
        criteria = len(targets.bee_plan(config, model, w["regime"], w["seed"]))
        job.seconds += criteria * _exit_seconds(config, model, w["regime"], size)
    elif rule == "connect_modes":
        inputs = targets.mode_connectivity_inputs(config, model, w["regime_a"], w["regime_b"], w["seed"])
        job.inputs = [inputs["model_a"], inputs["model_b"], data]
        settings = ee.analysis_settings(config, "mode_connectivity")
        split = {"train": size.train, "test": size.test}
        samples = sum(min(settings["samples"], split[s]) for s in
                      (["train"] if settings["reset_bn"] else []) + list(settings["splits"]))
        job.flops = job.paper_flops = settings["points"] * samples * _forward(config, model, w["regime_a"], size)
    else:  # map_loss_landscape, analyze_layers: one run's checkpoint
        job.inputs = [targets.trained_model_path(config, model, w["regime"], w["seed"]), data]
        settings = ee.analysis_settings(config, w.get("analysis") or "loss_landscape")
        if rule == "map_loss_landscape":
            passes = settings["points"] ** 2 * min(settings["samples"], size.train)
        else:
            passes = min(settings.get("samples", size.test), size.test)
            job.seconds += LOCAL_SECONDS["layer_analysis"]
        job.flops = job.paper_flops = passes * _forward(config, model, w["regime"], size)
    return job


def _exit_seconds(config: dict[str, Any], model: str, regime: str, size: DatasetSize) -> float:
    """Seconds of one criterion's sweep (or B_EE) over a run's validation and test logits."""
    heads = len(network_cost(targets.train_settings(config, model, regime), size).heads)
    per_exit = LOCAL_SECONDS["per_exit_and_criterion"] + size.num_classes * LOCAL_SECONDS["per_logit_and_criterion"]
    return heads * (size.val + size.test) * per_exit


def _forward(config: dict[str, Any], model: str, regime: str, size: DatasetSize) -> float:
    return network_cost(targets.train_settings(config, model, regime), size).forward


def _phase_flops(network: NetworkCost, epochs: int, size: DatasetSize, backward_part: float) -> float:
    """One phase of ``epochs``: per epoch a forward and backward over the training split and a forward over the
    validation split (early stopping)."""
    return epochs * (size.train * (network.forward + 2 * backward_part) + size.val * network.forward)


def _training_flops(config: dict[str, Any], model: str, regime: str, size: DatasetSize) -> tuple[float, float]:
    """A train_model job's FLOPs at max_epochs and at the papers' epochs: the regime's phases it runs (not phase 1
    where it starts from the shared backbone run), then its logit cache."""
    from eebench.training import REGIMES
    from eebench.training.regimes import expand

    entry = ee.model_entry(config, model)
    network = network_cost(targets.train_settings(config, model, regime), size)
    definition = REGIMES.get(regime)
    plans = expand(definition.phases_to_run(definition.reuses_backbone), network.head_blocks, len(network.blocks))
    max_epochs = entry["training"]["max_epochs"]
    reported = reported_epochs(config, model, regime)
    paper_epochs = max_epochs if reported is None else min(reported, max_epochs)
    cache = (size.val + size.test) * network.forward
    totals = []
    for epochs in (max_epochs, paper_epochs):
        totals.append(cache + sum(_phase_flops(network, epochs, size, network.backward_part(
            plan.blocks, {h for heads in plan.loss_sets for h in heads})) for plan in plans))
    return totals[0], totals[1]


def reported_epochs(config: dict[str, Any], model: str, regime: str) -> int | None:
    """The epochs per phase a paper reports for ``model``'s setting under ``regime`` (:data:`eebench.cost_model.REPORTED_EPOCHS`)."""
    entry = ee.model_entry(config, model)
    loader = ee.dataset_loader(config, entry["dataset"])
    for reported in REPORTED_EPOCHS:
        if (reported.backbone, reported.loader) == (entry["backbone"], loader):
            return reported.phase_epochs(regime)
    return None


# Hours -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    """The assumed throughput: a GPU kind at a utilisation, and one CPU core at the same utilisation."""

    gpu: DeviceKind
    utilisation: float

    @property
    def gpu_flops(self) -> float:
        return self.gpu.peak_flops * self.utilisation

    @property
    def core_flops(self) -> float:
        return CPU_CORE.peak_flops * self.utilisation

    def hours(self, job: Job, flops: float) -> tuple[float, float]:
        """(GPU-hours, CPU-hours) of ``job`` doing ``flops``: data-parallel GPUs share the work (their GPU-hours
        are its FLOPs at one GPU's rate), a job's threads are held for its whole wall time."""
        if job.gpus:
            wall = flops / (self.gpu_flops * job.gpus) + job.seconds
            return wall * job.gpus / 3600, wall * job.threads / 3600
        wall = flops / (self.core_flops * job.threads) + job.seconds
        return 0.0, wall * job.threads / 3600


def summarise(jobs: list[Job], rates: Rates) -> dict[str, Any]:
    """Per rule (in the order the DAG runs them) and in total: jobs, FLOPs, GPU-hours and CPU-hours at max_epochs
    and at the papers' epochs."""
    order = list(dict.fromkeys(["prepare_dataset", "import_logits", "import_static_logits", "train_model",
                                "train_static_head", "connect_modes", "map_loss_landscape", "analyze_layers",
                                "compute_metrics", "compute_bee", "render_table", "render_figure", "render_body",
                                "render_readings", "all", *(job.rule for job in jobs)]))
    rules: dict[str, dict[str, Any]] = {}
    for job in jobs:
        row = rules.setdefault(job.rule, {"jobs": 0, "flops": 0.0, "paper_flops": 0.0, "gpu_hours": 0.0,
                                          "paper_gpu_hours": 0.0, "cpu_hours": 0.0, "paper_cpu_hours": 0.0})
        row["jobs"] += 1
        row["flops"] += job.flops
        row["paper_flops"] += job.paper_flops
        for prefix, flops in (("", job.flops), ("paper_", job.paper_flops)):
            gpu, cpu = rates.hours(job, flops)
            row[f"{prefix}gpu_hours"] += gpu
            row[f"{prefix}cpu_hours"] += cpu
    ordered = {rule: rules[rule] for rule in order if rule in rules}
    total = {key: sum(row[key] for row in ordered.values()) for key in next(iter(ordered.values()))}
    return {"rules": ordered, "total": total}


# The plan of a config file ----------------------------------------------------------------------------------


@dataclass
class Plan:
    config_files: list[str]
    jobs: list[Job]
    rates: Rates
    absent: list[str]  # the on-disk paths the config names that were not there (planned with stand-ins)

    def summary(self) -> dict[str, Any]:
        return summarise(self.jobs, self.rates)

    def assumptions(self) -> dict[str, Any]:
        return {
            "estimate": True,
            "gpu": {"kind": self.rates.gpu.name, "peak_flops": self.rates.gpu.peak_flops,
                    "arithmetic": self.rates.gpu.arithmetic, "source": self.rates.gpu.source},
            "cpu_core": {"peak_flops": CPU_CORE.peak_flops, "arithmetic": CPU_CORE.arithmetic,
                         "source": CPU_CORE.source},
            "utilisation": self.rates.utilisation,
            "training_step": "forward + 2 x forward of the back-propagated part (forward + backward ~ 3 x forward)",
            "epochs": "max_epochs per phase; paper_* columns: the papers' reported epochs where known, else "
                      "max_epochs",
            "reported_epochs": [{"backbone": r.backbone, "loader": r.loader, "regimes": r.regimes,
                                 "source": r.source} for r in REPORTED_EPOCHS],
            "local_seconds": LOCAL_SECONDS,
            "absent_on_disk": self.absent,
        }

    def to_json(self) -> str:
        return json.dumps({"config": self.config_files, "assumptions": self.assumptions(), **self.summary()},
                          indent=2)

    def to_text(self) -> str:
        summary = self.summary()
        header = ("rule", "jobs", "GPU-h max", "CPU-h max", "GPU-h paper", "CPU-h paper")
        rows = [(rule, f"{row['jobs']:,}", _hours(row["gpu_hours"]), _hours(row["cpu_hours"]),
                 _hours(row["paper_gpu_hours"]), _hours(row["paper_cpu_hours"]))
                for rule, row in summary["rules"].items()]
        total = summary["total"]
        rows.append(("total", f"{total['jobs']:,}", _hours(total["gpu_hours"]), _hours(total["cpu_hours"]),
                     _hours(total["paper_gpu_hours"]), _hours(total["paper_cpu_hours"])))
        widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        rates = self.rates
        reported = "; ".join(f"{r.source}: {r.backbone} on {r.loader}, " + ", ".join(
            f"{regime} {epochs}" for regime, epochs in r.regimes.items()) for r in REPORTED_EPOCHS)
        notes = [
            f"Assumed: {rates.gpu.name} at {rates.gpu.peak_flops / 1e12:g} TFLOP/s ({rates.gpu.arithmetic}) x "
            f"{rates.utilisation:.0%} utilisation = {rates.gpu_flops / 1e12:.0f} TFLOP/s per GPU (--gpu, "
            f"--utilisation); a job without a GPU {CPU_CORE.peak_flops / 1e9:g} GFLOP/s per thread x the same.",
            "FLOPs per sample from torch.utils.flop_counter; a training step = its forward + 2 x the forward of the "
            "part it back-propagates through (~3 x forward); 'max': each phase at max_epochs (early stopping usually "
            f"ends it sooner); 'paper': at the epochs the papers report where known ({reported}), else max_epochs.",
            "CPU-h: wall time x the threads a job holds; sweeps, metrics, rendering and data preparation at "
            "eebench.cost_model.LOCAL_SECONDS.",
        ]
        if self.absent:
            notes.append(f"Not on disk, planned without them: {', '.join(self.absent)}.")
        rule = line(tuple("-" * w for w in widths))
        return "\n".join([f"eebench plan: {' '.join(self.config_files)} (an estimate)", "", line(header), rule,
                          *(line(row) for row in rows[:-1]), rule, line(rows[-1]), "",
                          *(textwrap.fill(note, 116, break_on_hyphens=False) for note in notes)]) + "\n"


def _hours(hours: float) -> str:
    return f"{hours:,.0f}" if hours >= 10 else f"{hours:,.1f}" if hours >= 0.05 else "<0.1" if hours else "0"


def plan(*paths: str | Path, gpu: str = DEFAULT_GPU, utilisation: float = DEFAULT_UTILISATION) -> Plan:
    """The plan of ``snakemake --configfile PATH...``: the config read and checked as the workflow checks it, with
    stand-ins for on-disk paths that are absent (module docstring)."""
    if gpu not in DEVICE_KINDS:
        raise ValueError(f"unknown GPU kind {gpu!r}; choose one of: {', '.join(DEVICE_KINDS)}")
    if not 0 < utilisation <= 1:
        raise ValueError(f"utilisation must be in (0, 1], got {utilisation!r}")
    with _stand_ins() as stand_in:
        config = ee.load_config(paths[0])
        for path in paths[1:]:
            config = ee.update_config(config, ee.load_config(path))
        config = ee.expand_includes(config, _check_file)  # each file checked alone, as prepare_config does
        absent = stand_in(config)
        targets.prepare_config(config)
        ee.freeze(config)  # nothing changes it from here: targets may keep what they derive
        jobs = plan_jobs(config)  # inside: a BERT stand-in's config.json is read while counting
    return Plan([str(p) for p in paths], jobs, Rates(DEVICE_KINDS[gpu], utilisation), absent)


def _check_file(part: dict[str, Any], path: str) -> None:
    """An included file's schema check as it is alone (eebench.targets.prepare_config's)."""
    from eebench.schema import validate_schema

    try:
        validate_schema(copy.deepcopy(part))
    except ee.ConfigError as error:
        raise ee.ConfigError(f"include: {path}: {error}") from None


# BERT-base (Devlin et al., 2019: L = 12, H = 768, A = 12), as bert-base-uncased's config.json gives it: what a
# model directory that is absent is planned as (the only backbone that reads one).
BERT_BASE = {"model_type": "bert", "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12,
             "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512,
             "type_vocab_size": 2}


class _stand_ins:
    """A context giving ``stand_in(config)``: each absent path that eebench.config_checks.check_config requires on
    disk (datasets.*.root and .model_dir, models.*.params.weights and .model_dir) replaced, in place, by a stand-in in
    a temporary directory: one per distinct path, so that settings naming different paths stay different runs.
    Returns the paths replaced, each once."""

    def __enter__(self) -> Callable[[dict[str, Any]], list[str]]:
        self.directory = tempfile.TemporaryDirectory(prefix="eebench-plan-")
        self.made: dict[str, str] = {}
        return self.replace

    def __exit__(self, *exc: Any) -> None:
        self.directory.cleanup()

    def replace(self, config: dict[str, Any]) -> list[str]:
        absent = []
        for key, params, name, kind in self._paths(config):
            path = params.get(name)
            exists = Path(path).is_file() if kind == "file" else Path(path).is_dir()
            if not exists:
                params[name] = self._made(path, kind)
                absent.append(path)
        return list(dict.fromkeys(absent))

    @staticmethod
    def _paths(config: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str, str]]:
        for dataset, params in config.get("datasets", {}).items():
            for name in ("root", "model_dir"):
                if isinstance(params, dict) and isinstance(params.get(name), str):
                    yield f"datasets.{dataset}", params, name, "dir"
        for model, entry in config.get("models", {}).items():
            params = entry.get("params") if isinstance(entry, dict) else None
            if isinstance(params, dict):
                if isinstance(params.get("weights"), str):
                    yield f"models.{model}.params", params, "weights", "file"
                if isinstance(params.get("model_dir"), str):
                    yield f"models.{model}.params", params, "model_dir", "dir"

    def _made(self, path: str, kind: str) -> str:
        if path not in self.made:
            made = Path(self.directory.name) / str(len(self.made))
            if kind == "file":
                made.touch()
            else:
                made.mkdir()
                (made / "config.json").write_text(json.dumps(BERT_BASE))
            self.made[path] = str(made)
        return self.made[path]
