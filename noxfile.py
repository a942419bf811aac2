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
# The newest 4.x and the newest 5.x: the upgrade matrix (tox.ini has the same factors).
TRANSFORMERS = {"tf4": "transformers==4.57.6", "tf5": "transformers>=5,<6"}


def _env(session: nox.Session) -> dict[str, str]:
    pack = os.environ.get("CTH_TOKENIZERS_DIR", str(ROOT.parent / "shared" / "tokenizers"))
    return {"CTH_TOKENIZERS_DIR": pack}


def _install(session: nox.Session, extras: str, *pins: str) -> None:
    if "train" in extras:
        session.install(TORCH)
    session.install("-e", f".[{extras}]", *pins)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (all cells, invariants, goldens, smoke step on CPU)."""
    _install(session, "test,train")
    session.run("pytest", *session.posargs, env=_env(session))


@nox.session(default=False)
@nox.parametrize("transformers", list(TRANSFORMERS), ids=list(TRANSFORMERS))
def upgrade(session: nox.Session, transformers: str) -> None:
    """Under the newest transformers 4.x / 5.x: the suite (no torch) and the report reports/upgrade-<tf>.md."""
    _install(session, "test", TRANSFORMERS[transformers])
    session.run("pytest", "-m", "not smoke and not torch and not trl and not browser", *session.posargs, env=_env(session))
    report = ROOT / "reports" / f"upgrade-{transformers}.md"
    # exit 1 means some cell differs: the report says which and why, so the session carries on
    session.run("cth", "diff", "--markdown", str(report), env=_env(session), success_codes=[0, 1])
    session.log(f"wrote {report}")


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Regenerate docs/templates.md and build the gallery into site/ (open site/index.html)."""
    _install(session, "test")
    session.run("cth", "gallery", "--out", "site", "--markdown", "docs/templates.md", env=_env(session))


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
    """Print the benchmark figures: full matrix run vs bare tokenizer loads, smoke step per family."""
    _install(session, "test,train")
    session.run("python", "-m", "harness.bench", *session.posargs, env=_env(session))


@nox.session(default=False)
def smoke(session: nox.Session) -> None:
    """Smoke training step for every family (CUDA bf16 if present, else CPU), with the naive control."""
    _install(session, "test,train")
    session.run("pytest", "-m", "smoke", *session.posargs, env=_env(session))
