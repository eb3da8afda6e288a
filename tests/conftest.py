"""Fixtures shared by every test folder."""
import sys
import time

import pytest


@pytest.fixture(scope="session")
def latex():
    """LaTeX with latexmk and what paper/main.tex loads, apt-installed if missing (tests/latex.py); a skip
    saying why where it is missing and cannot be installed."""
    from tests import latex as latex_install  # here, not at the top: most sessions never compile a document

    reason = latex_install.unavailable_reason()
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    try:
        latex_install.install(log=lambda message: print(message, file=sys.stderr))
    except latex_install.LatexInstallError as error:
        pytest.fail(f"could not install LaTeX: {error}")
    if time.monotonic() - started > 1:
        print(f"LaTeX installed in {time.monotonic() - started:.0f} s", file=sys.stderr)
