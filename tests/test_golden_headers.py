"""Every golden's header says what produced its body: the libraries pinned in requirements.lock, this harness and
its rules digest. A header that records another rules digest makes `cth diff` name a false cause ("harness
changed") on every cell, so a stale header fails here. Reads headers only: no tokenizer loads.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chat_template_harness.outputs import golden
from chat_template_harness.outputs.snapshot import UPDATE_ALL

REPO = Path(__file__).resolve().parents[1]


def _locked() -> dict[str, str]:
    """The versions goldens are written with: requirements.lock's pins (the same order as the header's)."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (REPO / "requirements.lock").read_text("utf-8"), re.M))
    return {name: pins[name] for name in golden.library_versions()}


def test_every_golden_header_records_what_the_harness_computes(goldens_root: Path):
    expected = golden.versions_line(_locked())
    stale = golden.stale_headers(goldens_root, expected)
    lines = [
        f"{len(paths)} golden(s) record {recorded!r} (e.g. {paths[0].relative_to(goldens_root)})"
        for recorded, paths in stale.items()
    ]
    if stale:
        pytest.fail(
            f"golden headers are stale; the harness computes {expected!r}: "
            + "; ".join(lines)
            + f"; fix: {UPDATE_ALL} (rewrites stale headers; check with git diff that no body changed)",
            pytrace=False,
        )


def test_the_expected_line_is_what_an_update_writes_here():
    """Where the installed libraries are the lock's, the expected line is exactly the header `golden.header` writes."""
    installed = golden.library_versions()
    assert golden.versions_line() == golden.versions_line(installed)
    if installed == _locked():
        assert golden.versions_line(_locked()) == golden.versions_line()


def test_a_header_with_another_rules_digest_is_stale(tmp_path: Path):
    expected = golden.versions_line(_locked())
    current = tmp_path / "m" / "think-off" / "a.golden"
    old = tmp_path / "m" / "think-off" / "b.golden"
    current.parent.mkdir(parents=True)
    current.write_text(f"{golden.MAGIC}\n# versions: {expected}\n---\nbody\n", "utf-8")
    outdated = re.sub(r"rules [0-9a-f]+", "rules ada99ef82e24", expected)
    old.write_text(f"{golden.MAGIC}\n# versions: {outdated}\n---\nbody\n", "utf-8")
    assert golden.stale_headers(tmp_path, expected) == {outdated: [old]}
    other_library = expected.replace("jinja2 ", "jinja2 0.0.0-", 1)
    old.write_text(f"{golden.MAGIC}\n# versions: {other_library}\n---\nbody\n", "utf-8")
    assert golden.stale_headers(tmp_path, expected) == {other_library: [old]}
