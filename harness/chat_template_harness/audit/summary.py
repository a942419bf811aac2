"""The audit's summary: counts per reason, kind and invariant, with example row numbers; table, JSON, Markdown.

JSON schema (`--json FILE`), version 1:
{"schema": 1, "source", "model", "think", "policy", "callable" (MODULE:CALLABLE, or null),
 "rows": {"total", "usable", "rejected", "not_applicable"},
 "rejected": {reason: {"rows": n, "examples": [{"row", "detail"}]}},
 "reference": {"samples", "tokens": {kind: n}, "rows_with_reasoning_dropped",
               "rows_violating": n},
 "preprocessor": {"rows_checked", "rows_wrong", "rows_errored", "rows_unsupported",
                  "violations": {invariant number: rows}, "wrong_tokens": {kind: n},
                  "wrong_tokens_rows": {kind: rows}, "worst": [{"row", "wrong_tokens", "detail"}]} or null,
 "sample": {"plan", "seed", "rows", "population",
            "estimates": {rate: {"rows", "of", "rate", "low", "high"}}} or null (a full audit)}
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chat_template_harness.audit.row import Job, RowOutcome
from chat_template_harness.audit.sampling import Plan, wilson
from chat_template_harness.contract.invariants import Invariant

EXAMPLES = 5
WORST = 10
TITLES = {str(i.number): i.title for i in Invariant} | {"error": "the preprocessor raised"}
# what a wrongly trained token is, in words (token_roles' kinds)
WRONG = {
    "empty_think": "empty think block",
    "injected": "template-injected text (role header, opener, text after the stop token)",
    "prompt": "text not after its served prompt (a reply after a history the server never sends, or prompt text)",
}


def code_span(text: str) -> str:
    """`text` as a Markdown code span, so `</think>` and `<|im_end|>` show as written (outside one, Markdown reads
    them as HTML, and GitHub and rich drop them); the fence is one backtick longer than any run inside."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def tags_as_code(text: str) -> str:
    """Prose with every `<tag>`-like run (`<think>`, `<|im_end|>`) as a code span, so Markdown keeps it."""
    return re.sub(r"<[^<>\s]+>", lambda m: code_span(m.group()), text)


