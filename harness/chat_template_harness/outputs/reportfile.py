"""Generated report files: a provenance header that explains a difference, and a body that is compared.

Contract (the same as goldens): a generated Markdown report starts with an HTML comment that
holds its provenance, one `key: value` per line (the command that wrote it, the library versions
it was made with). Markdown viewers hide the comment. Only the body after it is compared, so a
new transformers or tokenizers release changes a report's header, never its verdict; where the
bodies do differ, the headers say what else changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import metadata

OPEN = "<!-- chat-template-harness report"
CLOSE = "-->"
LIBRARIES = ("transformers", "tokenizers", "jinja2")


def versions(extra: Sequence[str] = ()) -> dict[str, str]:
    """The versions that can change what a report says: the harness, the template stack, and `extra` packages."""
    from chat_template_harness import __version__

    found = {"chat-template-harness": __version__}
    for dist in (*LIBRARIES, *extra):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def with_header(body: str, fields: Mapping[str, str]) -> str:
    """The report file's text: the provenance comment, then the body."""
    lines = [OPEN, *(f"{key}: {value}" for key, value in fields.items()), CLOSE, ""]
    return "\n".join(lines) + body.lstrip("\n")


def split(text: str) -> tuple[dict[str, str], str]:
    """(header fields, body) of a report file; a file with no header is all body."""
    if not text.startswith(OPEN):
        return {}, text
    head, sep, body = text.partition("\n" + CLOSE + "\n")
    if not sep:
        return {}, text
    fields = {}
    for line in head.splitlines()[1:]:
        key, _, value = line.partition(": ")
        fields[key.strip()] = value.strip()
    return fields, body.lstrip("\n")


def body(text: str) -> str:
    return split(text)[1]


def header_changes(old: str, new: str) -> list[str]:
    """What the headers of two versions of a report say changed (to explain a body difference)."""
    before, after = split(old)[0], split(new)[0]
    return [
        f"{key}: {before.get(key, '(none)')} -> {after.get(key, '(none)')}"
        for key in dict.fromkeys([*before, *after])
        if before.get(key) != after.get(key)
    ]
