"""The commands of a case's life: submit, screen, decide, provide information, withdraw,
claim/release/delegate, escalate and pay. Each checks, then mutates the aggregate and records
the events and audit entries of what it did; a refusal raises before anything is recorded.
"""

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Literal

from domain import events as ev
from domain.engine.context import SYSTEM, Actor, Ctx
from domain.engine.evaluation import (
    condition_holds,
    entitled_amount,
    evaluate,
    facts_for,
    new_flags,
    refuse_on_failure,
    validate_form,
)
from domain.engine.tasks import (
    assignment_active,
    authorize,
    clock_used,
    due_escalation,
    next_check,
    open_task,
)
from domain.errors import Conflict, InvalidRequest, NotFound, PermissionDenied, RuleViolation
from domain.ids import new_id
from domain.model import (
    AuditIntent,
    BudgetOp,
    Case,
    CaseAggregate,
    CaseStatus,
    Decision,
    Document,
    Escalation,
    Payment,
    Task,
    TaskKind,
    TaskStatus,
)
from domain.roles import OrgLevel, Role
from domain.rules.registry import CheckResult, Outcome
from domain.workflow import (
    OUTCOMES,
    ApprovalStep,
    AutomaticStep,
    DecisionStep,
    MemberInputStep,
    PaymentStep,
)

_HEX64 = re.compile("[0-9a-f]{64}")

DecideAction = Literal["approve", "reject", "return"]
AUDITOR_ONLY_FLAGS = frozenset({"SLA"})
"""Flags for the auditors' attention that say nothing about the claim itself (a late approver)."""
MAX_DELEGATION = timedelta(days=30)


def digest(text: str | None) -> str | None:
    """Free text (reasons, notes) may hold personal data: the audit log keeps only its hash."""
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def _audit(
    ctx: Ctx,
    agg: CaseAggregate,
    action: str,
    actor: Actor,
    role: Role | None,
    unit: str | None,
    payload: Mapping[str, object],
    *,
    entity: tuple[str, str] | None = None,
) -> None:
    del ctx  # same call shape as _event; the entry's time is set when the chain is sealed
    entity_type, entity_id = entity or ("case", agg.case.id)
    agg.audit.append(
        AuditIntent(
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            actor_id=actor.account_id,
            actor_role=role.value if role else None,
            org_unit_id=unit,
            policy=agg.case.policy,
            policy_version=agg.case.policy_version,
            payload={"case": agg.case.id, "status": agg.case.status.value, **payload},
        )
    )


def _event(ctx: Ctx, agg: CaseAggregate, kind: str, **data: str | int | bool | None) -> None:
    agg.events.append(
        ev.Event(
            type=kind,
            occurred_at=ctx.now,
            case_id=agg.case.id,
            data={"policy": agg.case.policy, "status": agg.case.status.value, **data},
        )
    )


def _of_list(agg: CaseAggregate, since: int) -> None:
    """Mark the events recorded since `since` as news of the case's list (`ev.LIST`).

    A list case's submission and screening are announced once for the whole list (the
    `case_list.screened` digest), so these events carry the list id: the notifier then sends
    no mail of their own, and decides so without reading anything. Everything later in the
    case's life is recorded unmarked and mailed case by case.
    """
    list_id = agg.case.batch_id
    if list_id is None:
        return
    agg.events[since:] = [replace(e, data={**e.data, ev.LIST: list_id}) for e in agg.events[since:]]


def _checks_json(results: Sequence[CheckResult]) -> list[dict[str, object]]:
    return [r.to_json() for r in results]


def _open(
    ctx: Ctx,
    agg: CaseAggregate,
    step_id: str,
    step: ApprovalStep | MemberInputStep | PaymentStep,
    **kw: int,
) -> Task:
    """Open the task of a human step and announce it in the outbox."""
    task = open_task(ctx, agg, step_id, step, **kw)
    _event(
        ctx,
        agg,
        ev.TASK_OPENED,
        task=task.id,
        step=step_id,
        role=task.role.value,
        unit=task.org_unit_id,
    )
    return task


def _close(
    ctx: Ctx, agg: CaseAggregate, task: Task, status: TaskStatus, outcome: str | None
) -> None:
    """Close a task; it leaves the inbox and the SLA sweep for good."""
    task.status = status
    task.closed_at = ctx.now
    if outcome is not None:
        task.outcome = outcome
    task.next_check_at = None
    agg.touch(task)


def prior_in_campaign(
    ctx: Ctx, *, member_id: str, campaign_id: str | None, policy: str, exclude: str | None
) -> int:
    """What the member already has (or has pending) in the same campaign of this policy."""
    return sum(
        p.amount
        for p in ctx.facts.history
        if p.id != exclude
        and p.member_id == member_id
        and p.campaign_id == campaign_id
        and p.policy == policy
    )


