"""The golden workflow, run as a user would: missing fails, CI never writes, subsets never delete others."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CELL = "qwen3-8b/think-off/single_turn"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A copy of the golden test module and Qwen3's think-off goldens, plus one golden no cell maps to."""
    pytester.makepyfile(test_goldens=(REPO / "tests" / "test_goldens.py").read_text("utf-8"))
    target = pytester.path / "goldens" / "qwen3-8b" / "think-off"
    shutil.copytree(REPO / "goldens" / "qwen3-8b" / "think-off", target)
    (target / "obsolete_fixture.golden").write_text("stale\n")
    return pytester


@pytest.fixture
def run(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run the copied suite, with CI set or not (this suite itself may run under CI)."""

    def _run(*args: str, ci: bool = False) -> pytest.RunResult:
        if ci:
            monkeypatch.setenv("CI", "true")
        else:
            monkeypatch.delenv("CI", raising=False)
        return project.runpytest_subprocess("-p", "no:cacheprovider", *args)

    return _run


def test_a_missing_golden_fails_and_ends_with_the_update_command(project: pytest.Pytester, run):
    (project.path / "goldens/qwen3-8b/think-off/single_turn.golden").unlink()
    result = run("-k", CELL)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*no golden for {CELL}*",
            f"*update: nox -s update_goldens -- 'tests/test_goldens.py::test_golden[[]{CELL}[]]'*",
        ]
    )


def test_nothing_is_written_under_ci(project: pytest.Pytester, run):
    missing = project.path / "goldens/qwen3-8b/think-off/single_turn.golden"
    missing.unlink()
    assert run("-k", CELL, ci=True).ret == pytest.ExitCode.TESTS_FAILED
    assert not missing.exists()
    refused = run("-k", CELL, "--snapshot-update", ci=True)
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*goldens are never written when CI is set*"])
    assert not missing.exists()


def test_a_subset_update_writes_its_cells_and_deletes_nothing_else(project: pytest.Pytester, run):
    golden = project.path / "goldens/qwen3-8b/think-off/single_turn.golden"
    other = project.path / "goldens/qwen3-8b/think-off/multi_turn.golden"
    stale = golden.read_text().replace("harness 0.1.0 (rules ", "harness 0.1.0 (rules 0")
    golden.write_text(stale)
    other_before = other.read_text()
    assert run("-k", CELL).ret == pytest.ExitCode.OK  # only the body is compared
    result = run("-k", CELL, "--snapshot-update")
    assert result.ret == pytest.ExitCode.OK
    assert golden.read_text() != stale  # the stale provenance header was refreshed on update
    assert other.read_text() == other_before
    assert (project.path / "goldens/qwen3-8b/think-off/obsolete_fixture.golden").exists()


def test_an_unused_golden_fails_the_run(project: pytest.Pytester, run):
    result = run("-k", "no_unused")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*obsolete_fixture.golden*fix: nox -s update_goldens (removes them)*"])
