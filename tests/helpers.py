"""Test helpers that make deliberately wrong inputs (negative controls)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

# In Qwen3's template, the newline after a user/system role header: `'<|im_start|>' + message.role + '\n' + content`.
QWEN3_ROLE_NEWLINE = "message.role + '\\\\n' + content + '<|im_end|>'"


def fixture_json(name: str) -> dict[str, Any]:
    """A built-in fixture as the JSON a user's dataset holds (a fresh copy each call)."""
    import json
    from importlib import resources

    text = resources.files("chat_template_harness").joinpath(f"data/fixtures/{name}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


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


def pack_with_template(tmp_path: Path, pack_dir: Path, folder: str, *edits: tuple[str, str]) -> Path:
    """The pack with each (old, new) edit made (each `old` found exactly once) in one folder's chat template; the
    other folders linked.

    The template is edited where it lives: chat_template.jinja where the folder has one, else the
    `chat_template` of tokenizer_config.json (rewritten as JSON: its sha256 changes as a real revision's would).
    """
    import json

    pack = writable_pack(tmp_path, pack_dir, [folder])
    for other in pack_dir.iterdir():
        if other.is_dir() and not (pack / other.name).exists():
            (pack / other.name).symlink_to(other)

    def edited(text: str) -> str:
        for old, new in edits:
            assert text.count(old) == 1, (folder, old)
            text = text.replace(old, new)
        return text

    jinja = pack / folder / "chat_template.jinja"
    if jinja.is_file():
        jinja.write_text(edited(jinja.read_text("utf-8")), "utf-8")
        return pack
    config_path = pack / folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text("utf-8"))
    config["chat_template"] = edited(config["chat_template"])
    config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2), "utf-8")
    return pack


def assert_report_current(spec: str, name: str) -> None:
    """The committed reports/NAME is what `cth check SPEC --markdown` makes now (bodies only: versions may move)."""
    from chat_template_harness.cells.model import cells
    from chat_template_harness.contract.sample import Policy
    from chat_template_harness.external import load_callable
    from chat_template_harness.outputs import reportfile
    from chat_template_harness.outputs.report import check_markdown

    preprocessor = load_callable(spec)
    results = [check_cell(preprocessor, c) for c in cells()]
    committed = (Path(__file__).resolve().parents[1] / "reports" / name).read_text("utf-8")
    fresh = check_markdown(spec, results, Policy.ALL)
    assert reportfile.body(committed) == reportfile.body(fresh), (
        f"header changes: {reportfile.header_changes(committed, fresh)}; regenerate: cth check {spec} --markdown reports/{name}"
    )


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


def without_xdist_env() -> dict[str, str]:
    """The environment for a nested `pytest` subprocess: this one's, less what marks an xdist worker of the outer run."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