# --- submit and screen ------------------------------------------------------------------


def submit(
    ctx: Ctx,
    *,
    actor: Actor,
    subtype: str,
    member_id: str,
    household_key: str,
    unit_id: str,
    campaign_id: str | None,
    event_date: date,
    form: Mapping[str, object],
    requested_amount: int | None,
    documents: Sequence[tuple[str, str, str, int, str]] = (),
    batch_id: str | None = None,
) -> CaseAggregate:
    """A new case, screened at intake: hard failures refuse, soft ones flag the case."""
    defn = ctx.defn
    if subtype not in defn.subtypes:
        raise InvalidRequest(
            "invalid_field",
            field="subtype",
            params={"field": "subtype", "reason": f"one of: {', '.join(defn.subtypes)}"},
        )
    if defn.campaign is not None and campaign_id is None:
        raise InvalidRequest(
            "campaign_required", field="campaign_id", params={"field": "campaign_id"}
        )
    if defn.campaign is None and campaign_id is not None:
        raise InvalidRequest(
            "invalid_field",
            field="campaign_id",
            params={"field": "campaign_id", "reason": "this policy has no campaigns"},
        )
    campaign = ctx.facts.campaign
    if campaign_id is not None and campaign is not None and campaign.policy != defn.policy:
        # Another policy's campaign would lend this case its windows, cutoff and claim keys.
        raise InvalidRequest(
            "invalid_field",
            field="campaign_id",
            params={"field": "campaign_id", "reason": f"the campaign is for {campaign.policy}"},
        )
    if not actor.holds_any(ctx.ancestry.values(), (Role.GRASSROOTS_OFFICER, Role.GRASSROOTS_CHAIR)):
        raise PermissionDenied("permission_denied")
    clean_form = validate_form(defn, form)
    prior = prior_in_campaign(
        ctx, member_id=member_id, campaign_id=campaign_id, policy=defn.policy, exclude=None
    )
    amount = entitled_amount(defn, subtype, clean_form, requested_amount, prior)
    case = Case(
        id=new_id(),
        policy=defn.policy,
        policy_version=defn.version,
        subtype=subtype,
        member_id=member_id,
        household_key=household_key,
        unit_id=unit_id,
        campaign_id=campaign_id,
        submitted_by=actor.account_id,
        submitter_person=actor.person_key,
        submitted_at=ctx.now,
        event_date=event_date,
        form=clean_form,
        entitled_amount=amount,
        current_step=defn.start,
        batch_id=batch_id,
    )
    agg = CaseAggregate(case=case, is_new=True)
    for kind, filename, sha256, size, content_type in documents:
        agg.add_document(_document(ctx, agg, actor, kind, filename, sha256, size, content_type))
    results = evaluate(ctx, agg, facts_for(ctx, agg, "intake", actor.facts("submit")))
    refuse_on_failure(results)
    flags = new_flags(agg, results)
    _audit(
        ctx,
        agg,
        "case.submitted",
        actor,
        _filing_role(ctx, actor),
        unit_id,
        {
            "member": member_id,
            "subtype": subtype,
            "campaign": campaign_id,
            "entitled_amount": amount,
            "documents": [d.sha256 for d in agg.documents],
            "form_sha256": digest(repr(sorted(clean_form.items()))),
            "checks": _checks_json(results),
            "flags": flags,
            "batch": batch_id,
        },
    )
    _event(ctx, agg, ev.CASE_SUBMITTED, amount=amount, flagged=bool(flags))
    _of_list(agg, 0)
    return agg


def _document(
    ctx: Ctx,
    agg: CaseAggregate,
    actor: Actor,
    kind: str,
    filename: str,
    sha256: str,
    size: int,
    content_type: str,
) -> Document:
    doc_kind = ctx.defn.documents.get(kind)
    if doc_kind is None:
        raise InvalidRequest(
            "invalid_field",
            field="documents.kind",
            params={"field": "documents.kind", "reason": f"unknown document kind '{kind}'"},
        )
    sha = sha256.lower()
    if len(sha) != 64 or not _HEX64.fullmatch(sha):
        raise InvalidRequest(
            "invalid_field",
            field="documents.sha256",
            params={"field": "documents.sha256", "reason": "must be 64 hex digits"},
        )
    if size < 0:
        raise InvalidRequest(
            "invalid_field",
            field="documents.size",
            params={"field": "documents.size", "reason": ">= 0"},
        )
    return Document(
        id=new_id(),
        case_id=agg.case.id,
        kind=kind,
        filename=filename[:255],
        sha256=sha,
        size=size,
        content_type=content_type[:100],
        sensitive=doc_kind.sensitive,
        added_by=actor.account_id,
        added_at=ctx.now,
    )


