"""Golden files: one readable text file per cell, `goldens/<model>/think-<on|off>/<fixture>.golden`.

Format (produced here, never edited by hand; written only through `nox -s update_goldens`):

    # chat-template-harness golden
    # cell: qwen3-8b/think-off/single_turn
    # hub: Qwen/Qwen3-8B@b968826d9c46dd6066d109eabc6255188de91218
    # sha256 tokenizer_config.json: d5d09f07…        (one line per pinned file)
    # sha256 chat template: 3f1c…
    # versions: transformers 5.23.0, tokenizers 0.23.3, jinja2 3.1.6, harness 0.1.0 (rules 9a8b…)
    ---
    <body>

Only the body is compared. The header says where a body came from, so that a diff can be
explained: chat template changed, tokenizer file changed, library version changed, harness changed.
The body holds, per sample: the text with trained spans in ⟦…⟧ and untrained template
injections in ⟪…⟫ (whitespace visible: ↵ newline, · space, ⇥ tab), the spans with their token
ranges and text, the ids ten to a line with trained ones in [brackets]; then the turn report.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata, resources
from pathlib import Path

from chat_template_harness import __version__
from chat_template_harness.cells.model import Cell, CellResult, Status
from chat_template_harness.contract.sample import Preprocessed, Sample
from chat_template_harness.contract.turns import Kind
from chat_template_harness.errors import HarnessError
from chat_template_harness.models.source import LoadedTokenizer
from chat_template_harness.outputs.view import visible


def refuse_writing_under_ci(fix: str) -> None:
    """Goldens are never written when CI is set (every writer calls this first): one error naming the local command."""
    if os.environ.get("CI"):
        raise HarnessError("goldens are never written when CI is set", fix)


MAGIC = "# chat-template-harness golden"
SEPARATOR = "---"
EXTENSION = "golden"
IDS_PER_LINE = 10
LINE_WIDTH = 120
# The modules whose code decides what a golden body says: a change here is "harness changed".
RULE_MODULES = (
    "contract/conversation.py",
    "models/rules/model.py",
    "contract/render.py",
    "contract/turns.py",
    "contract/sample.py",
    "contract/tokens.py",
    "outputs/golden.py",
    "outputs/view.py",
)


def path_for(root: Path, cell: Cell) -> Path:
    return root / cell.model / f"think-{cell.think}" / f"{cell.fixture}.{EXTENSION}"


@cache
def rules_digest() -> str:
    digest = hashlib.sha256()
    package = resources.files("chat_template_harness")
    for name in RULE_MODULES:
        digest.update(package.joinpath(name).read_bytes())
    # the built-in rules files are what the rules say
    for path in sorted(package.joinpath("models/rules/builtin").iterdir(), key=lambda p: p.name):
        digest.update(path.read_bytes())
    return digest.hexdigest()


@cache
def library_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ("transformers", "tokenizers", "jinja2")}


def header(cell: Cell, loaded: LoadedTokenizer | None, served_by: str = "transformers") -> dict[str, str]:
    """Metadata lines (key -> value). N/A cells have no tokenizer provenance. The goldens are transformers'
    served prompts; samples replayed on another server's prompt say so (`served by`)."""
    fields = {"cell": cell.id}
    if served_by != "transformers":
        fields["served by"] = served_by
    if loaded is not None:
        spec = loaded.spec
        fields["hub"] = f"{spec.hub_repo}@{spec.revision or 'unpinned'}"
        fields.update(loaded.provenance)  # a packaged model: the package, a rebuilt file, the template's source
        for name, sha in sorted(loaded.observed.items()):
            fields[f"sha256 {name}"] = sha or "missing"
        fields["sha256 chat template"] = loaded.template_sha256
    fields["versions"] = versions_line()
    return fields


def versions_line(libraries: Mapping[str, str] | None = None) -> str:
    """The header's `versions` value: the libraries (these, or the installed ones), the harness and its rules digest."""
    versions = ", ".join(f"{k} {v}" for k, v in (libraries or library_versions()).items())
    return f"{versions}, harness {__version__} (rules {rules_digest()[:12]})"


def stale_headers(root: Path, expected: str) -> dict[str, list[Path]]:
    """The goldens under `root` whose header records other versions than `expected`, by what they record."""
    stale: dict[str, list[Path]] = {}
    for path in sorted(root.rglob(f"*.{EXTENSION}")):
        recorded = parse(read(path)).header.get("versions", "(none)")
        if recorded != expected:
            stale.setdefault(recorded, []).append(path)
    return stale


def render(result: CellResult) -> str:
    """The whole golden file for a cell result."""
    head = [MAGIC, *(f"# {k}: {v}" for k, v in header(result.cell, result.loaded, result.served_by).items()), SEPARATOR]
    return "\n".join(head) + "\n" + body(result)