@dataclass
class Summary:
    job: Job
    source: str
    total: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    samples: int = 0
    tokens: Counter[str] = field(default_factory=Counter)
    reasoning_dropped: int = 0
    reference_violating: int = 0
    checked: int = 0
    wrong_rows: int = 0
    errored: int = 0
    unsupported: int = 0
    violations: Counter[str] = field(default_factory=Counter)
    wrong_tokens: Counter[str] = field(default_factory=Counter)
    wrong_token_rows: Counter[str] = field(default_factory=Counter)
    worst: list[tuple[int, int, str]] = field(default_factory=list)  # heap of (wrong tokens, -row, detail)
    plan: Plan | None = None  # a statistical audit: the rows are a random sample of the dataset's
    population: int = 0  # rows in the dataset, for a sampled audit

    def add(self, out: RowOutcome) -> None:
        self.total += 1
        if out.rejected:
            self.rejected[out.rejected] += 1
            examples = self.examples.setdefault(out.rejected, [])
            if len(examples) < EXAMPLES:
                examples.append((out.row, out.detail))
            return
        self.samples += out.samples
        self.tokens.update(out.tokens)
        self.reasoning_dropped += out.reasoning_dropped
        self.reference_violating += bool(out.reference_violations)
        if self.job.preprocessor is None:
            return
        if out.preprocessor_error.startswith("unsupported"):
            self.unsupported += 1
            return
        self.checked += 1
        self.errored += bool(out.preprocessor_error)
        if out.violations:
            self.wrong_rows += 1
            self.violations.update({k: 1 for k in out.violations})
            self.wrong_tokens.update(out.wrong_tokens)
            self.wrong_token_rows.update({k: 1 for k in out.wrong_tokens})
            entry = (sum(out.wrong_tokens.values()), -out.row, out.preprocessor_error or out.detail)
            (heapq.heappush if len(self.worst) < WORST else heapq.heappushpop)(self.worst, entry)

    @property
    def not_applicable(self) -> int:
        return self.rejected.get("not applicable to this model and mode", 0)

    @property
    def undecided(self) -> int:
        """Rows that need a rule no render proves (never trained on a guess): they fail the run unless allowed."""
        from chat_template_harness.audit.row import UNDECIDED_ROWS

        return self.rejected.get(UNDECIDED_ROWS, 0)

    @property
    def usable(self) -> int:
        return self.total - sum(self.rejected.values())

    @property
    def failed(self) -> bool:
        return self.wrong_rows > 0 or self.reference_violating > 0

    def to_json(self) -> dict[str, Any]:
        s = self.job
        preprocessor = None
        if s.preprocessor:
            preprocessor = {
                "rows_checked": self.checked,
                "rows_wrong": self.wrong_rows,
                "rows_errored": self.errored,
                "rows_unsupported": self.unsupported,
                "violations": dict(sorted(self.violations.items())),
                "wrong_tokens": dict(self.wrong_tokens),
                "wrong_tokens_rows": dict(self.wrong_token_rows),
                "worst": [{"row": -r, "wrong_tokens": n, "detail": d} for n, r, d in sorted(self.worst, reverse=True)],
            }
        return {
            "schema": 1,
            "source": self.source,
            "model": s.model,
            "think": s.think,
            "policy": s.policy,
            "callable": s.preprocessor,
            "served_by": s.settings.served_by,
            "rows": {
                "total": self.total,
                "usable": self.usable,
                "rejected": sum(self.rejected.values()),
                "not_applicable": self.not_applicable,
            },
            "rejected": {
                k: {"rows": n, "examples": [{"row": r, "detail": d} for r, d in sorted(self.examples[k])]}
                for k, n in self.rejected.most_common()
            },
            "reference": {
                "samples": self.samples,
                "tokens": dict(self.tokens),
                "rows_with_reasoning_dropped": self.reasoning_dropped,
                "rows_violating": self.reference_violating,
            },
            "preprocessor": preprocessor,
            "sample": self._sample_json(),
        }

    def rates(self) -> dict[str, tuple[int, int]]:
        """Each rate the report gives, as (rows with it, rows it is out of)."""
        out = {
            "rejected": (sum(self.rejected.values()), self.total),
            "reference_violating": (self.reference_violating, self.usable),
            "reasoning_dropped": (self.reasoning_dropped, self.usable),
        }
        if self.job.preprocessor:
            out["preprocessor_wrong"] = (self.wrong_rows, self.checked)
            out["preprocessor_errored"] = (self.errored, self.checked)
            out |= {f"invariant_{k}": (n, self.checked) for k, n in sorted(self.violations.items())}
            out |= {f"trains_{k}": (n, self.checked) for k, n in sorted(self.wrong_token_rows.items())}
        return out

    def _sample_json(self) -> dict[str, Any] | None:
        if self.plan is None:
            return None
        estimates = {}
        for name, (hits, n) in self.rates().items():
            low, high = wilson(hits, n)
            estimates[name] = {"rows": hits, "of": n, "rate": hits / n if n else 0.0, "low": low, "high": high}
        return {
            "plan": self.plan.describe(),
            "seed": self.plan.seed,
            "rows": self.total,
            "population": self.population,
            "estimates": estimates,
        }

    def lines(self) -> list[str]:
        """The report as Markdown lines (the terminal shows the same, through rich)."""
        j, s = self.to_json(), self.job
        rows = j["rows"]
        out = [
            f"## cth audit: `{self.source}` with `{s.model}` think-{s.think}"
            + (f", served by {s.settings.served_by}" if s.settings.served_by != "transformers" else ""),
            "",
            f"{rows['total']} rows: {rows['usable']} usable, {rows['rejected']} rejected.",
            "",
        ]
        if j["sample"]:
            out += self._sample_lines(j["sample"])
        if self.rejected:
            out += ["| rejected because | rows | example rows |", "|---|---|---|"]
            for reason, info in j["rejected"].items():
                rows_ = ", ".join(str(e["row"]) for e in info["examples"])
                out.append(f"| {tags_as_code(reason)} | {info['rows']} | {rows_} |")
            out.append("")
        ref = j["reference"]
        usable = max(self.usable, 1)
        out += [
            f"What a correct preprocessor trains (policy `{s.policy}`): {ref['samples']} samples "
            f"({ref['samples'] / usable:.2f} per conversation).",
            "",
            "| token kind | tokens | trained |",
            "|---|---|---|",
        ]
        for kind in ("prompt", "injected", "empty_think", "reasoning", "content", "stop"):
            trained = "yes" if kind in ("reasoning", "content", "stop") else "no"
            out.append(f"| {kind} | {self.tokens.get(kind, 0):,} | {trained} |")
        out += [
            "",
            f"Reasoning dropped in {self.reasoning_dropped} rows: the data's reasoning is not trained (the mode does "
            f"not think, or its generation prompt opens no think block); rows where the reference itself breaks the "
            f"contract (a harness bug): {self.reference_violating}.",
            "",
        ]
        if s.preprocessor:
            out += self._preprocessor_lines(j["preprocessor"])
        return out

    @staticmethod
    def _sample_lines(sample: dict[str, Any]) -> list[str]:
        out = [
            f"**These figures are estimates**: a random sample of {sample['rows']:,} of the dataset's "
            f"{sample['population']:,} rows ({sample['plan']}, seed {sample['seed']}); row numbers are the dataset's. "
            "Each rate with its 95% confidence interval (Wilson):",
            "",
            "| rate | rows | estimate | 95% interval |",
            "|---|---|---|---|",
        ]
        for name, e in sample["estimates"].items():
            out.append(
                f"| {name.replace('_', ' ')} | {e['rows']} of {e['of']} | {e['rate']:.2%} | "
                f"{e['low']:.2%} – {e['high']:.2%} |"
            )
        return [*out, ""]

    def _preprocessor_lines(self, p: dict[str, Any]) -> list[str]:
        checked = max(p["rows_checked"], 1)
        out = [
            f"### `{self.job.preprocessor}`",
            "",
            f"{p['rows_wrong']} of {p['rows_checked']} rows break the contract ({p['rows_wrong'] / checked:.0%}); "
            f"{p['rows_errored']} raised; {p['rows_unsupported']} unsupported.",
            "",
            "| invariant | rows |",
            "|---|---|",
            *(f"| {k} {TITLES.get(k, '')} | {n} |" for k, n in p["violations"].items()),
            "",
        ]
        if p["wrong_tokens"]:
            out += ["| trained, never generated | tokens | rows |", "|---|---|---|"]
            for kind, n in sorted(p["wrong_tokens"].items(), key=lambda kv: -kv[1]):
                rows = p["wrong_tokens_rows"][kind]
                out.append(f"| {WRONG.get(kind, kind)} | {n:,} | {rows} ({rows / checked:.0%}) |")
            out.append("")
        if p["worst"]:
            out += ["Worst rows (most wrongly trained tokens):", ""]
            out += [f"- row {w['row']}: {w['wrong_tokens']} tokens; {code_span(w['detail'])}" for w in p["worst"]]
            out.append("")
        return out

    def markdown(self) -> str:
        return "\n".join(self.lines()) + "\n"