def screen(ctx: Ctx, agg: CaseAggregate) -> None:
    """The automatic step: re-run the history checks, then route to the first human step."""
    case = agg.case
    if case.status is not CaseStatus.SCREENING:
        raise Conflict(
            "transition_not_allowed", params={"action": "screen", "status": case.status.value}
        )
    step = ctx.defn.steps[case.current_step]
    if not isinstance(step, AutomaticStep):
        raise Conflict(
            "transition_not_allowed", params={"action": "screen", "status": case.status.value}
        )
    since = len(agg.events)
    _screen(ctx, agg, step)
    _of_list(agg, since)


def _screen(ctx: Ctx, agg: CaseAggregate, step: AutomaticStep) -> None:
    case = agg.case
    results = evaluate(ctx, agg, facts_for(ctx, agg, "screening"))
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    if failed:
        _finish(ctx, agg, CaseStatus.REJECTED, f"ineligible:{failed[0].reason}")
        _audit(
            ctx,
            agg,
            "case.screened",
            SYSTEM,
            None,
            None,
            {"result": "rejected", "checks": _checks_json(results)},
        )
        _event(ctx, agg, ev.CASE_REJECTED, reason=failed[0].reason, by_system=True)
        return
    flags = new_flags(agg, results)
    route, extra = _advance(ctx, agg, step.next, SYSTEM)
    _audit(
        ctx,
        agg,
        "case.screened",
        SYSTEM,
        None,
        None,
        {
            "result": "routed",
            "route": route,
            "amount": case.amount,
            "checks": _checks_json([*results, *extra]),
            "flags": flags,
        },
    )
    _event(ctx, agg, ev.CASE_SCREENED, step=case.current_step)
    if flags:
        _event(ctx, agg, ev.CASE_FLAGGED, flags=",".join(flags))


def _advance(
    ctx: Ctx, agg: CaseAggregate, target: str, actor: Actor
) -> tuple[list[str], list[CheckResult]]:
    """Follow automatic and decision steps from `target` until a human step or an outcome."""
    defn, case = ctx.defn, agg.case
    route: list[str] = []
    extra: list[CheckResult] = []
    for _ in range(len(defn.steps) + 1):  # a validated graph cannot loop without a human step
        route.append(target)
        if target in OUTCOMES:
            status = CaseStatus(target) if target != "paid" else CaseStatus.PAID
            _finish(ctx, agg, status, "routed")
            _event(ctx, agg, f"case.{target}")
            return route, extra
        step = defn.steps[target]
        case.current_step = target
        if isinstance(step, DecisionStep):
            facts = facts_for(ctx, agg, "approval")
            target = next(
                (b.then for b in step.branches if condition_holds(b.when, facts)), step.otherwise
            )
        elif isinstance(step, AutomaticStep):
            target = step.next
        elif isinstance(step, ApprovalStep):
            case.status = CaseStatus.IN_REVIEW
            _open(ctx, agg, target, step)
            return route, extra
        elif isinstance(step, MemberInputStep):
            case.status = CaseStatus.AWAITING_INFO
            _open(ctx, agg, target, step)
            return route, extra
        else:
            assert isinstance(step, PaymentStep)
            extra.append(_reserve(ctx, agg, actor))
            case.status = CaseStatus.APPROVED
            if case.approved_amount is None:
                case.approved_amount = case.entitled_amount
            _event(ctx, agg, ev.CASE_APPROVED, amount=case.amount)
            _open(ctx, agg, target, step, tranche=1)
            return route, extra
    raise RuntimeError(f"routing loop in {defn.policy} v{defn.version}")


def _reserve(ctx: Ctx, agg: CaseAggregate, actor: Actor) -> CheckResult:
    """Reserve the approved amount on the funding budget; refuse when it does not fit."""
    del actor
    case, key = agg.case, ctx.budget_key
    if key is None:
        raise RuntimeError("the service layer must resolve the funding budget before approvals")
    available = ctx.facts.budget_available or 0
    if available < case.amount:
        raise RuleViolation(
            "budget_insufficient",
            rule="budget_available",
            params={"fund": key.fund, "year": key.year},
        )
    agg.budget_ops.append(BudgetOp("reserve", key, case.amount))
    case.budget_key = key
    case.reserved_amount = case.amount
    return CheckResult("budget_available", "BUDGET", Outcome.PASSED, "ok", {"available": available})