def body(result: CellResult) -> str:
    if result.status is Status.NA:
        return f"N/A: {result.reason}\n"
    if result.status is Status.UNDECIDED:  # no sample is made from a guessed rule: the golden says which rule
        return f"UNDECIDED: {result.reason}\n"
    assert result.result is not None
    out: list[str] = []
    for index, sample in enumerate(result.result.samples):
        out += _sample_lines(index, sample)
    out += _turn_lines(result.result)
    return "\n".join(out) + "\n"


def _sample_lines(index: int, sample: Sample) -> list[str]:
    trained = sum(sample.loss_mask)
    turns = ", ".join(str(t) for t in sample.turns)
    lines = [
        f"=== sample {index}: trains turn {turns}; {len(sample.input_ids)} tokens, {trained} trained",
        "--- text (⟦trained⟧ ⟪injected, not trained⟫ ↵ newline · space ⇥ tab; ┆ continues a long line)",
    ]
    lines += [part for line in marked_text(sample).split("\n") for part in _wrap(line)]
    lines.append("--- spans (kind, turn, tokens [start, end), text)")
    for span in sample.spans:
        if span.kind is Kind.PROMPT:
            continue
        mark = "trained" if span.kind.trained else "not trained"
        text = visible(sample.text[span.start : span.end]).replace("\n", "")
        lines.append(
            f"{span.kind.value:<12} turn {span.turn}  [{span.first_token}, {span.end_token})  {mark:<11}  {_clip(text)!r}"
        )
    lines.append("--- ids ([trained])")
    lines += _id_lines(sample.input_ids, sample.loss_mask)
    return lines


def marked_text(sample: Sample) -> str:
    """The sample text, whitespace visible, trained runs in ⟦…⟧ and injected runs in ⟪…⟫."""
    out, open_mark = [], ""
    for span in sample.spans:
        mark = "⟦" if span.kind.trained else "⟪" if span.kind in (Kind.INJECTED, Kind.EMPTY_THINK) else ""
        if mark != open_mark:
            out.append({"⟦": "⟧", "⟪": "⟫", "": ""}[open_mark] + mark)
            open_mark = mark
        out.append(visible(sample.text[span.start : span.end]))
    out.append({"⟦": "⟧", "⟪": "⟫", "": ""}[open_mark])
    return "".join(out)


def _wrap(line: str) -> list[str]:
    if len(line) <= LINE_WIDTH:
        return [line]
    parts = [line[i : i + LINE_WIDTH] for i in range(0, len(line), LINE_WIDTH)]
    return [parts[0], *(f"┆{p}" for p in parts[1:])]


def _clip(text: str, width: int = 72) -> str:
    return text if len(text) <= width else f"{text[:44]}…{text[-(width - 45) :]}"


def _id_lines(ids: Iterable[int], mask: Iterable[int]) -> list[str]:
    cells = [f"[{i}]" if m else str(i) for i, m in zip(ids, mask, strict=True)]
    width = len(str(len(cells)))
    return [
        f"{start:>{width}}: " + " ".join(cells[start : start + IDS_PER_LINE])
        for start in range(0, len(cells), IDS_PER_LINE)
    ]


def _turn_lines(result: Preprocessed) -> list[str]:
    lines = ["=== turns"]
    for r in result.report:
        where = f"sample {r.sample}" + (" (shared)" if r.shared else "") if r.sample >= 0 else "not trained (policy)"
        lines.append(
            f"turn {r.turn} (message {r.message_index}): {where}; "
            + (f"served prompt {r.prompt_tokens} tokens; " if r.prompt_tokens >= 0 else "")
            + f"template renders it: {r.template_render}"
        )
        lines += [f"  note: {n.text}" for n in r.notes]
        if r.split_reason:
            lines.append(f"  split: {r.split_reason}")
    return lines


# --- reading and comparing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Golden:
    header: Mapping[str, str]
    body: str


def parse(text: str) -> Golden:
    head, sep, rest = text.partition(f"\n{SEPARATOR}\n")
    if not sep or not head.startswith(MAGIC):
        return Golden({}, text)
    fields = {}
    for line in head.splitlines()[1:]:
        key, _, value = line.removeprefix("# ").partition(": ")
        fields[key] = value
    return Golden(fields, rest)


@dataclass(frozen=True)
class GoldenSample:
    ids: tuple[int, ...]
    mask: tuple[int, ...]


def parse_samples(body: str) -> list[GoldenSample]:
    """The ids and loss mask of each sample, read back from a body's `--- ids` sections."""
    samples: list[GoldenSample] = []
    ids: list[int] = []
    mask: list[int] = []
    reading = False
    for line in body.splitlines():
        if line.startswith("--- ids"):
            reading, ids, mask = True, [], []
            continue
        if reading and (line.startswith("===") or line.startswith("---")):
            samples.append(GoldenSample(tuple(ids), tuple(mask)))
            reading = False
        if reading:
            for cell in line.partition(": ")[2].split():
                trained = cell.startswith("[")
                ids.append(int(cell.strip("[]")))
                mask.append(int(trained))
    if reading:
        samples.append(GoldenSample(tuple(ids), tuple(mask)))
    return samples


