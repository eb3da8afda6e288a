"""Models evaluated from their own logit caches (``models.<name>.caches``, issue 26): a network this package did
not train, named by its caches (one per seed, and one static cache per head where B_EE is wanted). Such an entry
names no dataset, backbone or training and shares nothing; the workflow imports its caches (rules import_logits,
import_static_logits) where a trained run's would be, and every table and figure that reads caches reads them.
This module resolves and checks such entries for eebench.config.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from eebench.fidelity import DEFAULT_PRESET
from eebench.schema import ConfigError, require_registered


# Models evaluated from their own caches -----------------------------------------------------------------------

EXTERNAL_REGIME = "joint"  # what tables call an external entry's runs unless its caches.regime says otherwise
EXTERNAL_DATASET = "own data"  # an external entry's dataset in captions and CSVs unless caches.dataset names it


def is_external(entry: dict[str, Any]) -> bool:
    """Whether a model entry (raw or resolved) is a network evaluated from its own logit caches (``caches:``)
    instead of one this package trains."""
    return isinstance(entry, dict) and "caches" in entry


def resolve_external(name: str, entry: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """An external entry resolved: ``caches`` with its seeds' cache paths by seed (as text, as wildcards have
    them), its static caches per seed (a list given once holds for every seed), its ``regime``; the ``dataset``
    and ``backbone`` captions and CSVs name (labels, not config entries), the config's fidelity preset (captions
    name it) and no resources, task or shared baseline of its own (its task is its caches')."""
    others = sorted(key for key in entry if key != "caches")
    if others:
        raise ConfigError(f"models.{name}: an entry evaluated from its own caches (caches:) takes no "
                          f"{', '.join(map(repr, others))}: its network, data and training are the caches' own")
    caches = entry["caches"]
    seeds = {}
    for seed, path in caches["seeds"].items():
        if not str(seed).isdigit():
            raise ConfigError(f"models.{name}.caches.seeds: {seed!r} is not a seed (an integer >= 0)")
        seeds[str(int(seed))] = path
    static = caches.get("static")
    if isinstance(static, list):
        static = {seed: list(static) for seed in seeds}
    elif isinstance(static, dict):
        for seed in static:
            if not str(seed).isdigit():
                raise ConfigError(f"models.{name}.caches.static: {seed!r} is not a seed (an integer >= 0)")
        static = {str(int(seed)): list(paths) for seed, paths in static.items()}
    return {
        "caches": {"seeds": seeds, "static": static, "regime": caches.get("regime", EXTERNAL_REGIME)},
        "dataset": caches.get("dataset", EXTERNAL_DATASET),
        "backbone": caches.get("backbone", name),
        "task": None,  # its caches'
        "static_baseline": None,
        "resources": {},
        "fidelity": config.get("fidelity", DEFAULT_PRESET),
    }


def external_task(entry: dict[str, Any]) -> str:
    """The task of an external entry: its first seed's cache's (check_config makes every seed's agree)."""
    seed, path = next(iter(entry["caches"]["seeds"].items()))
    return _cache_summary(path, f"caches.seeds.{seed}")["task"]


def _cache_summary(path: str, key: str) -> dict[str, Any]:
    """A cache's task and head count (eebench.logit_cache.read_cache_summary), once per file version; a missing or
    foreign file is a ConfigError naming ``key``."""
    try:
        stat = Path(path).stat()
    except OSError:
        raise ConfigError(f"{key}: {path} does not exist (resolved from {Path.cwd()}); a cache is read from disk, "
                          f"never made by the workflow (write it with eebench.logit_cache.write_cache or "
                          f"`eebench import-logits`)") from None
    try:
        return _read_summary(str(path), stat.st_mtime_ns, stat.st_size)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{key}: {error}") from None


@functools.lru_cache(maxsize=256)
def _read_summary(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    from eebench.logit_cache import read_cache_summary

    return read_cache_summary(path)


def external_static(entry: dict[str, Any], seed: int | str) -> list[str] | None:
    """The static caches of an external entry for ``seed``, in head order (None: it has none for that seed)."""
    static = entry["caches"]["static"]
    return None if static is None else static.get(str(seed))


def check_external(name: str, entry: dict[str, Any]) -> None:
    """An external entry's caches exist and are logit caches of one registered task and one head count, and its
    static caches are one single-head cache per head (what B_EE compares each head with). Only what a cache says
    of itself in a few bytes is read here; each job checks the whole cache it reads
    (eebench.logit_cache.load_cache)."""
    key = f"models.{name}.caches"
    first: tuple[str, dict[str, Any]] | None = None
    for seed, path in entry["caches"]["seeds"].items():
        summary = _cache_summary(path, f"{key}.seeds.{seed}")
        require_registered("task", summary["task"], f"{key}.seeds.{seed}: {path}: its task")
        if first is not None and (summary["task"], summary["heads"]) != (first[1]["task"], first[1]["heads"]):
            raise ConfigError(f"{key}.seeds.{seed}: {path} holds {summary['heads']} heads of task "
                              f"{summary['task']!r}, seed {first[0]}'s cache {first[1]['heads']} of task "
                              f"{first[1]['task']!r}; the caches of one network")
        first = first or (seed, summary)
    heads = first[1]["heads"] if first else 0
    for seed, paths in (entry["caches"]["static"] or {}).items():
        if seed not in entry["caches"]["seeds"]:
            raise ConfigError(f"{key}.static: static caches for seed {seed}, which has no cache under {key}.seeds "
                              f"(seeds: {', '.join(entry['caches']['seeds'])})")
        if len(paths) != heads:
            raise ConfigError(f"{key}.static: {len(paths)} static caches (seed {seed}) for a network of {heads} "
                              f"heads; one per head, in head order, the last the network without early exits")
        for index, path in enumerate(paths):
            summary = _cache_summary(path, f"{key}.static (seed {seed}, head {index + 1})")
            if summary["heads"] != 1:
                raise ConfigError(f"{key}.static (seed {seed}, head {index + 1}): {path} holds {summary['heads']} "
                                  f"heads; a static model's cache holds one")


# What a table or figure may read of a model evaluated from its caches: what is computed from caches.
EXTERNAL_STAGES = ("budgets", "bee", "sweeps", "logits")


def require_external_fits(config: dict[str, Any], model: dict[str, Any], run: Any, spec: dict[str, Any],
                           section: str, key: str) -> None:
    """A table or figure shows an external entry only where it reads what caches give (sweeps, budget tables,
    B_EE, the caches themselves), of the regime its caches stand for, at seeds it has caches of, and, for B_EE,
    with static caches of each of those seeds."""
    from eebench.render import renderer

    stage = renderer(section, spec["kind"]).reads
    caches = model["caches"]
    if stage not in EXTERNAL_STAGES:
        raise ConfigError(f"{key}: model {run.model!r} is evaluated from its own caches (caches:), which hold no "
                          f"checkpoint or training record; a {spec['kind']} {section[:-1]} reads {stage}")
    for regime in (run.regime, run.versus):
        if regime and regime != caches["regime"]:
            raise ConfigError(f"{key}: model {run.model!r} has caches of regime {caches['regime']!r} only "
                              f"(models.{run.model}.caches.regime), not {regime!r}")
    for seed in spec.get("seeds", config.get("seeds", [])):
        if str(seed) not in caches["seeds"]:
            raise ConfigError(f"{key}: model {run.model!r} has no cache for seed {seed} (models.{run.model}.caches."
                              f"seeds: {', '.join(caches['seeds'])}); name the seeds it has (seeds:)")
        if stage == "bee" and external_static(model, seed) is None:
            raise ConfigError(f"{key}: model {run.model!r} has no static caches for seed {seed} "
                              f"(models.{run.model}.caches.static), which B_EE compares each head with")