def _finish(ctx: Ctx, agg: CaseAggregate, status: CaseStatus, reason: str) -> None:
    case = agg.case
    case.status = status
    case.closed_at = ctx.now
    case.outcome_reason = reason
    for task in agg.open_tasks():
        _close(ctx, agg, task, TaskStatus.CANCELLED, None)
    if status in (CaseStatus.REJECTED, CaseStatus.WITHDRAWN):
        if case.reserved_amount and case.budget_key is not None:
            agg.budget_ops.append(BudgetOp("release", case.budget_key, case.reserved_amount))
            case.reserved_amount = 0
        agg.claim_keys_released = True


# --- decide -----------------------------------------------------------------------------


def _open_task_of_kind(agg: CaseAggregate, task_id: str, kind: TaskKind | None = None) -> Task:
    """The open task `task_id` of this case (of `kind`, when given); NotFound or Conflict else."""
    task = agg.task(task_id)
    if task is None or (kind is not None and task.kind is not kind):
        raise NotFound("task", task_id)
    if task.status is not TaskStatus.OPEN:
        raise Conflict("task_not_open")
    return task


def decide(
    ctx: Ctx,
    agg: CaseAggregate,
    *,
    task_id: str,
    actor: Actor,
    action: DecideAction,
    amount: int | None = None,
    reason: str | None = None,
) -> None:
    """An approver's decision. Approvals re-run the approval-stage checks; everything runs SoD."""
    case = agg.case
    task = _open_task_of_kind(agg, task_id, TaskKind.APPROVAL)
    authorize(ctx, task, actor)
    step = ctx.defn.steps[task.step]
    assert isinstance(step, ApprovalStep)
    reason = reason.strip() if reason else None
    if action in ("reject", "return") and not reason:
        raise InvalidRequest(
            "invalid_field", field="reason", params={"field": "reason", "reason": "required"}
        )
    if action == "return" and (step.next.returned is None or task.committee):
        raise InvalidRequest(
            "invalid_field",
            field="action",
            params={"field": "action", "reason": "this step cannot return a case for information"},
        )
    lowered = False
    if action == "approve":
        if amount is None:
            amount = case.amount
        elif isinstance(amount, bool) or amount <= 0 or amount > case.amount:
            raise InvalidRequest(
                "invalid_field",
                field="amount",
                params={"field": "amount", "reason": f"between 1 and {case.amount} đồng"},
            )
        elif amount < case.amount:
            if not step.allow_lower:
                raise InvalidRequest(
                    "invalid_field",
                    field="amount",
                    params={"field": "amount", "reason": "this step cannot lower the amount"},
                )
            lowered = True
    elif amount is not None:
        raise InvalidRequest(
            "invalid_field",
            field="amount",
            params={"field": "amount", "reason": "only with approve"},
        )

    approvers = frozenset(d.person_key for d in agg.decisions if d.task_id == task.id)
    facts = facts_for(
        ctx,
        agg,
        "approval",
        actor.facts(f"step:{task.step}"),
        task_approvers=approvers,
        forbid_own_unit=step.forbid_own_unit,
    )
    results = evaluate(ctx, agg, facts, only_duties=action != "approve")
    refuse_on_failure(results)
    flags = new_flags(agg, results)

    if task.committee:
        action_name = "vote_approve" if action == "approve" else "vote_reject"
    else:
        action_name = "approve_lower" if lowered else action
    agg.add_decision(
        Decision(
            id=new_id(),
            case_id=case.id,
            task_id=task.id,
            step=task.step,
            actor_id=actor.account_id,
            person_key=actor.person_key,
            role=task.role,
            org_unit_id=task.org_unit_id,
            action=action_name,
            amount=amount,
            reason=reason,
            at=ctx.now,
        )
    )
    previous_amount = case.amount
    outcome, final_amount = _tally(agg, task)
    route: list[str] = []
    extra: list[CheckResult] = []
    if outcome is not None:
        _close(ctx, agg, task, TaskStatus.DONE, outcome)
        if outcome == "approved":
            case.approved_amount = final_amount
            route, extra = _advance(ctx, agg, step.next.approved, actor)
        elif outcome == "returned":
            assert step.next.returned is not None
            case.return_step = task.step
            case.paused_clock_used = clock_used(ctx, task)
            route, extra = _advance(ctx, agg, step.next.returned, actor)
            _event(ctx, agg, ev.CASE_INFO_REQUESTED, step=task.step)
        else:
            route, extra = _advance(ctx, agg, step.next.rejected, actor)
    _audit(
        ctx,
        agg,
        "task.decided",
        actor,
        task.role,
        task.org_unit_id,
        {
            "task": task.id,
            "step": task.step,
            "action": action_name,
            "amount": amount,
            "previous_amount": previous_amount,
            "outcome": outcome,
            "route": route,
            "reason_sha256": digest(reason),
            "checks": _checks_json([*results, *extra]),
            "flags": flags,
            "delegated_by": task.delegated_by if task.assignee_id == actor.account_id else None,
        },
    )
    _event(
        ctx, agg, ev.TASK_DECIDED, task=task.id, step=task.step, action=action_name, outcome=outcome
    )
    if flags:
        _event(ctx, agg, ev.CASE_FLAGGED, flags=",".join(flags))


