"""Test helpers that make deliberately wrong inputs (negative controls)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

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
    from chat_template_harness.cells.model import cells
    from chat_template_harness.contract.sample import Policy
    from chat_template_harness.external import load_callable
    from chat_template_harness.outputs import reportfile
    from chat_template_harness.outputs.report import check_markdown

    plugin = load_callable(spec)
    results = [check_cell(plugin, c) for c in cells()]
    committed = (Path(__file__).resolve().parents[1] / "reports" / name).read_text("utf-8")
    fresh = check_markdown(spec, results, Policy.ALL)
    assert reportfile.body(committed) == reportfile.body(fresh), f"regenerate: cth check {spec} --markdown reports/{name}"


def run_cell(cell: Any, tokenizers_dir: Any = None, **settings: Any) -> Any:
    """The one runner on one cell with these settings (tests are entry points: they build their Settings here)."""
    from chat_template_harness.cells.model import Settings
    from chat_template_harness.cells.run import run_cell as run

    return run(cell, Settings(tokenizers_dir=tokenizers_dir, **settings))


def check_cell(preprocessor: Any, cell: Any, tokenizers_dir: Any = None, **settings: Any) -> Any:
    """A preprocessor on one cell through the one runner (what `cth check` does per cell)."""
    from chat_template_harness.cells.model import Settings
    from chat_template_harness.cells.run import run_cell as run

    return run(cell, Settings(tokenizers_dir=tokenizers_dir, **settings), preprocessor)


def run_cells(cells: Any, tokenizers_dir: Any = None, **settings: Any) -> list[Any]:
    return [run_cell(c, tokenizers_dir, **settings) for c in cells]
