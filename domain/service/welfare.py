"""The service layer: every command of the product, each in one unit of work.

It resolves who is acting, gathers the facts the rules need, lets the pure engine decide, and
commits the result with its audit entries and outbox events. The CLI, the API and the Prefect
flows all call these methods; none of them holds a business rule of its own.
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

from sqlalchemy import Engine

from domain.adapters.db import READ_ONLY
from domain.adapters.definitions import DefinitionStore
from domain.adapters.repository import Repository
from domain.adapters.unit_of_work import UnitOfWork
from domain.engine import transitions as tr
from domain.engine.context import SYSTEM, Actor, Ctx
from domain.engine.evaluation import case_facts, claim_keys, needed_facts, validate_form
from domain.errors import Conflict, DomainError, InvalidRequest, NotFound, PermissionDenied
from domain.ids import new_id
from domain.model import AuditIntent, BudgetKey, Case, CaseAggregate, CaseStatus, TaskStatus
from domain.roles import OrgLevel, Role
from domain.rules.facts import LIVE_STATUSES, CaseFacts, Facts, MemberFacts
from domain.rules.registry import GATHERED_FACTS
from domain.service import case_lists
from domain.service.commands import (
    AttachDocuments,
    CaseItem,
    Decide,
    Delegate,
    DocumentIn,
    ProvideInformation,
    RecordPayment,
    SubmitCase,
    SubmitList,
)
from domain.workcalendar import VN_TZ, WorkCalendar
from domain.workflow import Definition, Stage

ALL_STAGES: frozenset[Stage] = frozenset(("intake", "screening", "approval", "payment"))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Submitted:
    case_id: str
    status: str
    amount: int
    flags: list[str]
    checks: list[dict[str, object]]
    open_task_ids: list[str] = field(default_factory=list)
    """The tasks the submission opened (with inline screening): the filer's next step needs
    no inbox read to find them."""


@dataclass(frozen=True)
class ListItemResult:
    index: int
    member_id: str
    outcome: str  # accepted | flagged | refused
    case_id: str | None = None
    flags: list[str] = field(default_factory=list)
    error: str | None = None
    rule: str | None = None
    field_path: str | None = None
    checks: list[dict[str, object]] = field(default_factory=list)
    params: dict[str, object] = field(default_factory=dict)  # to fill in the error's message


@dataclass(frozen=True)
class SweepResult:
    examined: int
    changed: int


# The check stages a command runs, so that `_ctx` reads only the facts their rules need.
APPROVAL_ONLY: frozenset[Stage] = frozenset({"approval"})
PAYMENT_ONLY: frozenset[Stage] = frozenset({"payment"})
NO_CHECKS: frozenset[Stage] = frozenset()


class WelfareService:
    def __init__(
        self,
        engine: Engine,
        definitions: DefinitionStore,
        calendar: WorkCalendar,
        *,
        clock: Callable[[], datetime] = utcnow,
        screen_inline: bool = True,
    ) -> None:
        self.engine = engine
        self.definitions = definitions
        self.calendar = calendar
        self.clock = clock
        self.screen_inline = screen_inline

    @contextmanager
    def _uow(self) -> Iterator[UnitOfWork]:
        with UnitOfWork(self.engine) as uow:
            yield uow

    # --- context building --------------------------------------------------------------

    def actor(self, repo: Repository, account_id: str, now: datetime) -> Actor:
        if account_id == SYSTEM.account_id:
            return SYSTEM
        acc, grants = repo.account_and_grants(account_id, now.astimezone(VN_TZ).date())
        member_id = acc["member_id"]
        household = repo.household_of(member_id) if member_id else None
        return Actor(
            account_id=acc["id"],
            person_key=member_id or acc["id"],
            member_id=member_id,
            home_unit_id=acc["home_unit_id"],
            household_key=household,
            grants=grants,
        )

    def _ctx(
        self,
        repo: Repository,
        defn: Definition,
        case: Case,
        now: datetime,
        *,
        doc_hashes: list[str] | None = None,
        stages: frozenset[Stage] | None = None,
        quota_used: int | None = None,
    ) -> Ctx:
        """The rule facts for a command on `case`: only those its definition's rules read.

        `stages`: the only stages whose checks the command runs (decide: approval; payment:
        payment; claim, release, delegate, withdraw: none). Then only the facts those rules
        declare are read — a decide reads no duplicate persons (an intake check) or quota, and
        on an illness case no reused documents; a payment reads none of them. None
        (submission, screening, member input): the facts of every stage's rules.

        `quota_used`: the unit's live cases in the campaign, when the caller already knows it
        (a list counts once and adds its own accepted items, instead of a count per member).
        """
        today = now.astimezone(VN_TZ).date()
        needed = _needed(defn, case, stages)
        member = repo.member_facts(case.member_id)
        ancestry = repo.ancestry(case.unit_id, today)
        unit_row = repo.unit(case.unit_id)
        campaign = repo.campaign_facts(case.campaign_id) if case.campaign_id else None
        cf = CaseFacts(
            id=case.id,
            policy=case.policy,
            subtype=case.subtype,
            event_date=case.event_date,
            submitted_on=case.submitted_at.astimezone(VN_TZ).date(),
            form=case.form,
            amount=case.amount,
            flags=frozenset(case.flags),
            unit_id=case.unit_id,
            unit_commune=unit_row["commune_code"],
            campaign_id=case.campaign_id,
            documents=(),
        )
        base = Facts(
            stage="intake", now=now, today=today, case=cf, member=member, campaign=campaign
        )
        funding = defn.funding_for(case.subtype) if case.subtype in defn.subtypes else defn.funding
        budget_unit = ancestry.get(funding.level)
        budget_key = BudgetKey(budget_unit, today.year, funding.fund) if budget_unit else None
        # Approvals reserve the budget when they route to payment; nothing else reads it there.
        budget = budget_key if budget_key and (stages is None or "approval" in stages) else None
        history = (member.id, member.household_key) if "history" in needed else None
        keys = (
            claim_keys(defn, base)
            if "taken_claim_keys" in needed and case.subtype in defn.subtypes
            else []
        )
        documents = (doc_hashes or [], case.id) if "reused_documents" in needed else None
        quota = (
            (case.campaign_id, case.unit_id, case.id)
            if quota_used is None and case.campaign_id and "quota_used" in needed
            else None
        )
        with repo.prefetching_facts(  # one round trip for all of them on PostgreSQL
            history=history,
            claim_keys=keys,
            documents=documents,
            duplicates_of=member if "duplicate_persons" in needed else None,
            budget=budget,
            quota=quota,
        ):
            facts = replace(
                base,
                history=repo.history(*history, exclude=case.id) if history else (),
                taken_claim_keys=repo.taken_claim_keys(keys)
                if "taken_claim_keys" in needed
                else {},
                reused_documents=repo.reused_documents(*documents) if documents else {},
                duplicate_persons=repo.duplicate_persons(member)
                if "duplicate_persons" in needed
                else 0,
                budget_available=repo.budget_available(budget) if budget else None,
                quota_used=quota_used
                if quota_used is not None
                else repo.quota_used(*quota)
                if quota
                else None,
            )
        return Ctx(defn, self.calendar, now, ancestry, facts, budget_key)

    def _load(
        self,
        uow: UnitOfWork,
        case_id: str | None,
        now: datetime,
        stages: frozenset[Stage] | None = None,
        *,
        task_id: str | None = None,
        actor_id: str | None = None,
        quotas: dict[tuple[str, str], int] | None = None,
    ) -> tuple[CaseAggregate, Ctx, Actor | None]:
        """The case (or the case of `task_id`), row-locked; the facts of `stages`; the actor.

        On PostgreSQL the household lock, the member, the history, the org chain and the
        actor's account and roles go to the server in one round trip (they were six).
        """
        repo = uow.repo
        if case_id is not None:
            agg = repo.load_case(case_id)
        else:
            assert task_id is not None
            agg = repo.load_case_of_task(task_id)
        c = agg.case
        defn = self.definitions.get(c.policy, c.policy_version)
        today = now.astimezone(VN_TZ).date()
        actor: Actor | None = None
        account_on = (actor_id, today) if actor_id and actor_id != SYSTEM.account_id else None
        with _household_locked_with_facts(repo, defn, c, today, stages, account_on):
            ctx = self._ctx(
                repo,
                defn,
                c,
                now,
                doc_hashes=[d.sha256 for d in agg.documents],
                stages=stages,
                quota_used=_quota_excluding(repo, defn, c, quotas),
            )
            if actor_id is not None:
                actor = self.actor(repo, actor_id, now)
        return agg, ctx, actor

    # --- submission ---------------------------------------------------------------------

    def _submit_one(
        self,
        uow: UnitOfWork,
        actor: Actor,
        defn: Definition,
        unit_id: str,
        campaign_id: str | None,
        item: CaseItem,
        now: datetime,
        batch_id: str | None = None,
        quota_used: int | None = None,
    ) -> CaseAggregate:
        repo = uow.repo
        member_id: str = item.member_id
        household = repo.household_of(member_id)
        if household is None:
            raise NotFound("member", member_id)
        if campaign_id is not None and _uses_quota(defn):
            # Before the household lock: one lock order, so concurrent lists cannot deadlock.
            repo.lock_quota(campaign_id, unit_id)
        sub = item.subtype
        form = item.form
        clean = validate_form(defn, form) if sub in defn.subtypes else {}
        probe = Case(
            id="(new)",
            policy=defn.policy,
            policy_version=defn.version,
            subtype=sub,
            member_id=member_id,
            household_key=household,
            unit_id=unit_id,
            campaign_id=campaign_id,
            submitted_by=actor.account_id,
            submitter_person=actor.person_key,
            submitted_at=now,
            event_date=item.event_date,
            form=clean,
            entitled_amount=1,
        )
        docs = item.documents
        today = now.astimezone(VN_TZ).date()
        with _household_locked_with_facts(repo, defn, probe, today, None, None):
            ctx = self._ctx(
                repo,
                defn,
                probe,
                now,
                doc_hashes=[d.sha256.lower() for d in docs],
                quota_used=quota_used,
            )
        agg = tr.submit(
            ctx,
            actor=actor,
            subtype=sub,
            member_id=member_id,
            household_key=household,
            unit_id=unit_id,
            campaign_id=campaign_id,
            event_date=item.event_date,
            form=form,
            requested_amount=item.requested_amount,
            documents=[d.as_tuple() for d in docs],
            batch_id=batch_id,
        )
        agg.claim_keys_added = claim_keys(defn, replace(ctx.facts, case=case_facts(ctx, agg)))
        if self.screen_inline:
            tr.screen(replace(ctx, facts=replace(ctx.facts, case=case_facts(ctx, agg))), agg)
        uow.save(agg)
        return agg

    def submit(self, actor_id: str, cmd: SubmitCase) -> Submitted:
        """File one case for a member; refused with the rule at fault, or accepted (maybe flagged)."""
        now = self.clock()
        defn = self.definitions.current(cmd.policy)
        with self._uow() as uow:
            actor = self.actor(uow.repo, actor_id, now)
            self._check_unit(uow.repo, cmd.unit_id)
            agg = self._submit_one(uow, actor, defn, cmd.unit_id, cmd.campaign_id, cmd, now)
            audit = list(uow._audit)
            uow.commit(now)
        checks = audit[0].payload.get("checks", []) if audit else []
        return Submitted(
            agg.case.id,
            agg.case.status.value,
            agg.case.amount,
            list(agg.case.flags),
            list(checks) if isinstance(checks, list) else [],
            [t.id for t in agg.tasks if t.status is TaskStatus.OPEN],
        )

    def _check_unit(self, repo: Repository, unit_id: str) -> None:
        row = repo.unit(unit_id)
        if row["level"] != "grassroots":
            raise InvalidRequest(
                "invalid_field",
                field="unit_id",
                params={"field": "unit_id", "reason": "cases are filed by a grassroots union"},
            )

    def submit_list(self, actor_id: str, cmd: SubmitList) -> list[ListItemResult]:
        """A campaign list: each member screened on their own; one transaction for the list.

        A refused item leaves no trace but its result line; accepted and flagged items are
        committed together with one audit entry each and one for the list itself.
        """

        now = self.clock()
        defn = self.definitions.current(cmd.policy)
        batch_id = new_id()
        results: list[ListItemResult] = []
        shared_checks: dict[tuple[object, ...], dict[str, object]] = {}
        with self._uow() as uow:
            actor = self.actor(uow.repo, actor_id, now)
            self._check_unit(uow.repo, cmd.unit_id)
            # Refuse a whole list from someone who may not file for this unit before anything
            # (not even the list's own audit entry) is written.
            ancestry = uow.repo.ancestry(cmd.unit_id, now.astimezone(VN_TZ).date())
            if not actor.holds_any(
                ancestry.values(), (Role.GRASSROOTS_OFFICER, Role.GRASSROOTS_CHAIR)
            ):
                raise PermissionDenied("permission_denied")
            # The unit's quota is counted once, under its lock, and then kept up to date with
            # the list's own accepted items: counted per member, a 10,000-member list re-read
            # a growing set of its own cases 10,000 times.
            quota: int | None = None
            if cmd.campaign_id is not None and _uses_quota(defn):
                uow.repo.lock_quota(cmd.campaign_id, cmd.unit_id)
                quota = uow.repo.quota_used(cmd.campaign_id, cmd.unit_id, None)
            # What inline screening made of the list, counted as items are accepted (the
            # aggregates themselves are not kept: 10,000 of them would stay in memory).
            tally = case_lists.new_tally()
            waiting = 0  # accepted cases left in screening (screening by the policy flows)
            for i, item in enumerate(cmd.items):
                savepoint = uow.conn.begin_nested()
                queued = len(uow._audit)
                try:
                    agg = self._submit_one(
                        uow, actor, defn, cmd.unit_id, cmd.campaign_id, item, now, batch_id, quota
                    )
                except DomainError as err:
                    savepoint.rollback()
                    uow.repo.forget_rows()  # what `save` remembers may have been rolled back
                    # Drop the audit/events the failed item may have queued before refusing.
                    results.append(
                        ListItemResult(
                            i,
                            item.member_id,
                            "refused",
                            error=err.message_key,
                            rule=err.rule,
                            field_path=err.field,
                            checks=err.checks,
                            params=err.params,
                        )
                    )
                    continue
                savepoint.commit()
                if quota is not None and agg.case.status.value in LIVE_STATUSES:
                    quota += 1
                if agg.case.status is CaseStatus.SCREENING:
                    waiting += 1
                else:
                    tally = case_lists.add_to_tally(tally, [agg])
                outcome = "flagged" if agg.case.flags else "accepted"
                new_intents = uow._audit[queued:]
                _share_checks(new_intents, shared_checks)
                results.append(
                    ListItemResult(
                        i,
                        item.member_id,
                        outcome,
                        agg.case.id,
                        list(agg.case.flags),
                        # So the officer reads why an item was flagged, not just "C5".
                        checks=_checks_of(new_intents),
                    )
                )
                # The outbox rows now rather than at commit: a list's events (3 a member
                # with inline screening) are not held for the whole request. Audit entries
                # must wait: they are sealed under the audit-head lock, taken at commit.
                if len(uow._events) >= EVENTS_CHUNK:
                    uow.write_events(now)
            accepted = sum(r.outcome != "refused" for r in results)
            uow.record(
                audit=[
                    AuditIntent(
                        action="batch.submitted",
                        entity_type="batch",
                        entity_id=batch_id,
                        actor_id=actor.account_id,
                        actor_role=(
                            Role.GRASSROOTS_OFFICER
                            if actor.holds_any(ancestry.values(), (Role.GRASSROOTS_OFFICER,))
                            else Role.GRASSROOTS_CHAIR
                        ).value,
                        org_unit_id=cmd.unit_id,
                        policy=defn.policy,
                        policy_version=defn.version,
                        payload={
                            "items": len(cmd.items),
                            "accepted": accepted,
                            "refused": len(cmd.items) - accepted,
                            "campaign": cmd.campaign_id,
                        },
                    )
                ]
            )
            row = {
                "id": batch_id,
                "policy": defn.policy,
                "policy_version": defn.version,
                "unit_id": cmd.unit_id,
                "campaign_id": cmd.campaign_id,
                "submitted_by": actor.account_id,
                "submitted_at": now,
                "items": len(cmd.items),
                "accepted": accepted,
                "tally": tally,
                # Nothing left to screen (inline screening, or no item accepted): screened now.
                "screened_at": None if waiting else now,
            }
            uow.repo.add_case_list(row)
            if accepted and not waiting:
                audit, event = case_lists.announce(row, tally, now)
                uow.record(audit=[audit], events=[event])
            uow.commit(now)
        return results

    # --- case commands --------------------------------------------------------------------

    def screen(self, case_id: str) -> None:
        """Run the automatic step of a case (called by the policy flow, or inline at submit)."""
        now = self.clock()
        with self._uow() as uow:
            agg, ctx, _ = self._load(uow, case_id, now)
            tr.screen(ctx, agg)
            uow.save(agg)
            self._left_screening(uow, [agg], now)
            uow.commit(now)

    def screen_many(self, case_ids: Sequence[str]) -> dict[str, str]:
        """The automatic step of many cases (a policy flow's batch). Per case: "screened",
        "skipped" (no longer in screening), "conflict:<key>" or "refused:<key>".

        SCREEN_BATCH cases a transaction, as the SLA sweep does: one transaction a case spent
        half its CPU on the transaction (connection, BEGIN IMMEDIATE, audit-head lock,
        commit), and counted the campaign's quota once a case — a count over the unit's cases
        of the campaign, so a list's screening grew with the square of its length. The quota
        is counted once a batch and kept up to date as cases leave the live statuses. A batch
        that fails is rolled back and its cases screened one a transaction, so one failing
        case never holds back the others.
        """
        out: dict[str, str] = {}
        for i in range(0, len(case_ids), SCREEN_BATCH):
            chunk = list(case_ids[i : i + SCREEN_BATCH])
            try:
                out.update(self._screen_batch(chunk))
            except (DomainError, LookupError, ValueError, RuntimeError):
                for case_id in chunk:
                    try:
                        out.update(self._screen_batch([case_id]))
                    except DomainError as err:
                        kind = "conflict" if isinstance(err, Conflict) else "refused"
                        out[case_id] = f"{kind}:{err.message_key}"
        return out

    def _screen_batch(self, case_ids: Sequence[str]) -> dict[str, str]:
        now = self.clock()
        out: dict[str, str] = {}
        quotas: dict[tuple[str, str], int] = {}
        screened: list[CaseAggregate] = []
        with self._uow() as uow:
            for case_id in case_ids:
                agg, ctx, _ = self._load(uow, case_id, now, quotas=quotas)
                c = agg.case
                if c.status.value != "screening":
                    out[case_id] = "skipped"
                    continue
                tr.screen(ctx, agg)
                key = (c.campaign_id or "", c.unit_id)
                if key in quotas and agg.case.status.value not in LIVE_STATUSES:
                    quotas[key] -= 1  # rejected at screening: it no longer counts
                uow.save(agg)
                screened.append(agg)
                out[case_id] = "screened"
            self._left_screening(uow, screened, now)
            uow.commit(now)
        return out

    def _left_screening(
        self, uow: UnitOfWork, aggs: Sequence[CaseAggregate], now: datetime
    ) -> None:
        """Count these cases, just taken out of screening (and saved), in their lists' tallies;
        announce each list none of whose cases is left in screening (`case_lists`).

        The list rows are locked first, in id order, after every case of the transaction: the
        read of the list's cases still in screening must follow the lock (see
        `Repository.lock_case_lists`), so that of two transactions finishing the same list
        exactly one finds none left.
        """
        by_list: dict[str, list[CaseAggregate]] = {}
        for agg in aggs:
            if agg.case.batch_id is not None and agg.case.status is not CaseStatus.SCREENING:
                by_list.setdefault(agg.case.batch_id, []).append(agg)
        if not by_list:
            return
        repo = uow.repo
        for list_id, row in repo.lock_case_lists(by_list).items():
            tally = case_lists.add_to_tally(row["tally"] or {}, by_list[list_id])
            announce = row["screened_at"] is None and not repo.list_waiting(list_id)
            repo.update_case_list(list_id, tally, now if announce else row["screened_at"])
            if announce:
                audit, event = case_lists.announce(row, tally, now)
                uow.record(audit=[audit], events=[event])

    def _on_case(
        self,
        case_id: str | None,
        actor_id: str,
        apply: Callable[[Ctx, CaseAggregate, Actor], None],
        stages: frozenset[Stage] | None = None,
        *,
        task_id: str | None = None,
    ) -> CaseAggregate:
        """Load, apply, save, commit. `stages`: the check stages `apply` runs (see `_ctx`).

        Without `case_id`, the case of `task_id`, read with it in the same statements (one
        round trip fewer per task command than looking the case up first).
        """
        now = self.clock()
        with self._uow() as uow:
            agg, ctx, actor = self._load(
                uow, case_id, now, stages, task_id=task_id, actor_id=actor_id
            )
            assert actor is not None
            screening = agg.case.status is CaseStatus.SCREENING
            apply(ctx, agg, actor)
            if screening and agg.case.batch_id is not None:
                # A list case withdrawn before screening: its list may have nothing left to
                # screen now. Saved first, so that the list's read sees it gone.
                uow.save(agg)
                self._left_screening(uow, [agg], now)
            else:
                uow.save_at_commit(agg)
            uow.commit(now)
        return agg

    def decide(self, actor_id: str, cmd: Decide) -> CaseAggregate:
        return self._on_case(
            None,
            actor_id,
            lambda ctx, agg, actor: tr.decide(
                ctx,
                agg,
                task_id=cmd.task_id,
                actor=actor,
                action=cmd.action,
                amount=cmd.amount,
                reason=cmd.reason,
            ),
            APPROVAL_ONLY,
            task_id=cmd.task_id,
        )

    def _with_new_documents(
        self, ctx: Ctx, agg: CaseAggregate, documents: Sequence[DocumentIn]
    ) -> Ctx:
        """`ctx` whose reuse facts (C17) also cover the files a command is adding to the case."""
        hashes = [d.sha256.lower() for d in documents]
        # A second, read-only connection: on SQLite a writing one would wait for the
        # write lock this command's own transaction holds.
        with self.engine.connect().execution_options(**READ_ONLY) as conn:
            reused = Repository(conn).reused_documents(hashes, agg.case.id)
        merged = {**ctx.facts.reused_documents, **reused}
        return replace(ctx, facts=replace(ctx.facts, reused_documents=merged))

    def provide_information(self, actor_id: str, cmd: ProvideInformation) -> CaseAggregate:
        def apply(ctx: Ctx, agg: CaseAggregate, actor: Actor) -> None:
            tr.provide_information(
                self._with_new_documents(ctx, agg, cmd.documents),
                agg,
                actor=actor,
                form=cmd.form,
                documents=[d.as_tuple() for d in cmd.documents],
                note=cmd.note,
            )
            # A changed form field may be part of a unique_claim key: hold the keys it has now
            # (saving refuses a key another live case holds, and drops the ones it no longer has).
            agg.claim_keys_added = claim_keys(
                ctx.defn, replace(ctx.facts, case=case_facts(ctx, agg))
            )

        return self._on_case(cmd.case_id, actor_id, apply)

    def attach_documents(self, actor_id: str, cmd: AttachDocuments) -> CaseAggregate:
        """Add document metadata and hashes to an open case; a reused file flags it (C17)."""

        def apply(ctx: Ctx, agg: CaseAggregate, actor: Actor) -> None:
            tr.attach_documents(
                self._with_new_documents(ctx, agg, cmd.documents),
                agg,
                actor=actor,
                documents=[d.as_tuple() for d in cmd.documents],
            )

        return self._on_case(cmd.case_id, actor_id, apply)

    def record_document_read(self, actor_id: str, case_id: str, document_ids: list[str]) -> None:
        """Audit that someone was shown sensitive (health) document metadata: ids only."""
        if not document_ids:
            return
        now = self.clock()
        with self._uow() as uow:
            uow.record(
                audit=[
                    AuditIntent(
                        action="document.read",
                        entity_type="case",
                        entity_id=case_id,
                        actor_id=actor_id,
                        actor_role=None,
                        org_unit_id=None,
                        policy=None,
                        policy_version=None,
                        payload={"case": case_id, "documents": sorted(document_ids)},
                    )
                ]
            )
            uow.commit(now)

    def withdraw(self, actor_id: str, case_id: str, reason: str | None = None) -> CaseAggregate:
        return self._on_case(
            case_id,
            actor_id,
            lambda ctx, agg, actor: tr.withdraw(ctx, agg, actor=actor, reason=reason),
            NO_CHECKS,
        )

    def claim(self, actor_id: str, task_id: str) -> CaseAggregate:
        return self._on_case(
            None,
            actor_id,
            lambda ctx, agg, actor: tr.claim(ctx, agg, task_id=task_id, actor=actor),
            NO_CHECKS,
            task_id=task_id,
        )

    def release(self, actor_id: str, task_id: str) -> CaseAggregate:
        return self._on_case(
            None,
            actor_id,
            lambda ctx, agg, actor: tr.release(ctx, agg, task_id=task_id, actor=actor),
            NO_CHECKS,
            task_id=task_id,
        )

    def delegate(self, actor_id: str, cmd: Delegate) -> CaseAggregate:
        def apply(ctx: Ctx, agg: CaseAggregate, actor: Actor) -> None:
            with self.engine.connect().execution_options(**READ_ONLY) as conn:
                to = self.actor(Repository(conn), cmd.to_account_id, ctx.now)
            tr.delegate(ctx, agg, task_id=cmd.task_id, actor=actor, to=to, until=cmd.until)

        return self._on_case(None, actor_id, apply, NO_CHECKS, task_id=cmd.task_id)

    def record_payment(self, actor_id: str, cmd: RecordPayment) -> CaseAggregate:
        return self._on_case(
            cmd.case_id,
            actor_id,
            lambda ctx, agg, actor: tr.record_payment(
                ctx, agg, actor=actor, amount=cmd.amount, method=cmd.method, reference=cmd.reference
            ),
            PAYMENT_ONLY,
        )

    # --- the SLA sweep --------------------------------------------------------------------

    def escalate_due(self, now: datetime | None = None, limit: int = 10_000) -> SweepResult:
        """Move every task whose SLA check is due up its ladder. Idempotent: a rerun changes nothing.

        Cost grows with the number of due tasks (an index on next_check_at), not with all tasks.
        Due tasks are handled in batches of cases, one transaction per batch (a transaction per
        task made 1,000 overdue tasks take seconds). A batch that fails — a case changed under
        it, a broken definition — is rolled back and its cases retried one per transaction, so
        one failing case never holds back the others.
        """
        at = now or self.clock()
        with self.engine.connect().execution_options(**READ_ONLY) as conn:
            due = Repository(conn).due_tasks(at, limit)
        by_case: dict[str, list[str]] = {}
        for task_id, case_id in due:
            by_case.setdefault(case_id, []).append(task_id)
        cases = list(by_case)
        changed = 0
        for i in range(0, len(cases), SWEEP_BATCH):
            batch = {c: by_case[c] for c in cases[i : i + SWEEP_BATCH]}
            try:
                changed += self._escalate_batch(batch, at)
            except (DomainError, LookupError, ValueError, RuntimeError):
                for case_id, task_ids in batch.items():
                    try:
                        changed += self._escalate_batch({case_id: task_ids}, at)
                    except Conflict:
                        continue  # someone acted on the case meanwhile; the next sweep looks again
        return SweepResult(len(due), changed)

    def _escalate_batch(self, batch: dict[str, list[str]], at: datetime) -> int:
        """Escalate the due tasks of these cases in one transaction; how many tasks changed."""
        changed = 0
        today = at.astimezone(VN_TZ).date()
        with self._uow() as uow:
            aggs = uow.repo.load_cases(list(batch))
            uow.repo.read_ancestries((a.case.unit_id for a in aggs.values()), today)
            ancestry: dict[str, dict[OrgLevel, str]] = {}
            to_save: list[CaseAggregate] = []
            for case_id, task_ids in batch.items():
                agg = aggs.get(case_id)
                if agg is None:
                    continue
                c = agg.case
                if c.unit_id not in ancestry:
                    ancestry[c.unit_id] = uow.repo.ancestry(c.unit_id, today)
                defn = self.definitions.get(c.policy, c.policy_version)
                # The SLA ladder reads the definition, the clock and the org chain, never the
                # rule facts: the sweep does not gather them (that was most of its cost).
                ctx = Ctx(defn, self.calendar, at, ancestry[c.unit_id], _sweep_facts(agg, at))
                touched = False
                for task_id in task_ids:
                    if tr.escalate(ctx, agg, task_id=task_id):
                        touched = True
                        changed += 1
                if touched:
                    to_save.append(agg)
            uow.save_many(to_save)
            uow.commit(at)
        return changed


@contextmanager
def _household_locked_with_facts(
    repo: Repository,
    defn: Definition,
    case: Case,
    today: date,
    stages: frozenset[Stage] | None,
    account_on: tuple[str, date] | None,
) -> Iterator[None]:
    """The case's household locked and its first facts read, in one round trip on
    PostgreSQL (they were six), for the `_ctx` (and actor) calls inside the block."""
    with repo.x.batch():
        repo.lock_household(case.household_key)  # before the reads: they wait for the lock
        with repo.prefetching(
            member_id=case.member_id,
            household_key=case.household_key if "history" in _needed(defn, case, stages) else None,
            unit_on=(case.unit_id, today),
            account_on=account_on,
        ):
            yield


def _needed(defn: Definition, case: Case, stages: frozenset[Stage] | None) -> frozenset[str]:
    """The gathered facts the rules of `stages` (None: every stage) read on this case."""
    if case.subtype not in defn.subtypes:
        return GATHERED_FACTS
    if stages is None:
        # Every stage's rules of this definition, plus the history the amount rules read
        # (prior amounts in a campaign): a Tết list reads no reused documents, as no Tết
        # rule looks at them — read for 10,000 members sharing one signed list, they made
        # each submission slower than the one before.
        return frozenset(needed_facts(defn, case.subtype, ALL_STAGES) | {"history"})
    return frozenset(needed_facts(defn, case.subtype, stages))


def _uses_quota(defn: Definition) -> bool:
    return any(u.rule == "unit_quota" for _, _, u in defn.rule_uses())


def _quota_excluding(
    repo: Repository, defn: Definition, case: Case, quotas: dict[tuple[str, str], int] | None
) -> int | None:
    """The unit's live cases in the campaign but `case`, from the batch's tally (counted on
    first use); None without a tally or a quota rule: `_ctx` then counts it itself."""
    if quotas is None or case.campaign_id is None or not _uses_quota(defn):
        return None
    key = (case.campaign_id, case.unit_id)
    if key not in quotas:
        quotas[key] = repo.quota_used(case.campaign_id, case.unit_id, None)
    return quotas[key] - (1 if case.status.value in LIVE_STATUSES else 0)


SCREEN_BATCH = 100
"""Cases per screening transaction (`screen_many`): the commit and audit-head lock amortised,
SQLite's write lock held ≈ 0.1–0.3 s at a time."""