def effective_approvals_needed(agg: CaseAggregate, task: Task) -> int:
    """A flagged case needs one more distinct approver than its step asks for."""
    review_flags = [f for f in agg.case.flags if f not in AUDITOR_ONLY_FLAGS]
    extra = 1 if review_flags and not task.committee else 0
    return task.approvals_needed + extra


def _tally(agg: CaseAggregate, task: Task) -> tuple[str | None, int | None]:
    """The task's outcome once enough decisions are in (None while waiting for more)."""
    mine = [d for d in agg.decisions if d.task_id == task.id]
    if task.committee:
        if len(mine) < task.approvals_needed:
            return None, None
        yes = [d for d in mine if d.action == "vote_approve"]
        if len(yes) * 2 > len(mine):  # strict majority; a tie keeps the money unspent
            return "approved", min(d.amount or 0 for d in yes)
        return "rejected", None
    last = mine[-1]
    if last.action == "reject":
        return "rejected", None
    if last.action == "return":
        return "returned", None
    approvals = [d for d in mine if d.action in ("approve", "approve_lower")]
    if len(approvals) < effective_approvals_needed(agg, task):
        return None, None
    return "approved", min(d.amount or 0 for d in approvals)


# --- member input, withdrawal -------------------------------------------------------------


def _filing_role(ctx: Ctx, actor: Actor) -> Role:
    """The role a filing-side act is recorded under: the one the actor really holds here.

    A chair may file and answer for their union; the audit must say chair, not officer, or
    separation-of-duties reviews read a chair's filing as someone else's.
    """
    units = ctx.ancestry.values()
    if actor.holds_any(units, (Role.GRASSROOTS_OFFICER,)):
        return Role.GRASSROOTS_OFFICER
    if actor.holds_any(units, (Role.GRASSROOTS_CHAIR,)):
        return Role.GRASSROOTS_CHAIR
    return Role.GRASSROOTS_OFFICER  # the submitter acting on their own case after a role change


def _require_case_officer(ctx: Ctx, agg: CaseAggregate, actor: Actor) -> None:
    """The submitter, or an officer/chair of the case's grassroots unit (or a unit above it)."""
    if actor.account_id == agg.case.submitted_by:
        return
    if not actor.holds_any(ctx.ancestry.values(), (Role.GRASSROOTS_OFFICER, Role.GRASSROOTS_CHAIR)):
        raise PermissionDenied("permission_denied")


def provide_information(
    ctx: Ctx,
    agg: CaseAggregate,
    *,
    actor: Actor,
    form: Mapping[str, object],
    documents: Sequence[tuple[str, str, str, int, str]] = (),
    note: str | None = None,
) -> None:
    """The submitter answers a return: the same step re-opens with the SLA clock it had left."""
    case = agg.case
    if case.status is not CaseStatus.AWAITING_INFO or case.return_step is None:
        raise Conflict(
            "transition_not_allowed",
            params={"action": "provide information", "status": case.status.value},
        )
    _require_case_officer(ctx, agg, actor)
    if not form and not documents:
        raise InvalidRequest(
            "invalid_field", field="form", params={"field": "form", "reason": "nothing provided"}
        )
    updates = validate_form(ctx.defn, form, partial=True)
    merged = {**case.form, **updates}
    validate_form(ctx.defn, merged)
    case.form = merged
    for kind, filename, sha256, size, content_type in documents:
        agg.add_document(_document(ctx, agg, actor, kind, filename, sha256, size, content_type))
    if case.approved_amount is None:
        case.entitled_amount = entitled_amount(
            ctx.defn,
            case.subtype,
            merged,
            case.entitled_amount if _is_range(ctx, case) else None,
            _prior_in_campaign(ctx, agg),
        )
    results = evaluate(ctx, agg, facts_for(ctx, agg, "intake", actor.facts("submit")))
    refuse_on_failure(results)
    flags = new_flags(agg, results)
    for task in agg.open_tasks():
        if task.kind is TaskKind.MEMBER_INPUT:
            _close(ctx, agg, task, TaskStatus.DONE, "provided")
    step_id = case.return_step
    step = ctx.defn.steps[step_id]
    assert isinstance(step, ApprovalStep)
    case.status = CaseStatus.IN_REVIEW
    case.current_step = step_id
    _event(ctx, agg, ev.CASE_INFO_PROVIDED, step=step_id)
    task = _open(ctx, agg, step_id, step, clock_used_before=case.paused_clock_used)
    case.return_step = None
    case.paused_clock_used = 0
    _audit(
        ctx,
        agg,
        "case.info_provided",
        actor,
        _filing_role(ctx, actor),
        case.unit_id,
        {
            "fields": sorted(updates),
            "documents": [d.sha256 for d in agg.new_documents],
            "note_sha256": digest(note),
            "checks": _checks_json(results),
            "flags": flags,
            "reopened_task": task.id,
        },
    )


