"""build_samples' shortcuts give exactly what the exact paths give, on every cell of every built-in model, and each
has a case where it must not be taken (issue 35: the verified preprocessor as fast as the frameworks')."""

from __future__ import annotations

import pytest

from chat_template_harness.cells import model as cellmodel
from chat_template_harness.contract import conversation, sample, tokens
from chat_template_harness.contract.sample import CellNotApplicable, resolve_mode
from chat_template_harness.errors import HarnessError
from chat_template_harness.models import source
from chat_template_harness.models.rules import Think
from chat_template_harness.models.rules.registry import family_for

MODELS = list(source.builtin_registry())


def _cells(model: str):
    loaded = source.load(model)
    fam = family_for(loaded.spec, loaded.tokenizer)
    for cell in cellmodel.cells([model]):
        conv = conversation.load(cell.fixture)
        try:
            resolve_mode(fam, Think(cell.think), conv)
        except (CellNotApplicable, HarnessError):
            continue
        yield cell, loaded.tokenizer, conv, fam, Think(cell.think)


def _outcome(tok, conv, fam, think):
    try:
        return sample.preprocess(tok, conv, fam, think)
    except HarnessError as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("model", MODELS)
def test_the_segmented_build_equals_the_per_token_build_on_every_cell(model, monkeypatch):
    compared = 0
    for cell, tok, conv, fam, think in _cells(model):
        monkeypatch.setattr(sample, "SEGMENTED", True)
        fast = _outcome(tok, conv, fam, think)
        monkeypatch.setattr(sample, "SEGMENTED", False)
        exact = _outcome(tok, conv, fam, think)
        assert fast == exact, cell.id
        compared += 1
    assert compared > 0
