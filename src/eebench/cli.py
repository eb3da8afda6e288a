"""The ``eebench`` command line: one subcommand per pipeline step. Usable by hand, and what every Snakemake
rule calls."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}): {text}") from None


def _threads(args: argparse.Namespace) -> None:
    """--threads is the whole job's: a torchrun worker takes its share."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(max(1, args.threads // int(os.environ.get("WORLD_SIZE", "1"))))


def cmd_prepare_data(args):
    from eebench.data import prepare_dataset

    prepare_dataset(args.dataset, args.params, args.out)


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """This command's arguments, rebuilt from ``args`` for the torchrun workers (each option ``--dest``)."""
    argv = ["--verbose"] if args.verbose else []
    argv.append(args.command)
    for dest, value in vars(args).items():
        if dest in ("verbose", "command", "handler") or value is None or value is False:
            continue
        flag = "--" + dest.replace("_", "-")
        if value is True:
            argv.append(flag)
        else:
            argv += [flag, json.dumps(value) if isinstance(value, (dict, list)) else str(value)]
    return argv


def _launched_workers(args: argparse.Namespace) -> bool:
    """With ``--nproc N > 1`` outside torchrun, run this command in N data-parallel workers instead and exit
    with their status; inside a worker (WORLD_SIZE set) train as one rank."""
    world_size = os.environ.get("WORLD_SIZE")
    if world_size is not None:
        if args.nproc > 1 and int(world_size) != args.nproc:
            raise ValueError(f"--nproc {args.nproc}, but this torchrun worker's WORLD_SIZE is {world_size}")
        return False
    if args.nproc <= 1:
        return False
    from eebench.training.distributed import launch

    status = launch(args.nproc, _worker_argv(args))
    if status:
        raise SystemExit(status)
    return True


def _train(args: argparse.Namespace, step: Callable[[], None]) -> None:
    """Run a training step here, or in ``--nproc`` torchrun workers; preemption exits with ``EXIT_PREEMPTED``
    (75), so that Snakemake and SLURM see a failure and rerun the job, which then resumes. A model that cannot be
    written (``OutputError``) says what is left of the run: nothing without ``--resume``, else its checkpoint."""
    if _launched_workers(args):
        return
    from eebench.io import OutputError
    from eebench.training import EXIT_PREEMPTED, Preempted

    if int(os.environ.get("RANK", "0")) > 0:
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 reports progress for all
    _threads(args)
    try:
        step()
    except Preempted as preempted:
        print(f"eebench {args.command}: preempted: {preempted}", file=sys.stderr)
        raise SystemExit(EXIT_PREEMPTED) from None
    except OutputError as error:  # the trained model could not be written: what is left of the run
        if error.note or Path(error.path) != Path(args.out):
            raise
        raise error.with_note(
            "the run is lost: without --resume FILE nothing of it was kept (with it, a rerun continues from the "
            "checkpoint kept there instead of training again)"
            if args.resume is None else
            f"its resume checkpoint {args.resume} is kept: rerun the same command once the model can be written "
            "(it continues from there, with no more training)") from error


def cmd_train(args):
    from eebench.steps import train_model

    _train(args, lambda: train_model(args.data, args.model, args.training, args.regime, args.seed, args.out,
                                     init=args.init, resume=args.resume, restart=args.restart, meta=args.meta,
                                     logits=args.logits))


def cmd_train_static_head(args):
    from eebench.steps import train_static_head

    _train(args, lambda: train_static_head(args.data, args.model, args.training, args.block, args.seed, args.out,
                                           resume=args.resume, restart=args.restart, meta=args.meta,
                                           logits=args.logits))


def cmd_cache_logits(args):
    from eebench.steps import cache_logits

    _threads(args)
    cache_logits(args.checkpoint, args.data, args.out)


def cmd_import_logits(args):
    from eebench.logit_cache import import_logits

    import_logits(args.source, args.out, task=args.task, head_flops=args.head_flops,
                  backbone_flops=args.backbone_flops, head_blocks=args.head_blocks, meta=args.meta)