def attach_documents(
    ctx: Ctx,
    agg: CaseAggregate,
    *,
    actor: Actor,
    documents: Sequence[tuple[str, str, str, int, str]],
) -> list[str]:
    """The filing unit adds document metadata (kind, name, SHA-256) at any open stage.

    Only the document-reuse check runs (the other checks do not depend on documents until
    approval, where they run again); a reused file flags the case. Returns the new flags.
    """
    case = agg.case
    if case.terminal:
        raise Conflict(
            "transition_not_allowed",
            params={"action": "attach documents", "status": case.status.value},
        )
    _require_case_officer(ctx, agg, actor)
    if not documents:
        raise InvalidRequest(
            "invalid_field",
            field="documents",
            params={"field": "documents", "reason": "nothing provided"},
        )
    for kind, filename, sha256, size, content_type in documents:
        agg.add_document(_document(ctx, agg, actor, kind, filename, sha256, size, content_type))
    facts = facts_for(ctx, agg, "intake", actor.facts("submit"))
    # evaluate() runs only the rules the definition uses for this subtype and stage.
    results = [r for r in evaluate(ctx, agg, facts) if r.rule == "document_reuse"]
    flags = new_flags(agg, results)
    _audit(
        ctx,
        agg,
        "case.documents_attached",
        actor,
        _filing_role(ctx, actor),
        case.unit_id,
        {
            "documents": [d.sha256 for d in agg.new_documents],
            "checks": _checks_json(results),
            "flags": flags,
        },
    )
    if flags:
        _event(ctx, agg, ev.CASE_FLAGGED, flags=",".join(flags))
    return flags


def _is_range(ctx: Ctx, case: Case) -> bool:
    return ctx.defn.subtypes[case.subtype].amount.minimum is not None


def _prior_in_campaign(ctx: Ctx, agg: CaseAggregate) -> int:
    c = agg.case
    return prior_in_campaign(
        ctx, member_id=c.member_id, campaign_id=c.campaign_id, policy=c.policy, exclude=c.id
    )


def withdraw(ctx: Ctx, agg: CaseAggregate, *, actor: Actor, reason: str | None) -> None:
    """The submitting unit withdraws; a reserved budget is released. Not once money was paid."""
    case = agg.case
    if case.terminal or case.paid_amount > 0:
        raise Conflict(
            "transition_not_allowed", params={"action": "withdraw", "status": case.status.value}
        )
    _require_case_officer(ctx, agg, actor)
    released = case.reserved_amount
    _finish(ctx, agg, CaseStatus.WITHDRAWN, "withdrawn")
    _audit(
        ctx,
        agg,
        "case.withdrawn",
        actor,
        _filing_role(ctx, actor),
        case.unit_id,
        {"released": released, "reason_sha256": digest(reason)},
    )
    _event(ctx, agg, ev.CASE_WITHDRAWN, released=released)


# --- claim, release, delegate -------------------------------------------------------------


def claim(ctx: Ctx, agg: CaseAggregate, *, task_id: str, actor: Actor) -> None:
    task = _open_task_of_kind(agg, task_id)
    authorize(ctx, task, actor)
    if task.assignee_id == actor.account_id:
        return  # claiming twice is a no-op, not an error (retries)
    task.assignee_id = actor.account_id
    task.delegated_by = None
    task.delegated_until = None
    agg.touch(task)
    _audit(
        ctx,
        agg,
        "task.claimed",
        actor,
        task.role,
        task.org_unit_id,
        {"task": task.id},
        entity=("task", task.id),
    )
    _event(ctx, agg, ev.TASK_CLAIMED, task=task.id, assignee=actor.account_id)