def span_kinds(body: str) -> Counter[str]:
    """How many spans of each kind a body lists (its `--- spans` sections: the kind is a line's first word)."""
    kinds: Counter[str] = Counter()
    reading = False
    for line in body.splitlines():
        if line.startswith(("---", "===")):
            reading = line.startswith("--- spans")
        elif reading and line.strip():
            kinds[line.split()[0]] += 1
    return kinds


def same_body(a: str, b: str) -> bool:
    return parse(a).body == parse(b).body


# The tokenizer files that may hold the chat template: a change in one of them beside a changed template hash is the
# template change itself, named once (the header cannot tell whether the file changed in anything else too).
TEMPLATE_FILES = ("tokenizer_config.json", "chat_template.jinja", "chat_template.json")


@dataclass(frozen=True)
class Cause:
    """Why a golden's body may differ, read off the two headers: `code` for counting, `text` for people."""

    code: str  # "server", "template", "tokenizer_file", "library", "harness", "hub"
    headline: str  # what a summary counts it as: the text without its detail
    text: str


def causes(old: Mapping[str, str], new: Mapping[str, str]) -> list[Cause]:
    """What changed between two headers, each cause once: server, template, tokenizer file, library, harness, hub."""
    found = []
    old_server, new_server = old.get("served by", "transformers"), new.get("served by", "transformers")
    if old_server != new_server:
        found.append(
            Cause(
                "server",
                "served by another server",
                f"served by another server: {old_server} -> {new_server} (its served prompt, serving/profiles.py)",
            )
        )
    template = "sha256 chat template"
    files = sorted({k for k in (*old, *new) if k.startswith("sha256 ") and k != template and old.get(k) != new.get(k)})
    if old.get(template) != new.get(template):
        holders = [k.removeprefix("sha256 ") for k in files if k.removeprefix("sha256 ") in TEMPLATE_FILES]
        files = [k for k in files if k.removeprefix("sha256 ") not in holders]
        where = f"; {', '.join(holders)} changed with it" if holders else ""
        found.append(
            Cause(
                "template",
                "chat template changed",
                f"chat template changed (sha256 {_short(old.get(template))} -> {_short(new.get(template))}{where})",
            )
        )
    for key in files:
        found.append(
            Cause(
                "tokenizer_file",
                "tokenizer file changed",
                f"tokenizer file changed: {key.removeprefix('sha256 ')} ({_short(old.get(key))} -> {_short(new.get(key))})",
            )
        )
    old_versions, new_versions = _versions(old.get("versions", "")), _versions(new.get("versions", ""))
    for name in ("transformers", "tokenizers", "jinja2"):
        if old_versions.get(name) != new_versions.get(name):
            found.append(
                Cause(
                    "library",
                    "library version changed",
                    f"library version changed: {name} {old_versions.get(name)} -> {new_versions.get(name)}",
                )
            )
    if old_versions.get("rules") != new_versions.get("rules") or old_versions.get("harness") != new_versions.get(
        "harness"
    ):
        found.append(
            Cause(
                "harness",
                "harness changed",
                f"harness changed (rules {old_versions.get('rules')} -> {new_versions.get('rules')})",
            )
        )
    if old.get("hub") != new.get("hub"):
        found.append(
            Cause("hub", "hub revision changed", f"hub revision changed: {old.get('hub')} -> {new.get('hub')}")
        )
    return found


def explain(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """What changed between two headers, as sentences (`causes`)."""
    return [c.text for c in causes(old, new)]


def _versions(line: str) -> dict[str, str]:
    out = {}
    for part in line.replace("(", ", ").replace(")", "").split(", "):
        name, _, version = part.strip().partition(" ")
        if name:
            out[name] = version
    return out


def _short(value: str | None) -> str:
    return (value or "none")[:12]


def read(path: Path) -> str:
    """A golden file's text; one that is not UTF-8 is a clear error, not a traceback."""
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise HarnessError(
            f"golden {path} is not valid UTF-8 (byte {exc.start}): it was edited by hand or damaged",
            "restore it with git checkout, or write it again with the update that made it (`pytest --snapshot-update`, "
            "`pytest -m cth --cth-update-goldens`, `cth matrix --update-goldens`)",
        ) from None


def check(result: CellResult, root: Path) -> str | None:
    """None when the committed golden's body matches this result; otherwise why not."""
    path = path_for(root, result.cell)
    if not path.is_file():
        return f"no golden at {path}"
    stored = parse(read(path))
    received = render(result)
    if stored.body == parse(received).body:
        return None
    causes = explain(stored.header, parse(received).header) or [
        "no provenance change: the harness or its inputs changed"
    ]
    return "golden differs: " + "; ".join(causes)
