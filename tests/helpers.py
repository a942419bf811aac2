"""Test helpers that make deliberately wrong inputs (negative controls)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# In Qwen3's template, the newline after a user/system role header: `'<|im_start|>' + message.role + '\n' + content`.
QWEN3_ROLE_NEWLINE = "message.role + '\\\\n' + content + '<|im_end|>'"


def writable_pack(tmp_path: Path, pack_dir: Path, folders: list[str] | None = None) -> Path:
    """A copy of the pack (all folders, or the named ones) that tests may edit."""
    target = tmp_path / "pack"
    target.mkdir()
    shutil.copy(pack_dir / "MANIFEST.json", target / "MANIFEST.json")
    for folder in folders or [p.name for p in pack_dir.iterdir() if p.is_dir()]:
        shutil.copytree(pack_dir / folder, target / folder)
        for f in (target / folder).iterdir():
            f.chmod(0o644)
    return target


def change_one_template_character(pack: Path) -> None:
    """Qwen3's user header newline becomes a tab: one character of one chat template, nothing else."""
    config = pack / "Qwen--Qwen3-8B" / "tokenizer_config.json"
    raw = config.read_text("utf-8")
    assert raw.count(QWEN3_ROLE_NEWLINE) == 1
    config.write_text(raw.replace(QWEN3_ROLE_NEWLINE, QWEN3_ROLE_NEWLINE.replace("\\\\n", "\\\\t")), "utf-8")


def assert_report_current(spec: str, name: str) -> None:
    """The committed reports/NAME is what `cth check SPEC --markdown` makes now (bodies only: versions may move)."""
    from chat_template_harness.checking import check
    from chat_template_harness.contract.sample import Policy
    from chat_template_harness.external import load_callable
    from chat_template_harness.outputs import matrix, reportfile
    from chat_template_harness.outputs.report import check_markdown

    results = [check.check_cell(load_callable(spec), c) for c in matrix.cells()]
    committed = (Path(__file__).resolve().parents[1] / "reports" / name).read_text("utf-8")
    fresh = check_markdown(spec, results, Policy.ALL)
    assert reportfile.body(committed) == reportfile.body(fresh), f"regenerate: cth check {spec} --markdown reports/{name}"


def without_xdist_env() -> dict[str, str]:
    """The environment for a nested `pytest` subprocess: this one's, less what marks an xdist worker of the outer run."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