def release(ctx: Ctx, agg: CaseAggregate, *, task_id: str, actor: Actor) -> None:
    task = _open_task_of_kind(agg, task_id)
    if not assignment_active(task, ctx.now):
        # Refused rather than a silent success: a no-op would still bump the case version and
        # hide from the caller that their view of the task is stale. Holders learn it is
        # unclaimed; anyone else gets the same refusal as for any task they do not hold.
        authorize(ctx, task, actor)
        raise Conflict("task_not_claimed")
    if actor.account_id not in (task.assignee_id, task.delegated_by):
        raise PermissionDenied("permission_denied")
    task.assignee_id = None
    task.delegated_by = None
    task.delegated_until = None
    agg.touch(task)
    _audit(
        ctx,
        agg,
        "task.released",
        actor,
        task.role,
        task.org_unit_id,
        {"task": task.id},
        entity=("task", task.id),
    )
    _event(ctx, agg, ev.TASK_RELEASED, task=task.id)


def delegate(
    ctx: Ctx, agg: CaseAggregate, *, task_id: str, actor: Actor, to: Actor, until: datetime
) -> None:
    """Hand a task to someone for a bounded time; they act as themselves, SoD included."""
    task = _open_task_of_kind(agg, task_id)
    if task.kind is TaskKind.MEMBER_INPUT:
        raise Conflict("task_not_open")
    authorize(ctx, task, actor)
    if to.account_id == actor.account_id:
        raise InvalidRequest(
            "invalid_field", field="to", params={"field": "to", "reason": "yourself"}
        )
    if until <= ctx.now or until > ctx.now + MAX_DELEGATION:
        raise InvalidRequest(
            "invalid_field",
            field="until",
            params={"field": "until", "reason": "within the next 30 days"},
        )
    approving = [r for r in Role if r not in (Role.MEMBER, Role.AUDITOR, Role.ADMIN)]
    if not to.holds_any(ctx.chain_at_or_above(task.level), approving):
        raise InvalidRequest(
            "invalid_field",
            field="to",
            params={
                "field": "to",
                "reason": "the delegate holds no union role at this unit or above",
            },
        )
    task.assignee_id = to.account_id
    task.delegated_by = actor.account_id
    task.delegated_until = until
    agg.touch(task)
    _audit(
        ctx,
        agg,
        "task.delegated",
        actor,
        task.role,
        task.org_unit_id,
        {"task": task.id, "to": to.account_id, "until": until.isoformat()},
        entity=("task", task.id),
    )
    _event(ctx, agg, ev.TASK_DELEGATED, task=task.id, to=to.account_id)


# --- escalation -----------------------------------------------------------------------------


_ESCALATION_RANK = {level: level.rank for level in Escalation}
"""`Escalation.rank` computed once: it walks the enum, and the sweep asks it ~13 times a task."""


def escalate(ctx: Ctx, agg: CaseAggregate, *, task_id: str) -> bool:
    """Move a task up the SLA ladder as far as `now` requires; False when there was nothing to do.

    Reminder → overdue (the escalation target is notified) → at twice the SLA the task is
    reassigned to the target and the case flagged for the auditors. A member-input task that
    reaches its expiry withdraws the case instead. Repeating the sweep changes nothing more.
    """
    task = agg.task(task_id)
    if task is None or task.status is not TaskStatus.OPEN:
        return False
    target = due_escalation(task, ctx.now)
    rank = _ESCALATION_RANK
    if rank[target] <= rank[task.escalation]:
        return False
    step = ctx.defn.steps[task.step]
    reached = [lvl for lvl in Escalation if rank[task.escalation] < rank[lvl] <= rank[target]]
    for level in reached:
        if level is Escalation.REMINDED:
            _event(ctx, agg, ev.TASK_REMINDER, task=task.id, step=task.step, unit=task.org_unit_id)
        elif level is Escalation.OVERDUE:
            esc_unit = _escalation_unit(ctx, step)
            _event(ctx, agg, ev.TASK_OVERDUE, task=task.id, step=task.step, notify_unit=esc_unit)
    task.escalation = target
    task.next_check_at = next_check(task)
    agg.touch(task)
    if target is Escalation.ESCALATED:
        if isinstance(step, MemberInputStep):
            _finish(ctx, agg, CaseStatus.WITHDRAWN, "expired")
            _audit(ctx, agg, "case.expired", SYSTEM, None, None, {"task": task.id})
            _event(ctx, agg, ev.CASE_WITHDRAWN, expired=True)
            return True
        assert isinstance(step, (ApprovalStep, PaymentStep))
        from_role, from_unit = task.role, task.org_unit_id
        task.role = step.escalate_to.role
        task.level = step.escalate_to.level
        task.org_unit_id = ctx.ancestry.get(step.escalate_to.level, task.org_unit_id)
        task.assignee_id = None
        task.delegated_by = None
        task.delegated_until = None
        if "SLA" not in agg.case.flags:
            agg.case.flags.append("SLA")
        _audit(
            ctx,
            agg,
            "task.escalated",
            SYSTEM,
            None,
            None,
            {
                "task": task.id,
                "step": task.step,
                "from_role": from_role.value,
                "from_unit": from_unit,
                "to_role": task.role.value,
                "to_unit": task.org_unit_id,
                "flags": ["SLA"],
            },
        )
        _event(
            ctx, agg, ev.TASK_ESCALATED, task=task.id, role=task.role.value, unit=task.org_unit_id
        )
    else:
        _audit(
            ctx,
            agg,
            "task.sla",
            SYSTEM,
            None,
            None,
            {"task": task.id, "step": task.step, "level": target.value},
        )
    return True


