"""Definitions are data: every shipped file validates, and a broken one reports all its problems."""

import json
import textwrap
from pathlib import Path

import pytest
import yaml

import domain.rules  # noqa: F401  (registers rules)
from domain.adapters.definitions import check_files, definition_files
from domain.config import PROJECT_ROOT
from domain.workflow import json_schema, validate_definition

DEFS = PROJECT_ROOT / "workflow_defs"
SHIPPED = definition_files(DEFS)


def test_the_five_policies_are_shipped() -> None:
    assert sorted(p.stem for p in SHIPPED) == ["disaster", "housing", "illness", "job_loss", "tet"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_each_shipped_definition_validates_with_titles_in_both_languages(path: Path) -> None:
    loaded, problems = check_files([path])
    assert problems == []
    defn = loaded[0].definition
    assert defn.title.vi
    assert defn.title.en
    assert all(s.title.vi and s.title.en for s in defn.subtypes.values())


def test_the_editor_json_schema_is_current() -> None:
    on_disk = json.loads((DEFS / "_schema.json").read_text(encoding="utf-8"))
    assert on_disk == json_schema(), "run `welfare defs schema --write`"


MINIMAL = textwrap.dedent(
    """
    schema: 1
    policy: sample
    version: 1
    title: {vi: Mẫu, en: Sample}
    funding: {level: grassroots, fund: phuc_loi}
    subtypes:
      visit: {title: {vi: Thăm, en: Visit}, amount: {fixed: 500000}}
    start: screening
    steps:
      screening: {type: automatic, title: {vi: Sàng lọc, en: Screening}, next: review}
      review:
        type: approval
        title: {vi: Duyệt, en: Review}
        role: grassroots_chair
        level: grassroots
        sla: 5wd
        escalate_to: {role: upper_chair, level: upper}
        next: {approved: pay}
      pay:
        type: payment
        title: {vi: Chi, en: Pay}
        level: grassroots
        sla: 3wd
        escalate_to: {role: upper_chair, level: upper}
    """
)


def _raw(**patch: object) -> dict[str, object]:
    raw = yaml.safe_load(MINIMAL)
    for dotted, value in patch.items():
        node = raw
        keys = dotted.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return raw  # type: ignore[no-any-return]


def test_a_minimal_definition_is_valid() -> None:
    defn, problems = validate_definition(_raw(), "sample.yaml")
    assert problems == []
    assert defn is not None


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    raw = _raw()
    steps = raw["steps"]
    assert isinstance(steps, dict)
    steps["review"]["next"]["approved"] = "nowhere"  # unknown step
    steps["review"]["sla"] = "5 days"  # bad duration
    steps["orphan"] = {
        "type": "automatic",
        "title": {"vi": "x", "en": "x"},
        "next": "pay",
    }  # unreachable
    raw["eligibility"] = [{"rule": "no_such_rule"}, {"rule": "min_tenure", "with": {"months": -1}}]
    _, problems = validate_definition(raw, "sample.yaml")
    text = "\n".join(f"{p.location}: {p.message}" for p in problems)
    # The schema error (duration) stops graph checks, so check the duration on its own too.
    assert "steps.review.approval.sla" in text or "steps.review.sla" in text
    steps["review"]["sla"] = "5wd"
    _, problems = validate_definition(raw, "sample.yaml")
    text = "\n".join(f"{p.location}: {p.message}" for p in problems)
    assert "sample.yaml: steps.review.next.approved: unknown step 'nowhere'" in text
    assert "sample.yaml: steps.orphan: unreachable from `start`" in text
    assert "sample.yaml: eligibility[0].rule: unknown rule 'no_such_rule'" in text
    assert "sample.yaml: eligibility[1].with.months" in text
    assert len(problems) >= 4


def test_a_dead_end_is_reported() -> None:
    raw = _raw()
    steps = raw["steps"]
    assert isinstance(steps, dict)
    steps["loop_a"] = {"type": "automatic", "title": {"vi": "a", "en": "a"}, "next": "loop_b"}
    steps["loop_b"] = {"type": "automatic", "title": {"vi": "b", "en": "b"}, "next": "loop_a"}
    steps["screening"]["next"] = "route"
    steps["route"] = {
        "type": "decision",
        "title": {"vi": "r", "en": "r"},
        "branches": [{"if": {"rule": "amount_above", "with": {"amount": 1}}, "then": "loop_a"}],
        "else": "review",
    }
    _, problems = validate_definition(raw, "sample.yaml")
    assert any(p.location.endswith("steps.loop_a") and "dead end" in p.message for p in problems)


def test_only_a_payment_step_may_lead_to_paid() -> None:
    raw = _raw()
    steps = raw["steps"]
    assert isinstance(steps, dict)
    steps["review"]["next"]["approved"] = "paid"
    _, problems = validate_definition(raw, "sample.yaml")
    assert any("only a payment step may lead to 'paid'" in p.message for p in problems)


def test_yaml_keys_read_as_booleans_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    path.write_text(MINIMAL + "\nextra:\n  on: 1\n", encoding="utf-8")
    _, problems = check_files([path])
    assert any("read as a boolean" in p.message for p in problems)


def test_the_policy_code_must_equal_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    _, problems = check_files([path])
    assert any("must equal the file name 'other'" in p.message for p in problems)


def test_rule_parameters_are_typed_not_code() -> None:
    raw = _raw(eligibility=[{"rule": "min_tenure", "with": {"months": "__import__('os')"}}])
    _, problems = validate_definition(raw, "sample.yaml")
    assert any("eligibility[0].with.months" in p.location for p in problems)
