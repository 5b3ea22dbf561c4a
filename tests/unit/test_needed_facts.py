"""A command reads from the database only the facts its stage's rules declare they read."""

import pytest

import domain.rules  # noqa: F401  (registers rules)
from domain.adapters.definitions import check_files, definition_files
from domain.config import PROJECT_ROOT
from domain.engine.evaluation import needed_facts
from domain.rules.registry import GATHERED_FACTS, RULES, rule
from domain.workflow import Definition

SHIPPED = {p.stem: p for p in definition_files(PROJECT_ROOT / "workflow_defs")}


def _definition(policy: str) -> Definition:
    loaded, problems = check_files([SHIPPED[policy]])
    assert problems == []
    return loaded[0].definition


def test_every_builtin_rule_declares_the_gathered_facts_it_reads() -> None:
    for spec in RULES.values():
        assert spec.facts is not None, spec.name
        assert spec.facts <= GATHERED_FACTS, spec.name


def test_declaring_an_unknown_fact_is_refused_at_registration() -> None:
    with pytest.raises(RuntimeError, match="unknown facts"):
        rule("test_only_bad_facts", code="X", facts=("history", "shoe_size"))
    assert "test_only_bad_facts" not in RULES


def test_a_payment_reads_no_gathered_fact_and_an_approval_only_what_its_rules_use() -> None:
    housing = _definition("housing")
    sub = next(iter(housing.subtypes))
    assert needed_facts(housing, sub, frozenset({"payment"})) == frozenset()
    approval = needed_facts(housing, sub, frozenset({"approval"}))
    # frequency/amount caps, unique claim and document reuse run again before each approval …
    assert {"history", "taken_claim_keys", "reused_documents"} <= approval
    # … the duplicate-person check (intake only) and the unit quota (no campaign rule) do not.
    assert "duplicate_persons" not in approval
    assert "quota_used" not in approval
    assert "duplicate_persons" in needed_facts(housing, sub, frozenset({"intake"}))


def test_the_selection_follows_the_definition_not_the_policy_name() -> None:
    illness = _definition("illness")
    for sub in illness.subtypes:
        approval = needed_facts(illness, sub, frozenset({"approval"}))
        assert "duplicate_persons" not in approval
        # illness does not use document_reuse at all
        assert "reused_documents" not in approval
        assert needed_facts(illness, sub, frozenset()) == frozenset()