SWEEP_BATCH = 200
"""Cases per SLA-sweep transaction: large enough to amortise the commit and the audit-head
lock, small enough that a retry after a failed batch stays cheap."""


def _sweep_facts(agg: CaseAggregate, at: datetime) -> Facts:
    """The minimal fact snapshot a Ctx needs; escalation evaluates no rule."""
    c = agg.case
    today = at.astimezone(VN_TZ).date()
    member = MemberFacts(
        id=c.member_id,
        cccd="",
        dob=today,
        sex="",
        name_key="",
        household_key=c.household_key,
        commune_code=None,
        memberships=(),
    )
    case = CaseFacts(
        id=c.id,
        policy=c.policy,
        subtype=c.subtype,
        event_date=c.event_date,
        submitted_on=c.submitted_at.astimezone(VN_TZ).date(),
        form=c.form,
        amount=c.amount,
        flags=frozenset(c.flags),
        unit_id=c.unit_id,
        unit_commune=None,
        campaign_id=c.campaign_id,
        documents=(),
    )
    return Facts(stage="approval", now=at, today=today, case=case, member=member)


def require(condition: bool, message: str = "permission_denied") -> None:
    if not condition:
        raise PermissionDenied(message)


EVENTS_CHUNK = 500
"""A campaign list writes its queued outbox rows whenever this many events are waiting."""


