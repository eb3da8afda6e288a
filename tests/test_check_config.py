"""`eebench check-config` runs exactly the checks the workflow runs when it loads (eebench.config.prepare_config:
a suite's include: files, the JSON schema, then names, cross references and paths on disk), so it agrees with
`snakemake -n --configfile FILE` on every shipped config and on every bad config, and says what is wrong in one
line: the key path (or the file and line) and what was expected.

The bad configs are rows of the one table of bad inputs, tests/test_bad_files.py's BAD_CONFIGS (run there through
`eebench check-config`); here, a handful of them through Snakemake, and the configs that pass."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from eebench import config as ee
from eebench import schema as ee_schema
from eebench import targets
from eebench.cli import main
from tests.test_bad_files import BAD_CONFIGS, edited, suite, text

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {case.id: case for case in BAD_CONFIGS}

# Snakemake reads a --configfile before the workflow's code runs, so a file that is not a YAML mapping fails
# there, with Snakemake's message (no line number); check-config names the line.
SNAKEMAKE_READS_IT = {
    "yaml_syntax_error": "Config file is not valid JSON or YAML",
    "tab_indentation": "Config file is not valid JSON or YAML",
    "empty_file": "Config file must be given as JSON or YAML with keys at top level",
    "only_comments": "Config file must be given as JSON or YAML with keys at top level",
    "top_level_list": "Config file must be given as JSON or YAML with keys at top level",
}
# The rows dry-run by Snakemake too (each costs ~3 s, so 16 of the 30, one or more of each kind): schema errors,
# cross references, data on disk, suites, files.
DRY_RUN = ["misspelt_top_level_key", "negative_budget", "negative_seed", "batch_size_a_string",
           "misspelt_training_key", "unknown_regime", "unknown_backbone", "unknown_model_in_table",
           "unknown_dataset_of_a_model", "unknown_criterion", "inheritance_cycle", "absent_dataset_root",
           "absent_include", "included_file_misspelt_key", "yaml_syntax_error", "empty_file"]


def check_config(capsys, *paths) -> tuple[int, str]:
    """``eebench check-config --config PATH...`` in this process: its exit status and its output."""
    status = main(["check-config", "--config", *map(str, paths)])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_the_dry_run_rows_are_rows_of_the_table():
    assert set(DRY_RUN) <= set(CONFIGS) and set(SNAKEMAKE_READS_IT) <= set(CONFIGS)


def test_the_base_of_the_table_passes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = edited(lambda c: None)(tmp_path)
    assert check_config(capsys, path) == (0, f"{path}: ok\n")


@pytest.mark.parametrize("case", DRY_RUN)
def test_snakemake_dry_run_fails_with_the_same_line(case, tmp_path):
    from tests.workflow.conftest import snakemake

    row = CONFIGS[case]
    path = row.make(tmp_path / row.reads.file, None)
    result = snakemake(tmp_path, "--dry-run", "--configfile", path.name, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert SNAKEMAKE_READS_IT.get(case, row.message) in output, output
    assert len(output.splitlines()) < 25, output  # the line, not a dump of the schema
    assert "rule " not in output


def test_several_files_merge_as_snakemake_merges_its_configfiles(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base = edited(lambda c: None)(tmp_path)
    over = text("seeds: [-1]\ntraining: {lr: 0.01}\n", name="over.yaml")(tmp_path)
    status, output = check_config(capsys, base, over)
    assert status == 2 and "seeds[0]: -1 is less than the minimum of 0" in output
    merged = ee.update_config(ee.load_config(base), ee.load_config(over))
    assert merged["seeds"] == [-1] and merged["training"] == {"max_epochs": 1, "lr": 0.01}


def test_a_suite_file_keeps_its_fidelity_preset(tmp_path, monkeypatch):
    """A file's top-level fidelity: becomes its models' own in a suite, as its training: does (it was dropped)."""
    monkeypatch.chdir(tmp_path)
    path = suite(edited(lambda c: c.update(fidelity="authors_code"), name="part.yaml"))(tmp_path)
    config = targets.checked_config(path)
    assert config["models"]["cnn"]["fidelity"] == "authors_code"
    assert ee.model_entry(config, "cnn")["fidelity"] == "authors_code"


# The shipped configs: the same verdict as the workflow's ----------------------------------------------------------

SHIPPED = [REPO / "config.yaml", *sorted((REPO / "config").glob("**/*.yaml"))]


def first_absent_path(config: dict) -> str:
    """The first dataset root or model directory the check looks for, as its error names it."""
    for name, params in ee.expand_includes(config)["datasets"].items():
        for key in ("root", "model_dir"):
            if key in params and not Path(params[key]).is_dir():
                return f"datasets.{name}.{key}: directory {params[key]} does not exist"
    return ""


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_each_shipped_config_passes_or_names_its_absent_data(path, monkeypatch, capsys):
    """config.yaml passes; a paper-scale config whose data is not on this machine fails naming the key and the
    directory, as the workflow does (tests/workflow/test_paper_configs.py plans them with their data present)."""
    monkeypatch.chdir(REPO)  # a suite's include: paths are relative to the working directory
    relative = path.relative_to(REPO)
    absent = first_absent_path(ee.load_config(relative))
    status, output = check_config(capsys, relative)
    if absent:
        assert status == 2 and absent in output and output.count("\n") == 1, output
    else:
        assert (status, output) == (0, f"{relative}: ok\n")


def test_the_paper_suite_passes_once_its_data_is_there(tmp_path, monkeypatch, capsys):
    """Every paper-scale file, its paths pointed at fixtures, checked through the suite that includes them all
    (each file against the schema alone, then the merged experiment); Snakemake plans each of them in
    tests/workflow/test_paper_configs.py."""
    from tests.fixtures import with_fixtures, write_bert_base_config

    bert_dir = write_bert_base_config(tmp_path / "bert")
    monkeypatch.chdir(tmp_path)
    suite = Path("config/paper/all.yaml")
    suite.parent.mkdir(parents=True)
    shutil.copy(REPO / suite, suite)
    for path in ee.load_config(suite)["include"]:
        Path(path).write_text(yaml.safe_dump(with_fixtures(ee.load_config(REPO / path), tmp_path, bert_dir)))
    assert check_config(capsys, suite) == (0, f"{suite}: ok\n")


def test_snakemake_dry_run_of_the_paper_suite_names_the_same_absent_data(tmp_path, monkeypatch, capsys):
    """config/paper/all.yaml, its include: paths relative to the working directory, in a copy of its files."""
    from tests.workflow.conftest import snakemake

    shutil.copytree(REPO / "config" / "paper", tmp_path / "config" / "paper")
    monkeypatch.chdir(tmp_path)
    suite = Path("config/paper/all.yaml")
    absent = first_absent_path(ee.load_config(suite))
    status, output = check_config(capsys, suite)
    assert absent and status == 2 and absent in output, output
    result = snakemake(tmp_path, "--dry-run", "--configfile", str(suite), check=False)
    assert result.returncode != 0 and absent in result.stdout + result.stderr


@pytest.fixture(scope="module")
def composed_schema(tmp_path_factory):
    """The composed schema as a file (`eebench schema`), as Snakemake's validate reads one."""
    path = tmp_path_factory.mktemp("schema") / "config.schema.yaml"
    path.write_text(ee_schema.schema_text())
    return path


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_the_schema_fills_in_the_defaults_snakemakes_validate_fills(path, monkeypatch, composed_schema):
    """The rules read the schema's defaults and their params carry them: the same defaults keep the same runs."""
    from snakemake.utils import validate

    monkeypatch.chdir(REPO)
    config = ee.expand_includes(ee.load_config(path.relative_to(REPO)))
    ours, snakemakes = copy.deepcopy(config), copy.deepcopy(config)
    ee_schema.validate_schema(ours)
    validate(snakemakes, str(composed_schema))
    assert ours == snakemakes and ours != config
