"""Rules files: one TOML file per family, read and written by the same code for built-ins and users.

The format (every key optional unless marked; defaults are the ChatML-like common case):

    name = "qwen3"                      # required: the family's short name
    title = "Qwen3 (hybrid thinking)"   # required: for reports
    stop_tokens = ["<|im_end|>"]        # required: what ends a generated turn (trained)
    trailer = "\\n"                      # written after the stop token, never generated
    reasoning_field = "reasoning_content"   # or "thinking", or "inline" (in content), or a content form
                                        # (typed blocks of content: data/reasoning_forms.toml, "blocks:thoughts")
    reasoning_strip = "\\n"              # characters the template strips from reasoning; "" for none
    tool_arguments = "object"           # or "json" (a JSON string)
    content_format = "string"           # or "parts": every content as a list of typed parts (text parts)
    tool_call_content = ""              # the content a tool-call turn needs; false for null
    template_shows_final_reasoning = false
    history = "..."                     # plain words for reports
    template_kwargs = { date_string = "26 Jul 2024" }   # pinned variables (dates)
    next_header = { reply = "<|user|>", tool_call = "<|observation|>" }   # a turn ends with the next header (GLM)
    reviewed = { reasoning_field = "why" }   # rules kept by hand where `cth derive` reads otherwise
    undecided = { stop_tokens = { code = "stop", question = "..." } }   # what no render proved: cells
                                        # needing it are UNDECIDED until the rule is written and its entry deleted

    [think.on]                          # and [think.off]; a mode is either a table of rules ...
    kwargs = { enable_thinking = true } # what a server passes in this mode
    system_flag = ""                    # or a flag appended to the system message (Nemotron's "/no_think")
    opener = ""                         # what the generation prompt opens (never trained)
    think = "<think>\\n{reasoning}\\n</think>\\n\\n"   # how generated reasoning is written; absent: not thinking
    empty_think = ""                    # written (never trained) when a thinking turn has no reasoning
    final_marker = ""                   # written at the head of a final turn, never generated
    before_answer = ""                  # what the model writes after a prompt's closed empty block, before its
                                        # answer, where no render shows it (trained; derive asks, never assumes "")
    unsupported = { tools = "why" }     # fixture feature -> why this mode cannot train it
    # ... or just the reason the cell cannot exist:
    # not_applicable = "no thinking mode: ..."
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import tomli_w

from chat_template_harness.errors import HarnessError
from chat_template_harness.models.rules import content
from chat_template_harness.models.rules.model import ANSWERS, Family, NotApplicable, ThinkMode, Undecided

_MODE_KEYS = {f.name for f in fields(ThinkMode)}
_FAMILY_KEYS = {f.name for f in fields(Family)} - {"on", "off"}
_REQUIRED = ("name", "title", "stop_tokens")
CONTENT_FORMATS = ("string", "parts")


class RulesError(HarnessError):
    """A rules file the harness cannot use."""


def _fix(where: str) -> str:
    return f"correct {where} (the format is in `cth derive --help`), or write it again with `cth derive MODEL --write FILE`"


def _mode(raw: Any, where: str) -> ThinkMode | NotApplicable:
    if not isinstance(raw, Mapping):
        raise RulesError(f"{where}: a think mode must be a table", _fix(where))
    if "not_applicable" in raw:
        if len(raw) != 1 or not isinstance(raw["not_applicable"], str):
            raise RulesError(f"{where}: `not_applicable` is a reason (text) and stands alone", _fix(where))
        return NotApplicable(raw["not_applicable"])
    unknown = set(raw) - _MODE_KEYS
    if unknown:
        raise RulesError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_MODE_KEYS)}", _fix(where))
    values = dict(raw)
    for key in ("kwargs", "unsupported"):
        values[key] = MappingProxyType(dict(values.get(key, {})))
    return ThinkMode(**values)


def family_from_mapping(raw: Mapping[str, Any], where: str) -> Family:
    """A Family from parsed TOML; every problem is one RulesError naming the file and the key."""
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise RulesError(f"{where}: missing {', '.join(missing)}", _fix(where))
    unknown = set(raw) - _FAMILY_KEYS - {"think"}
    if unknown:
        raise RulesError(
            f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_FAMILY_KEYS | {'think'})}", _fix(where)
        )
    think = raw.get("think", {})
    if not isinstance(think, Mapping) or set(think) != {"on", "off"}:
        raise RulesError(f"{where}: needs both [think.on] and [think.off]", _fix(where))
    values = {k: v for k, v in raw.items() if k != "think"}
    values["stop_tokens"] = tuple(values["stop_tokens"])
    if values.get("tool_call_content") is False:
        values["tool_call_content"] = None
    if values.get("reasoning_strip") == "":
        values["reasoning_strip"] = None
    for key in ("template_kwargs", "reviewed", "next_header"):
        values[key] = MappingProxyType(dict(values.get(key, {})))
    values["undecided"] = _undecided(values.get("undecided", {}), where)
    field_ = values.get("reasoning_field", "")
    if isinstance(field_, str) and ":" in field_ and content.form(field_) is None:  # no message field has a colon
        raise RulesError(
            f"{where}: reasoning_field {field_!r} is no content form of data/reasoning_forms.toml "
            f"(known: {', '.join(content.forms())})",
            _fix(where),
        )
    if values.get("content_format", "string") not in CONTENT_FORMATS:
        raise RulesError(
            f"{where}: content_format {values['content_format']!r} is none of {', '.join(CONTENT_FORMATS)}", _fix(where)
        )
    header = values["next_header"]
    if header and (
        set(header) - {"reply", "tool_call"}
        or "reply" not in header
        or any(h not in values["stop_tokens"] for h in header.values())
    ):
        raise RulesError(
            f"{where}: next_header needs `reply` (and may have `tool_call`), each one of stop_tokens", _fix(where)
        )
    try:
        return Family(
            on=_mode(think["on"], f"{where} [think.on]"), off=_mode(think["off"], f"{where} [think.off]"), **values
        )
    except TypeError as exc:
        raise RulesError(f"{where}: {exc}", _fix(where)) from None


def _undecided(raw: Any, where: str) -> tuple[Undecided, ...]:
    """`undecided = { RULE = { code = ..., question = ... } }`: what derivation could not prove."""
    if not isinstance(raw, Mapping) or not all(
        isinstance(v, Mapping) and set(v) == {"code", "question"} and v["code"] in ANSWERS for v in raw.values()
    ):
        raise RulesError(
            f'{where}: `undecided` maps a rule to {{ code = one of {sorted(ANSWERS)}, question = "..." }}', _fix(where)
        )
    return tuple(Undecided(rule, v["code"], v["question"]) for rule, v in raw.items())


def read(path: Path | str) -> Family:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise RulesError(
            f"no rules file {path}", "check the path, or write one with `cth derive MODEL --write FILE`"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path} is not valid TOML ({exc})", _fix(str(path))) from None
    return family_from_mapping(raw, str(path))


def _mode_table(mode: ThinkMode | NotApplicable) -> dict[str, Any]:
    if isinstance(mode, NotApplicable):
        return {"not_applicable": mode.reason}
    default = ThinkMode()
    table: dict[str, Any] = {}
    for f in fields(ThinkMode):
        value = getattr(mode, f.name)
        if value != getattr(default, f.name):
            table[f.name] = dict(value) if isinstance(value, Mapping) else value
    return table


def to_mapping(family: Family) -> dict[str, Any]:
    """The TOML table of a Family: defaults left out, so a file says only what is particular."""
    default = Family(name="", title="", stop_tokens=(), on=ThinkMode(), off=ThinkMode())
    out: dict[str, Any] = {"name": family.name, "title": family.title, "stop_tokens": list(family.stop_tokens)}
    for f in fields(Family):
        if f.name in ("name", "title", "stop_tokens", "on", "off"):
            continue
        value = getattr(family, f.name)
        if value == getattr(default, f.name):
            continue
        if f.name == "tool_call_content" and value is None:
            value = False
        elif f.name == "reasoning_strip" and value is None:
            value = ""
        elif f.name == "undecided":
            value = {u.rule: {"code": u.code, "question": u.question} for u in value}
        out[f.name] = dict(value) if isinstance(value, Mapping) else value
    out["think"] = {"on": _mode_table(family.on), "off": _mode_table(family.off)}
    return out


def dumps(family: Family, header: str = "") -> str:
    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return comment + ("\n" if comment else "") + tomli_w.dumps(to_mapping(family))


def write(family: Family, path: Path | str, header: str = "") -> None:
    Path(path).write_text(dumps(family, header), "utf-8")