def _share_checks(
    intents: list[AuditIntent], pool: dict[tuple[object, ...], dict[str, object]]
) -> None:
    """Make equal check results of a list's audit payloads one dict each, in place.

    A Tết list's members mostly pass the same checks with the same (empty) parameters: 15
    equal dicts a member, ≈ 2.2 kB, held in the audit payloads until commit and in the
    answer's results. Equal ones become the list's first such dict (nothing changes these
    dicts once built: they are serialised when sealed and when answered). Only dicts of
    plain values are shared, keyed with their order and types (1, 1.0 and True are equal in
    Python but not in JSON).
    """
    for intent in intents:
        checks = intent.payload.get("checks")
        if not isinstance(checks, list):
            continue
        for n, check in enumerate(checks):
            key = _check_key(check)
            if key is not None:
                checks[n] = pool.setdefault(key, check)


_PLAIN = (str, int, bool, type(None))


def _check_key(check: object) -> tuple[object, ...] | None:
    if not isinstance(check, dict):
        return None
    key: list[object] = []
    for name, value in check.items():
        if isinstance(value, dict):
            inner = tuple((k, type(v), v) for k, v in value.items())
            if not all(isinstance(v, _PLAIN) for _, _, v in inner):
                return None
            key.append((name, dict, inner))
        elif isinstance(value, _PLAIN):
            key.append((name, type(value), value))
        else:
            return None
    return tuple(key)


def _checks_of(intents: list[AuditIntent]) -> list[dict[str, object]]:
    """The check results of a new case's intake and (inline) screening entries, in order."""
    out: list[dict[str, object]] = []
    for intent in intents:
        if intent.action in ("case.submitted", "case.screened"):
            checks = intent.payload.get("checks", [])
            if isinstance(checks, list):
                out.extend(c for c in checks if isinstance(c, dict))
    return out