def cmd_sweep(args):
    from eebench.exits.sweep import run_sweep

    run_sweep(args.logits, args.criterion, args.out, max_points=args.max_points or None, params=args.params,
              name=args.name)


def cmd_budgets(args):
    from eebench.metrics import run_budgets

    run_budgets(args.sweep, args.budgets, args.out, rule=args.rule)


def cmd_bee(args):
    from eebench.metrics import run_bee

    run_bee(args.sweep, args.static, args.out)


def cmd_metrics(args):
    from eebench.metrics import run_metrics

    run_metrics(args.logits, args.plan, args.out)


def cmd_bee_run(args):
    from eebench.metrics import run_bees

    run_bees(args.metrics, args.criteria, args.static, args.out)


def cmd_analyze(args):
    _threads(args)
    from eebench.analysis.layers import run_analysis
    from eebench.steps import check_checkpoints_data

    check_checkpoints_data([args.checkpoint], args.data)
    run_analysis(args.analysis, args.checkpoint, args.data, args.out, args.params)


def cmd_connect_modes(args):
    _threads(args)
    from eebench.analysis.checkpoint import run_checkpoint_analysis
    from eebench.steps import check_checkpoints_data

    check_checkpoints_data(args.checkpoints, args.data)
    run_checkpoint_analysis("mode_connectivity", args.checkpoints, args.data, args.out, args.params)


def cmd_landscape(args):
    _threads(args)
    from eebench.analysis.checkpoint import run_checkpoint_analysis
    from eebench.steps import check_checkpoints_data

    check_checkpoints_data([args.checkpoint], args.data)
    run_checkpoint_analysis("loss_landscape", [args.checkpoint], args.data, args.out, args.params)


def cmd_render_table(args):
    from eebench.render.tables import render_table

    render_table(args.kind, args.spec, args.inputs, args.out)


def cmd_render_figure(args):
    from eebench.render.figures import render_figure

    render_figure(args.kind, args.spec, args.inputs, args.out)


def cmd_render_body(args):
    from eebench.render.paper import write_body

    if args.config is not None:  # without Snakemake: the body of a config file, read and checked as the workflow does
        from eebench.render.spec import body_spec
        from eebench.targets import checked_config

        spec = body_spec(checked_config(args.config))
    else:
        spec = args.spec
    write_body(spec, args.out)


def cmd_check_config(args):
    from eebench.targets import checked_config

    checked_config(*args.config)  # what `snakemake --configfile FILE...` checks when the workflow loads
    print(f"{' '.join(args.config)}: ok")


def cmd_schema(args):
    from eebench.io import write_text
    from eebench.schema import schema_text

    if args.out:
        write_text(args.out, schema_text())
    else:
        print(schema_text(), end="")


def cmd_plan(args):
    from eebench.plan import plan

    chosen = {"gpu": args.gpu, "utilisation": args.utilisation}  # unset: the plan's defaults
    planned = plan(*args.config, **{key: value for key, value in chosen.items() if value is not None})
    sys.stdout.write(planned.to_json() + "\n" if args.format == "json" else planned.to_text())


def cmd_readings(args):
    from eebench.readings import render

    text = render(args.format)
    if args.out is None:
        sys.stdout.write(text)
    else:
        from eebench.io import write_text

        write_text(args.out, text)


def cmd_paper_numbers(args):
    from eebench import paper_numbers

    if args.list:
        sys.stdout.write("table,values\n" + "".join(f"{table},{count}\n"
                                                   for table, count in paper_numbers.counts().items()))
    else:
        sys.stdout.write(paper_numbers.csv_text(args.table))


def cmd_acceptance(args):
    from eebench.acceptance import acceptance

    sys.stdout.write(acceptance(args.tables, top=args.top, out=args.out))


