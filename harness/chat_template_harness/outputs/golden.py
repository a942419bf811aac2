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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata, resources
from pathlib import Path

from chat_template_harness import __version__
from chat_template_harness.contract.sample import Preprocessed, Sample
from chat_template_harness.contract.turns import Kind
from chat_template_harness.errors import HarnessError
from chat_template_harness.models.source import LoadedTokenizer
from chat_template_harness.outputs.matrix import Cell, CellResult, Status
from chat_template_harness.outputs.view import visible

MAGIC = "# chat-template-harness golden"
SEPARATOR = "---"
EXTENSION = "golden"
IDS_PER_LINE = 10
LINE_WIDTH = 120
# The modules whose code decides what a golden body says: a change here is "harness changed".
RULE_MODULES = (
    "contract/conversation.py", "models/rules/model.py", "contract/render.py", "contract/turns.py", "contract/sample.py",
    "contract/tokens.py", "outputs/golden.py", "outputs/view.py",
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
        for name, sha in sorted(loaded.observed.items()):
            fields[f"sha256 {name}"] = sha or "missing"
        fields["sha256 chat template"] = loaded.template_sha256
    versions = ", ".join(f"{k} {v}" for k, v in library_versions().items())
    fields["versions"] = f"{versions}, harness {__version__} (rules {rules_digest()[:12]})"
    return fields


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
        lines.append(f"{span.kind.value:<12} turn {span.turn}  [{span.first_token}, {span.end_token})  {mark:<11}  {_clip(text)!r}")
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
    return text if len(text) <= width else f"{text[:44]}…{text[-(width - 45):]}"


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
            f"turn {r.turn} (message {r.message_index}): {where}; served prompt {r.prompt_tokens} tokens; "
            f"template renders it: {r.template_render}"
        )
        lines += [f"  note: {n}" for n in r.notes]
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


def same_body(a: str, b: str) -> bool:
    return parse(a).body == parse(b).body


def explain(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """What changed between two headers, as causes: template, tokenizer file, library, harness."""
    causes = []
    old_server, new_server = old.get("served by", "transformers"), new.get("served by", "transformers")
    if old_server != new_server:
        causes.append(f"served by another server: {old_server} -> {new_server} (its served prompt, serving/profiles.py)")
    if old.get("sha256 chat template") != new.get("sha256 chat template"):
        causes.append(f"chat template changed (sha256 {_short(old.get('sha256 chat template'))} -> {_short(new.get('sha256 chat template'))})")
    files = sorted({k for k in (*old, *new) if k.startswith("sha256 ") and k != "sha256 chat template"})
    for key in files:
        if old.get(key) != new.get(key):
            causes.append(f"tokenizer file changed: {key.removeprefix('sha256 ')} ({_short(old.get(key))} -> {_short(new.get(key))})")
    old_versions, new_versions = _versions(old.get("versions", "")), _versions(new.get("versions", ""))
    for name in ("transformers", "tokenizers", "jinja2"):
        if old_versions.get(name) != new_versions.get(name):
            causes.append(f"library version changed: {name} {old_versions.get(name)} -> {new_versions.get(name)}")
    if old_versions.get("rules") != new_versions.get("rules") or old_versions.get("harness") != new_versions.get("harness"):
        causes.append(f"harness changed (rules {old_versions.get('rules')} -> {new_versions.get('rules')})")
    if old.get("hub") != new.get("hub"):
        causes.append(f"hub revision changed: {old.get('hub')} -> {new.get('hub')}")
    return causes


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
            "restore it with git checkout, or rewrite it with `nox -s update_goldens`",
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
    causes = explain(stored.header, parse(received).header) or ["no provenance change: the harness or its inputs changed"]
    return "golden differs: " + "; ".join(causes)