def _escalation_unit(ctx: Ctx, step: object) -> str | None:
    if isinstance(step, (ApprovalStep, PaymentStep)):
        return ctx.ancestry.get(step.escalate_to.level)
    return ctx.ancestry.get(OrgLevel.UPPER)


# --- payment ------------------------------------------------------------------------------


def tranche_amount(ctx: Ctx, agg: CaseAggregate, tranche: int) -> int:
    step = ctx.defn.steps[agg.case.current_step]
    assert isinstance(step, PaymentStep)
    total = agg.case.approved_amount or 0
    if tranche >= len(step.tranches):
        return total - agg.case.paid_amount  # the last tranche takes the rounding remainder
    return total * step.tranches[tranche - 1] // 100


def record_payment(
    ctx: Ctx,
    agg: CaseAggregate,
    *,
    actor: Actor,
    amount: int,
    method: str,
    reference: str,
) -> None:
    """The treasurer pays the next tranche; the reservation becomes spending."""
    case = agg.case
    if case.status is not CaseStatus.APPROVED:
        raise Conflict(
            "transition_not_allowed", params={"action": "pay", "status": case.status.value}
        )
    task = next((t for t in agg.open_tasks() if t.kind is TaskKind.PAYMENT), None)
    if task is None:
        raise Conflict("task_not_open")
    authorize(ctx, task, actor)
    if method not in ("bank_transfer", "cash"):
        raise InvalidRequest(
            "invalid_field",
            field="method",
            params={"field": "method", "reason": "bank_transfer or cash"},
        )
    reference = reference.strip()
    if not reference or len(reference) > 100:
        raise InvalidRequest(
            "invalid_field",
            field="reference",
            params={"field": "reference", "reason": "1–100 characters"},
        )
    tranche = task.tranche or 1
    expected = tranche_amount(ctx, agg, tranche)
    if isinstance(amount, bool) or amount != expected:
        raise InvalidRequest(
            "invalid_field",
            field="amount",
            params={"field": "amount", "reason": f"tranche {tranche} is {expected} đồng"},
        )
    results = evaluate(ctx, agg, facts_for(ctx, agg, "payment", actor.facts("pay")))
    refuse_on_failure(results)
    payment = Payment(
        id=new_id(),
        case_id=case.id,
        tranche=tranche,
        amount=amount,
        method=method,
        reference=reference,
        paid_by=actor.account_id,
        paid_at=ctx.now,
    )
    agg.payments.append(payment)
    agg.new_payments.append(payment)
    agg.add_decision(
        Decision(
            id=new_id(),
            case_id=case.id,
            task_id=task.id,
            step=task.step,
            actor_id=actor.account_id,
            person_key=actor.person_key,
            role=task.role,
            org_unit_id=task.org_unit_id,
            action="pay",
            amount=amount,
            reason=None,
            at=ctx.now,
        )
    )
    assert case.budget_key is not None
    agg.budget_ops.append(BudgetOp("spend", case.budget_key, amount))
    case.reserved_amount -= amount
    case.paid_amount += amount
    _close(ctx, agg, task, TaskStatus.DONE, "paid")
    step = ctx.defn.steps[task.step]
    assert isinstance(step, PaymentStep)
    done = case.paid_amount >= (case.approved_amount or 0)
    if done:
        _finish(ctx, agg, CaseStatus.PAID, "paid")
    else:
        _open(ctx, agg, task.step, step, tranche=tranche + 1)
    _audit(
        ctx,
        agg,
        "case.payment_recorded",
        actor,
        task.role,
        task.org_unit_id,
        {
            "payment": payment.id,
            "tranche": tranche,
            "amount": amount,
            "method": method,
            "reference_sha256": digest(reference),
            "paid_total": case.paid_amount,
            "checks": _checks_json(results),
        },
    )
    _event(ctx, agg, ev.CASE_PAYMENT_RECORDED, amount=amount, tranche=tranche)
    if done:
        _event(ctx, agg, ev.CASE_PAID, amount=case.paid_amount)