def cmd_build_paper(args):
    from eebench.latex import LatexError, build_pdf

    try:
        build_pdf(args.tex, args.out, engine=args.engine, log=args.log)
    except LatexError as error:  # not a traceback: LaTeX missing or the document's own error, said in one line
        print(f"eebench {args.command}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{args.out}: compiled from {args.tex}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eebench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.set_defaults(handler=handler)
        return p

    p = add("prepare-data", cmd_prepare_data, "write a dataset's deterministic train/val/test splits")
    p.add_argument("--dataset", required=True)
    p.add_argument("--params", type=_json, default={}, help="dataset parameters as JSON")
    p.add_argument("--out", required=True)

    for name, handler, help in (("train", cmd_train, "train a multi-exit model under a regime"),
                                ("train-static-head", cmd_train_static_head, "train one static per-head baseline")):
        p = add(name, handler, help)
        p.add_argument("--data", required=True, help="prepared dataset (.npz)")
        p.add_argument("--model", type=_json, required=True,
                       help='JSON: {"backbone", "params", "ic", "placement"[, "task"]}')
        p.add_argument("--training", type=_json, default={}, help="JSON training settings (TrainingConfig)")
        p.add_argument("--meta", type=_json, default=None,
                       help='JSON names recorded with the run, e.g. {"model": "cnn_mlp", "dataset": "digits"}')
        p.add_argument("--seed", type=int, required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--logits", default=None, metavar="PATH",
                       help="also write the trained model's logit cache there (what cache-logits writes)")
        p.add_argument("--threads", type=int, default=0, help="torch threads of the job (split among --nproc workers)")
        p.add_argument("--resume", default=None, metavar="PATH",
                       help="resume checkpoint: continue from it if present, write it periodically and on "
                            "SIGTERM/SIGUSR1 (then exit 75), remove it on success; keep it outside the outputs")
        p.add_argument("--restart", action="store_true", help="discard an existing --resume checkpoint")
        p.add_argument("--nproc", type=int, default=1,
                       help="data-parallel processes on this node (torchrun; one per GPU, or gloo on the CPU)")
        if name == "train":
            p.add_argument("--regime", required=True)
            p.add_argument("--init", default=None, help="checkpoint of the 'backbone' regime to start from")
        else:
            p.add_argument("--block", type=int, required=True,
                           help="0-based block after which the static model stops (one of the model's heads)")

    p = add("cache-logits", cmd_cache_logits, "write logits [H, N, C], labels and per-head FLOPs")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=0)

    p = add("import-logits", cmd_import_logits, "a logit cache from a plain .npz or .pt of per-head logits, labels "
            "and per-head FLOPs (a network this package did not train; README, 'The logit cache')")
    p.add_argument("--source", required=True, metavar="FILE",
                   help="a .npz or torch .pt holding val_logits, test_logits [H, N, C], val_labels, test_labels and "
                        "head_flops [H] (optional: backbone_flops, task, head_blocks, meta), or a logit cache")
    p.add_argument("--task", default=None, help="a registered task, where the file has none (default single_label)")
    p.add_argument("--head-flops", type=float, nargs="+", default=None, metavar="FLOPS",
                   help="the cost per sample of exiting at each head, where the file has none")
    p.add_argument("--backbone-flops", type=float, default=None, metavar="FLOPS",
                   help="the 100%% budget: the network without early exits (default: the last head's FLOPs)")
    p.add_argument("--head-blocks", type=int, nargs="+", default=None, metavar="BLOCK",
                   help="each head's 0-based block, where the file has none (optional)")
    p.add_argument("--meta", type=_json, default=None,
                   help='JSON names carried into every CSV, merged over the file\'s, e.g. {"model": "mine"}')
    p.add_argument("--out", required=True, help="the logit cache (.npz)")

    p = add("sweep", cmd_sweep, "sweep an exit criterion's thresholds over a logit cache")
    p.add_argument("--logits", required=True)
    p.add_argument("--criterion", required=True, help="a registered exit criterion")
    p.add_argument("--params", type=_json, default={}, help="its parameters as JSON (default: its defaults)")
    p.add_argument("--name", default=None, help="the name written in the CSV's criterion column (default: "
                                                   "the criterion's)")
    p.add_argument("--out", required=True)
    p.add_argument("--max-points", type=int, default=0, help="0 = every distinct operating point")

    p = add("budgets", cmd_budgets, "performance within each FLOPs budget, under a budget rule")
    p.add_argument("--sweep", required=True)
    p.add_argument("--budgets", type=float, nargs="+", required=True)
    p.add_argument("--rule", choices=("best", "last", "val"), default="best",
                   help="how a budget picks its operating point (eebench.sweep_metrics.BUDGET_RULE_DESCRIPTIONS)")
    p.add_argument("--out", required=True)

    p = add("bee", cmd_bee, "benefit B_EE of early exits over static heads (paper A)")
    p.add_argument("--sweep", required=True)
    p.add_argument("--static", nargs="+", required=True, help="static heads' logit caches")
    p.add_argument("--out", required=True)

    p = add("metrics", cmd_metrics, "every sweep and budget table of one run in one process (what sweep and "
            "budgets write, laid out in one directory: eebench.metrics.run_metrics)")
    p.add_argument("--logits", required=True, help="the run's logit cache")
    p.add_argument("--plan", type=_json, required=True,
                   help='JSON: {"max_points": 0, "sweeps": [{"name", "criterion", "params"}], "budgets": '
                        '[{"criterion", "rule", "budgets"}]} (eebench.targets.metrics_plan)')
    p.add_argument("--out", required=True, help="the run's metric directory")

    p = add("bee-run", cmd_bee_run, "B_EE of several criteria of one run in one process (what bee writes, one "
            "file per criterion in one directory: eebench.metrics.run_bees)")
    p.add_argument("--metrics", required=True, help="the run's metric directory (eebench metrics --out), whose "
                                                   "sweeps/<criterion>.csv are read")
    p.add_argument("--criteria", nargs="+", required=True, help="criterion names (eebench.targets.bee_plan)")
    p.add_argument("--static", nargs="+", required=True, help="static heads' logit caches, in head order")
    p.add_argument("--out", required=True, help="the run's B_EE directory (<criterion>.csv)")

    p = add("analyze", cmd_analyze, "a per-layer analysis of a trained model (paper B §3.3-3.4)")
    p.add_argument("--analysis", required=True, help="numerical_rank | mutual_information")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="the prepared dataset it was trained on (its test split is read)")
    p.add_argument("--params", type=_json, default={}, help="the analysis's parameters as JSON (samples, ...)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    p = add("connect-modes", cmd_connect_modes,
            "mode connectivity (paper B §3.2): the loss along the linear path between two models, B aligned to A")
    p.add_argument("--checkpoints", nargs=2, required=True, metavar=("A", "B"),
                   help="two checkpoints of one network (e.g. one seed's disjoint and mixed runs)")
    p.add_argument("--data", required=True, help="the prepared dataset they were trained on")
    p.add_argument("--params", type=_json, default={},
                   help="JSON settings (points, samples, splits, iterations, match_seed, reset_bn, batch_size)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    p = add("landscape", cmd_landscape, "training loss landscape around a trained model (paper B App. B, eq. 6)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="the prepared dataset it was trained on (its train split is read)")
    p.add_argument("--params", type=_json, default={},
                   help="JSON settings (points, span, samples, direction_seed, batch_size)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)

    for name, handler in (("render-table", cmd_render_table), ("render-figure", cmd_render_figure)):
        p = add(name, handler, f"{name.split('-')[1]} from metric CSVs")
        p.add_argument("--kind", required=True)
        p.add_argument("--spec", type=_json, default={})
        p.add_argument("--inputs", nargs="*", required=True)  # none for a kind that reads no results (presets)
        p.add_argument("--out", required=True)

    p = add("render-body", cmd_render_body, "the regenerated paper's body (paper/body.tex): every table and "
            "figure in the papers' order, under their sections")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", type=_json, help="JSON from eebench.render.spec.body_spec (what the rule passes)")
    source.add_argument("--config", help="a config file (a suite's include: files expanded)")
    p.add_argument("--out", required=True)

    p = add("check-config", cmd_check_config, "check a config as the workflow does when it loads (a suite's "
            "include: files, the schema, names, cross references, dataset roots), without Snakemake")
    p.add_argument("--config", nargs="+", required=True, metavar="FILE",
                   help="the config file; several are merged as `snakemake --configfile FILE...` merges them")

    p = add("schema", cmd_schema, "the config's JSON schema as the workflow checks it: the skeleton "
            "(workflow/schemas/config.schema.yaml) with every registered entry's part generated from its declaration")
    p.add_argument("--out", help="write it to this file (YAML) instead of stdout, e.g. for an editor")

    p = add("plan", cmd_plan, "what a config costs before it runs: per rule and in total its jobs, GPU-hours and "
            "CPU-hours, estimated from FLOPs (eebench/plan.py); needs no data")
    p.add_argument("--config", nargs="+", required=True, metavar="FILE",
                   help="the config file; several are merged as `snakemake --configfile FILE...` merges them")
    p.add_argument("--gpu", help="GPU kind whose peak the estimate assumes (eebench.cost_model.DEVICE_KINDS; default h100)")
    p.add_argument("--utilisation", type=float, help="share of that peak a job sustains (default 0.2)")
    p.add_argument("--format", choices=("text", "json"), default="text")

    p = add("readings", cmd_readings, "the papers' silences and the readings taken (eebench/readings.py), "
            "as the README's section or the paper's")
    p.add_argument("--format", choices=("markdown", "latex"), required=True)
    p.add_argument("--out", help="write here (atomically) instead of to standard output")

    p = add("paper-numbers", cmd_paper_numbers, "the numbers a table of the papers prints, as transcribed "
            "(eebench/paper_numbers), as CSV")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("table", nargs="?", help='a transcribed item, spelled as regenerates: is ("B Table 8", '
                                                '"B Tables 8-18", "B §4.7")')
    which.add_argument("--list", action="store_true", help="every transcribed item with its number of values")

    p = add("acceptance", cmd_acceptance, "a paper-scale run's tables against paper B's values: per table the "
            "cells within the paper's mean ± 2 std, outside, not compared (and why), and the largest gaps")
    p.add_argument("--tables", default="paper/tables", help="the rendered tables' directory, whose CSVs of a "
                                                            "paper-scale config compare (default: paper/tables)")
    p.add_argument("--top", type=int, default=10, help="how many of the largest gaps to list (default: 10)")
    p.add_argument("--out", help="also write every cell, compared or not, as CSV here (atomically), the largest "
                                 "gaps first")

    p = add("build-paper", cmd_build_paper, "compile the regenerated paper to PDF (needs LaTeX)")
    p.add_argument("--tex", default="paper/main.tex", help="the document (compiled in its own directory)")
    p.add_argument("--out", default="paper/main.pdf", help="the PDF, replaced atomically once LaTeX succeeds")
    p.add_argument("--engine", choices=("latexmk", "pdflatex"), default=None,
                   help="default: latexmk if installed, else pdflatex (run until references settle)")
    p.add_argument("--log", default=None, help="where to keep LaTeX's log, also on failure (default: beside "
                                              "--out, <name>.log)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``eebench`` program: a process started with no ``argv`` hands its command to the Snakemake run's local
    worker where there is one (``eebench.worker``: no import time per job), else runs it here."""
    if argv is None:
        from eebench import worker

        status = worker.delegate(sys.argv[1:])
        if status is not None:
            return status
    return run(sys.argv[1:] if argv is None else argv)


def run(argv: list[str]) -> int:
    """Run one command in this process and return its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args.handler(args)
    except (KeyError, TypeError, ValueError, FileNotFoundError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"eebench {args.command}: error: {message}", file=sys.stderr)
        return 2
    except OSError as error:
        # An output that could not be written (eebench.io.OutputError: one line naming it and the cause). Not
        # imported for this: a command that never loaded eebench.io cannot have raised it.
        io = sys.modules.get("eebench.io")
        if io is None or not isinstance(error, io.OutputError):
            raise
        print(f"eebench {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # torchrun's workers start here: each is its own process, never the worker's fork
    sys.exit(run(sys.argv[1:]))
