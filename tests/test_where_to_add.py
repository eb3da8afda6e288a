"""The README's "Where to add X" table (issue 25 point 6) is true: each row's file holds entries of the row's
registry, so a new entry written there beside them is found by the registry like theirs."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from eebench.schema import registries

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO.joinpath("README.md").read_text().split("<!-- where-to-add:start -->")[1].split("<!-- where-to-add:end -->")[0]
ROWS = re.findall(r"^\| (.+?) \| `(src/eebench/[\w/]+\.py)` \| `(\w+)` \|$", TABLE, flags=re.MULTILINE)


def defining_file(entry) -> str:
    """Where a registered entry is written: a function's or class's file; an instance's (a dataset entry, a
    claim), its class's, or its check's where it carries one."""
    if hasattr(entry, "check"):
        entry = entry.check
    target = entry if inspect.isfunction(entry) or inspect.isclass(entry) else type(entry)
    return str(Path(inspect.getsourcefile(inspect.unwrap(target))).resolve().relative_to(REPO))


def test_the_table_has_a_row_for_each_extension_the_issue_names():
    assert len(ROWS) >= 9
    assert {kind for _, _, kind in ROWS} >= {"criterion", "regime", "loss_scaling", "ic", "backbone", "dataset",
                                               "table", "figure", "claim"}


@pytest.mark.parametrize(("what", "path", "kind"), ROWS, ids=[row[0] for row in ROWS])
def test_each_row_names_a_file_that_holds_entries_of_its_registry(what, path, kind):
    registry = registries()[kind]
    files = {defining_file(registry.get(name)) for name in registry.names()}
    assert path in files, f"{what}: {path} holds no {kind} entry (they are in {', '.join(sorted(files))})"
