"""A scripted story through the five policies, printed as readable decision trails."""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final, Literal

from sqlalchemy import func, select

from domain.adapters.repository import ACCOUNT, BUDGET, CAMPAIGN, CASE, MEMBER, MEMBERSHIP, ORG
from domain.bootstrap import App
from domain.cccd import mask_cccd
from domain.demo import laichau
from domain.demo.seed import load_accounts, seed_demo, seeded_at
from domain.errors import DomainError
from domain.i18n import translate
from domain.money import format_vnd, format_vnd_en
from domain.roles import ROLE_TITLES, Role
from domain.service.commands import (
    CaseItem,
    Decide,
    DocumentIn,
    ProvideInformation,
    RecordPayment,
    SubmitCase,
    SubmitList,
)
from domain.service.queries import TrailEntry, case_status, case_trail, open_tasks, verify_audit
from domain.service.welfare import ListItemResult, Submitted
from domain.workcalendar import VN_TZ
from domain.workflow import Definition, PaymentStep

__all__ = ["DemoError", "Lang", "run_demo"]

Lang = Literal["vi", "en"]

# The story runs on its own clock, this many days in the past, so every entry it writes is
# dated before "now" and the audit log stays in time order when people carry on afterwards.
STORY_DAYS: Final = 50

WIDTH: Final = 118  # fits a 120-column terminal
INDENT: Final = " " * 20


class DemoError(RuntimeError):
    """The story cannot run here (cases already exist) or the engine did something unexpected."""


class DemoClock:
    """A hand-moved clock; it never goes back, because the audit log is written in time order."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> datetime:
        self.now = max(self.now, when)
        return self.now


@dataclass(frozen=True)
class _Member:
    id: str
    full_name: str
    cccd: str
    unit_id: str
    joined_on: date
    left_on: date | None
    twin: bool  # shares name and birth date with someone else (C2 would flag the case)

    def active_on(self, day: date) -> bool:
        return self.joined_on <= day and (self.left_on is None or self.left_on >= day)


@dataclass(frozen=True)
class _Cast:
    """The members each scene is about, chosen before anything is written."""

    outside: _Member  # Tân Phong, outside the flood area
    flooded: _Member  # Mường Tè first union: flooded house
    collapsed: _Member  # another Mường Tè union: collapsed house (the overdue case)
    housing: _Member  # Tân Phong, ≥ 3 years of membership
    illness: _Member
    laid_off: _Member  # Đoàn Kết employer, joined before the dues cutoff
    newcomer: _Member  # same employer, joined after it
    tet_listed: tuple[_Member, ...]  # Mường Tè first union: quota + 1 eligible members
    tet_new: _Member  # under a year of membership
    tet_left: _Member  # left in the 2025 restructuring


# Words for audit actions, (vi, en).
_ACTIONS: Final[dict[str, tuple[str, str]]] = {
    "case.submitted": ("Nộp hồ sơ", "Submitted"),
    "case.screened": ("Kiểm tra tự động", "Automatic screening"),
    "case.info_provided": ("Bổ sung hồ sơ", "Information provided"),
    "case.withdrawn": ("Rút hồ sơ", "Withdrawn"),
    "case.expired": ("Hết hạn bổ sung, hồ sơ tự rút", "Expired waiting for information"),
    "case.payment_recorded": ("Chi tiền", "Payment"),
    "task.escalated": ("Quá hạn – chuyển lên", "Overdue – escalated to"),
    "task.sla": ("Nhắc hạn xử lý", "SLA reminder"),
    "task.claimed": ("Nhận xử lý", "Claimed"),
    "task.released": ("Trả nhiệm vụ", "Released"),
    "task.delegated": ("Ủy quyền xử lý", "Delegated"),
}
_DECISIONS: Final[dict[str, tuple[str, str]]] = {
    "approve": ("Phê duyệt", "Approved"),
    "approve_lower": ("Phê duyệt mức thấp hơn", "Approved a lower amount"),
    "reject": ("Từ chối", "Rejected"),
    "return": ("Trả lại, yêu cầu bổ sung", "Returned for information"),
    "vote_approve": ("Biểu quyết tán thành", "Voted to approve"),
    "vote_reject": ("Biểu quyết không tán thành", "Voted to reject"),
}
_STATUS: Final[dict[str, tuple[str, str]]] = {
    "paid": ("đã chi đủ", "paid in full"),
    "approved": ("đã duyệt, chờ chi", "approved, awaiting payment"),
    "in_review": ("đang xét duyệt", "in review"),
    "awaiting_info": ("chờ bổ sung hồ sơ", "awaiting information"),
    "rejected": ("bị từ chối", "rejected"),
    "withdrawn": ("đã rút", "withdrawn"),
    "screening": ("chờ kiểm tra tự động", "awaiting screening"),
}
# Tết criteria (a)–(f) used in the story; health-related ones are deliberately not used,
# since the criterion is printed.
_CRITERIA: Final[dict[str, tuple[str, str]]] = {
    "low_income": ("(c) thu nhập thấp", "(c) low income"),
    "disaster_or_job_loss": ("(d) thiên tai, mất việc", "(d) disaster or job loss"),
    "hazardous_or_remote": ("(f) vùng sâu, vùng xa", "(f) remote area"),
}
# The short forms used on union paper forms, so a trail line fits on a screen.
_SHORT_ROLES: Final[dict[Role, tuple[str, str]]] = {
    Role.GRASSROOTS_OFFICER: ("Cán bộ CĐCS", "Grassroots officer"),
    Role.GRASSROOTS_CHAIR: ("Chủ tịch CĐCS", "Grassroots chair"),
    Role.UPPER_CHAIR: ("Chủ tịch CĐ cấp trên", "Upper-level chair"),
}
_METHODS: Final = {"bank_transfer": ("chuyển khoản", "bank transfer"), "cash": ("tiền mặt", "cash")}


def _tag(unit_id: str) -> str:
    """The username suffix of a grassroots union: "LC-MUONGTE-CS2" → "muongte2"."""
    _, place, cs = unit_id.split("-")
    return f"{place.lower()}{cs.removeprefix('CS')}"


def _int(value: object) -> int:
    """An integer column read through the untyped query helpers (None counts as 0)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    return int(str(value))


def _sha(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


class _Story:
    """The scenes, the demo clock, and how a decision trail is printed."""

    def __init__(self, app: App, lang: Lang, out: Callable[[str], None], clock: DemoClock) -> None:
        self.app, self.lang, self.out, self.clock = app, lang, out, clock
        self.s, self.engine = app.service, app.engine
        accounts = load_accounts(app)
        self.ids = {a.username: a.account_id for a in accounts.accounts}
        with self.engine.connect() as conn:
            self.usernames = dict(
                conn.execute(select(ACCOUNT.c.id, ACCOUNT.c.username)).tuples().all()
            )
            self.unit_names = dict(conn.execute(select(ORG.c.id, ORG.c.name)).tuples().all())
            self.campaigns = self._campaigns(conn)
            self.members = self._members(conn)
        self.used: set[str] = set()
        self.cast = self.casting()

    # --- lookups -------------------------------------------------------------------------

    @staticmethod
    def _campaigns(conn: Any) -> dict[str, dict[str, Any]]:
        """The latest campaign of each policy (the ones the seed declared)."""
        out: dict[str, dict[str, Any]] = {}
        for r in conn.execute(select(CAMPAIGN).order_by(CAMPAIGN.c.declared_at)).mappings():
            out[r["policy"]] = dict(r)
        return out

    @staticmethod
    def _members(conn: Any) -> list[_Member]:
        twins = {
            (k, d)
            for k, d, n in conn.execute(
                select(MEMBER.c.name_key, MEMBER.c.dob, func.count()).group_by(
                    MEMBER.c.name_key, MEMBER.c.dob
                )
            ).all()
            if n > 1
        }
        rows = conn.execute(
            select(
                MEMBER.c.id,
                MEMBER.c.full_name,
                MEMBER.c.cccd,
                MEMBER.c.name_key,
                MEMBER.c.dob,
                MEMBERSHIP.c.unit_id,
                MEMBERSHIP.c.joined_on,
                MEMBERSHIP.c.left_on,
            )
            .join(MEMBERSHIP, MEMBERSHIP.c.member_id == MEMBER.c.id)
            .order_by(MEMBER.c.cccd)  # deterministic for a given seed
        ).all()
        return [_Member(r[0], r[1], r[2], r[5], r[6], r[7], (r[3], r[4]) in twins) for r in rows]

    def t(self, vi: str, en: str) -> str:
        return vi if self.lang == "vi" else en

    def money(self, amount: int) -> str:
        return format_vnd(amount) if self.lang == "vi" else format_vnd_en(amount)

    def today(self) -> date:
        return self.clock().astimezone(VN_TZ).date()

    def later(self, working_days: int, hhmm: str) -> datetime:
        """Move to `working_days` working days after today's date, at local time hh:mm."""
        day = self.today()
        moved = 0
        while moved < working_days or not self.s.calendar.is_working_day(day):
            day += timedelta(days=1)
            if self.s.calendar.is_working_day(day):
                moved += 1
        hh, mm = (int(x) for x in hhmm.split(":"))
        return self.clock.set(datetime.combine(day, time(hh, mm), VN_TZ))

    def campaign(self, policy: str) -> dict[str, Any]:
        c = self.campaigns.get(policy)
        if c is None:
            raise DemoError(
                self.t(
                    f"Thiếu đợt hỗ trợ của chính sách {policy}", f"No campaign for policy {policy}"
                )
            )
        return c

    def pick(
        self, units: Sequence[str], what: tuple[str, str], ok: Callable[[_Member], bool]
    ) -> _Member:
        """The first unused member of `units` (in that order) for whom `ok` holds."""
        for unit in units:
            for m in self.members:
                if m.unit_id == unit and m.id not in self.used and not m.twin and ok(m):
                    self.used.add(m.id)
                    return m
        raise DemoError(
            self.t(
                f"Dữ liệu mẫu không có đoàn viên phù hợp ({what[0]}) tại {', '.join(units)}; "
                "hãy nạp lại với số đoàn viên mặc định",
                f"The demo data has no suitable member ({what[1]}) at {', '.join(units)}; "
                "seed again with the default number of members",
            )
        )

    def casting(self) -> _Cast:
        """Pick every scene's members up front, so missing data fails before any write.

        Tenure only grows as the story goes on, so what holds now still holds at each scene.
        """
        flood = self.campaign("disaster")["event_to"]
        cutoff = date.fromisoformat(self.campaign("job_loss")["params"]["dues_cutoff"])
        tet_unit = self.units_of("Mường Tè")[0]
        quota = int(self.campaign("tet")["params"]["quotas"].get(tet_unit, 0))
        today = self.today()
        tan_phong, muong_te = self.units_of("Tân Phong"), self.units_of("Mường Tè")
        doan_ket = self.units_of("Đoàn Kết")[:1]

        def on_flood(m: _Member) -> bool:
            return m.active_on(flood)

        return _Cast(
            outside=self.pick(tan_phong, ("thiệt hại ngoài vùng lũ", "damage outside"), on_flood),
            flooded=self.pick(muong_te[:1], ("nhà bị ngập", "flooded house"), on_flood),
            collapsed=self.pick(muong_te[1:], ("nhà bị cuốn trôi", "collapsed house"), on_flood),
            housing=self.pick(
                tan_phong, ("Mái ấm, đủ 3 năm", "housing, 3 years"), self.tenure_ok(36)
            ),
            illness=self.pick(tan_phong, ("ốm đau", "illness"), self.tenure_ok(1)),
            laid_off=self.pick(
                doan_ket,
                ("mất việc", "job loss"),
                lambda m: m.joined_on <= cutoff and m.active_on(today),
            ),
            newcomer=self.pick(
                doan_ket,
                ("vào sau ngày chốt", "joined after cutoff"),
                lambda m: m.joined_on > cutoff and m.active_on(today),
            ),
            tet_listed=tuple(
                self.pick([tet_unit], ("quà Tết", "Tết gift"), self.tenure_ok(13))
                for _ in range(quota + 1)
            ),
            tet_new=self.pick(
                [tet_unit],
                ("đoàn viên mới", "new member"),
                lambda m: m.active_on(today) and (today - m.joined_on).days < 300,
            ),
            tet_left=self.pick(
                [tet_unit], ("đã thôi sinh hoạt", "left"), lambda m: m.left_on is not None
            ),
        )

    def tenure_ok(self, months: int) -> Callable[[_Member], bool]:
        today = self.today()
        return lambda m: m.active_on(today) and (today - m.joined_on).days >= months * 30 + 15

    def units_of(self, place: str) -> list[str]:
        prefix = laichau.commune_id(place) + "-CS"
        return sorted(
            (u for u in self.unit_names if u.startswith(prefix)),
            key=lambda u: int(u[len(prefix) :]),
        )

    def defn(self, policy: str) -> Definition:
        return self.app.definitions.current(policy)

    def docs(self, policy: str, subtype: str, tag: str) -> list[DocumentIn]:
        kinds = self.defn(policy).subtypes[subtype].documents
        return [
            DocumentIn(
                kind=k,
                filename=f"{k}.{'jpg' if 'photo' in k else 'pdf'}",
                sha256=_sha("demo", tag, k),
                size=180_000 + 1000 * i,
            )
            for i, k in enumerate(kinds)
        ]

    def budget_available(self, unit: str, fund: str) -> int:
        b = BUDGET.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(b.amount, b.reserved, b.spent).where(
                    b.org_unit_id == unit, b.year == self.today().year, b.fund == fund
                )
            ).first()
        return 0 if row is None else int(row[0] - row[1] - row[2])

    # --- commands ------------------------------------------------------------------------

    def submit(
        self,
        by: str,
        policy: str,
        subtype: str,
        member: _Member,
        *,
        form: dict[str, Any] | None = None,
        amount: int | None = None,
        campaign: bool = False,
        event_date: date | None = None,
        documents: list[DocumentIn] | None = None,
    ) -> Submitted:
        return self.s.submit(
            self.ids[by],
            SubmitCase(
                policy=policy,
                unit_id=member.unit_id,
                member_id=member.id,
                subtype=subtype,
                event_date=event_date or self.today(),
                form=form or {},
                requested_amount=amount,
                campaign_id=self.campaign(policy)["id"] if campaign else None,
                documents=documents
                if documents is not None
                else self.docs(policy, subtype, member.id),
            ),
        )

    def task_of(self, case_id: str) -> str:
        tasks = open_tasks(self.engine, case_id)
        if len(tasks) != 1:
            raise DemoError(f"case {case_id}: expected one open task, found {len(tasks)}")
        return str(tasks[0]["id"])

    def decide(
        self,
        by: str,
        case_id: str,
        action: Literal["approve", "reject", "return"] = "approve",
        reason: str | None = None,
    ) -> None:
        self.s.decide(
            self.ids[by], Decide(task_id=self.task_of(case_id), action=action, reason=reason)
        )

    def approve_step(self, case_id: str, *by: str) -> None:
        """Approve the current step; the next person only signs if the step still waits.

        A flagged case needs one more distinct approver per step than a clean one.
        """
        task = self.task_of(case_id)
        for i, who in enumerate(by):
            if not any(t["id"] == task for t in open_tasks(self.engine, case_id)):
                return
            if i:
                self.clock.set(self.clock() + timedelta(minutes=10))  # the deputy signs after
            self.decide(who, case_id)

    def pay(
        self,
        by: str,
        case_id: str,
        reference: str,
        method: Literal["bank_transfer", "cash"] = "bank_transfer",
    ) -> int:
        """Pay the case's next tranche; returns the amount paid."""
        status = case_status(self.engine, case_id)
        assert status is not None
        step = self.defn(str(status["policy"])).steps[str(status["current_step"])]
        assert isinstance(step, PaymentStep)
        tranche = _int(open_tasks(self.engine, case_id)[0]["tranche"]) or 1
        total, paid = _int(status["approved_amount"]), _int(status["paid_amount"])
        # Same split as the engine: percentages, the last tranche takes the remainder.
        amount = (
            total - paid
            if tranche >= len(step.tranches)
            else total * step.tranches[tranche - 1] // 100
        )
        self.s.record_payment(
            self.ids[by],
            RecordPayment(case_id=case_id, amount=amount, method=method, reference=reference),
        )
        return amount

    # --- printing ------------------------------------------------------------------------

    def title(self, n: int, vi: str, en: str) -> None:
        text = f"{self.t('Cảnh', 'Scene')} {n}. {self.t(vi, en)}"
        self.out("")
        self.out(f"━━ {text} " + "━" * max(3, 96 - len(text) - 4))

    def say(self, vi: str, en: str) -> None:
        """A narrative line, wrapped; a "  ✓ dd/mm/yyyy hh:mm  " event line hangs under its text."""
        text = self.t(vi, en)
        lead = len(text) - len(text.lstrip(" "))
        hang = INDENT if text.lstrip(" ")[:1] in ("✓", "✗", "↩", "₫", "⟳") else " " * lead
        for line in textwrap.wrap(text, WIDTH, subsequent_indent=hang, break_on_hyphens=False):
            self.out(line)

    def when(self) -> str:
        return self.clock().astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")

    def person(self, m: _Member) -> str:
        # A no-break space keeps the masked number with its label when lines wrap.
        return f"{m.full_name} ({self.t('CCCD', 'ID')}\u00a0{mask_cccd(m.cccd)})"

    def refused(self, err: DomainError, vi: str, en: str) -> None:
        failed = [c for c in err.checks if c.get("outcome") == "failed"]
        code = f" [{failed[0]['code']}]" if failed else ""
        self.say(f"  ✗ {self.when()}  {vi}", f"  ✗ {self.when()}  {en}")
        self.out(f"{INDENT}→ {self.t('bị từ chối', 'refused')}{code}: {err.title(self.lang)}")

    def expect_refusal(self, action: Callable[[], object], vi: str, en: str) -> DomainError:
        try:
            action()
        except DomainError as err:
            self.refused(err, vi, en)
            return err
        raise DemoError(f"expected a refusal: {en}")

    def checks_summary(self, checks: object) -> str:
        if not isinstance(checks, list) or not checks:
            return ""
        by: dict[str, list[str]] = {"passed": [], "flagged": [], "failed": []}
        for c in checks:
            if isinstance(c, dict) and c.get("outcome") in by:
                by[str(c["outcome"])].append(str(c.get("code")))
        n = len(by["passed"])
        parts = [self.t(f"{n} kiểm tra đạt", f"{n} check{'s' if n != 1 else ''} passed")]
        if by["flagged"]:
            parts.append(
                self.t(f"{len(by['flagged'])} gắn cờ: ", f"{len(by['flagged'])} flagged: ")
                + ", ".join(sorted(set(by["flagged"])))
            )
        if by["failed"]:
            parts.append(
                self.t(f"{len(by['failed'])} không đạt: ", f"{len(by['failed'])} failed: ")
                + ", ".join(sorted(set(by["failed"])))
            )
        return ", ".join(parts)

    def role_title(self, role: str | None) -> str:
        if not role:
            return ""
        pair = _SHORT_ROLES.get(Role(role)) or ROLE_TITLES.get(Role(role))
        return "" if pair is None else pair[0 if self.lang == "vi" else 1]

    def emit(self, text: str, hang: str) -> None:
        """Print `text`, wrapped at WIDTH with continuation lines indented by `hang`."""
        for line in textwrap.wrap(text, WIDTH, subsequent_indent=hang, break_on_hyphens=False):
            self.out(line)

    def step_title(self, defn: Definition, step: object) -> str:
        s = defn.steps.get(str(step))
        if s is None:
            return str(step)
        return str(getattr(s.title, self.lang))

    def describe(
        self, e: TrailEntry, defn: Definition, tranches: int, nth: int = 1
    ) -> tuple[str, int | None]:
        """The action in words and the amount the entry is about (if any).

        `nth` counts this person's decision among the decisions on the same task: a flagged
        case needs two approvers per step, shown as "lượt 1/2", "lượt 2/2".
        """
        p = e.payload
        vi_en = _ACTIONS.get(e.action, (e.action, e.action))
        words = vi_en[0] if self.lang == "vi" else vi_en[1]
        amount: int | None = None
        if e.action == "case.submitted":
            amount = _int(p.get("entitled_amount")) or None
        elif e.action == "case.screened":
            route = p.get("route")
            if p.get("result") == "rejected":
                words += self.t(" → không đủ điều kiện", " → ineligible")
            elif isinstance(route, list) and route:
                words += " → " + self.step_title(defn, route[-1])
        elif e.action == "task.decided":
            pair = _DECISIONS.get(str(p.get("action")), (str(p.get("action")),) * 2)
            words = pair[0] if self.lang == "vi" else pair[1]
            pending = p.get("outcome") is None
            if pending or nth > 1:
                of = nth + 1 if pending else nth
                words += self.t(f" (lượt {nth}/{of})", f" ({nth} of {of})")
            words += f": {self.step_title(defn, p.get('step'))}"
            amount = _int(p.get("amount")) or None
        elif e.action == "case.payment_recorded":
            method = _METHODS.get(str(p.get("method")), ("", ""))[0 if self.lang == "vi" else 1]
            if tranches > 1:
                words += self.t(
                    f" đợt {p.get('tranche')}/{tranches}", f" tranche {p.get('tranche')}/{tranches}"
                )
            words += f" ({method})"
            amount = _int(p.get("amount"))
        elif e.action == "case.withdrawn":
            released = _int(p.get("released"))
            if released:
                words += self.t(" – hoàn lại dự toán", " – budget released")
                amount = released
        elif e.action == "task.escalated":
            unit = self.unit_names.get(str(p.get("to_unit")), str(p.get("to_unit")))
            words += f" {self.role_title(str(p.get('to_role')))}, {unit}"
        elif e.action == "task.sla":
            words += f" ({p.get('level')})"
        return words, amount

    def trail(self, case_id: str, subject: str) -> None:
        status = case_status(self.engine, case_id)
        assert status is not None
        defn = self.app.definitions.get(str(status["policy"]), int(str(status["policy_version"])))
        step = defn.steps.get(str(status["current_step"]))
        tranches = len(step.tranches) if isinstance(step, PaymentStep) else 1
        self.emit(f"  ▶ {self.t('Hồ sơ', 'Case')}: {subject}", "      ")
        self.out(f"      {self.unit_names[str(status['unit_id'])]}")
        decisions: dict[str, int] = {}
        for e in case_trail(self.engine, case_id):
            nth = 1
            if e.action == "task.decided":
                task = str(e.payload.get("task"))
                nth = decisions[task] = decisions.get(task, 0) + 1
            words, amount = self.describe(e, defn, tranches, nth)
            at = e.at.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")
            head = f"    {at}  {words}"
            if amount:
                head += f" · {self.money(amount)}"
            self.emit(head, INDENT)
            actor = (
                self.t("hệ thống", "system")
                if e.actor_id in (None, "system")
                else self.usernames.get(e.actor_id, e.actor_id or "?")
            )
            bits = [actor]
            if e.actor_role and e.actor_id != "system":
                bits.append(self.role_title(e.actor_role))
            summary = self.checks_summary(e.payload.get("checks"))
            if summary:
                bits.append(summary)
            bits.append(f"⛓\u00a0{e.entry_hash[:12]}")
            self.emit(INDENT + " · ".join(bits), INDENT + "  ")
        final = _STATUS.get(str(status["status"]), (str(status["status"]),) * 2)
        paid = _int(status["paid_amount"])
        tail = f" ({self.money(paid)})" if paid else ""
        self.out(f"    ⇒ {final[0] if self.lang == 'vi' else final[1]}{tail}")

    def subject(self, policy: str, subtype: str, m: _Member) -> str:
        title = getattr(self.defn(policy).subtypes[subtype].title, self.lang)
        return f"{title} – {self.person(m)}"

    # --- the scenes ----------------------------------------------------------------------

    def intro(self, seeded_now: bool) -> None:
        with self.engine.connect() as conn:
            n_members = conn.execute(select(func.count()).select_from(MEMBER)).scalar_one()
            n_units: dict[str, int] = {
                str(level): int(n)
                for level, n in conn.execute(
                    select(ORG.c.level, func.count()).group_by(ORG.c.level)
                )
            }
        self.say(
            "CÂU CHUYỆN MẪU – phê duyệt hỗ trợ đoàn viên, LĐLĐ tỉnh Lai Châu",
            "DEMO STORY – union welfare approvals, Lai Châu provincial federation",
        )
        self.say(
            f"{'Đã nạp' if seeded_now else 'Dùng'} dữ liệu mẫu: {n_units.get('upper', 0)} công đoàn "
            f"xã/phường, {n_units.get('grassroots', 0)} CĐCS, {n_members} đoàn viên, "
            f"{len(self.ids)} tài khoản. Giờ hiển thị theo giờ Việt Nam.",
            f"{'Seeded' if seeded_now else 'Using'} demo data: {n_units.get('upper', 0)} commune unions, "
            f"{n_units.get('grassroots', 0)} grassroots unions, {n_members} members, "
            f"{len(self.ids)} accounts. Times are Vietnam time.",
        )

    def scene_flood(self) -> tuple[str, _Member]:
        c = self.campaign("disaster")
        event = c["event_to"]
        self.title(
            1,
            "Lũ quét – hỗ trợ khẩn cấp (chính sách thiên tai)",
            "Flash flood – emergency support (disaster policy)",
        )
        self.say(
            f"LĐLĐ tỉnh công bố sự kiện «{c['title']}». Hồ sơ thiên tai tính hạn theo "
            "ngày lịch; nhà sập cần thêm Công đoàn cấp trên duyệt.",
            f"The provincial federation declared “{c['title']}”. Disaster deadlines run in "
            "calendar days; a collapsed house also needs the upper-level union.",
        )
        outside = self.cast.outside
        self.later(0, "09:00")
        self.expect_refusal(
            lambda: self.submit(
                "canbo.tanphong1",
                "disaster",
                "property_loss",
                outside,
                campaign=True,
                event_date=event,
                form={"damage_description": "Mất tài sản do mưa lũ"},
            ),
            f"canbo.tanphong1 nộp hồ sơ thiệt hại cho {self.person(outside)} ở phường Tân Phong",
            f"canbo.tanphong1 files a damage claim for {self.person(outside)} in Tân Phong ward",
        )
        hit = self.cast.flooded
        self.later(0, "09:20")
        sub = self.submit(
            "chutich.muongte1",
            "disaster",
            "house_damaged",
            hit,
            campaign=True,
            event_date=event,
            form={"damage_description": "Nhà ngập sâu, hỏng vách"},
        )
        self.say(
            f"  ✓ {self.when()}  chutich.muongte1 tự nộp hồ sơ nhà bị ngập cho đoàn viên "
            f"{hit.full_name} (cán bộ CĐCS đang đi hiện trường).",
            f"  ✓ {self.when()}  chutich.muongte1 files a flooded-house claim for {hit.full_name} "
            "directly (the officer is out in the field).",
        )
        self.later(0, "09:25")
        self.expect_refusal(
            lambda: self.decide("chutich.muongte1", sub.case_id),
            "chutich.muongte1 tự phê duyệt hồ sơ mình vừa nộp",
            "chutich.muongte1 tries to approve the case they submitted",
        )
        collapsed = self.cast.collapsed
        self.later(0, "09:40")
        late = self.submit(
            f"canbo.{_tag(collapsed.unit_id)}",
            "disaster",
            "house_collapsed",
            collapsed,
            campaign=True,
            event_date=event,
            form={"damage_description": "Nhà bị lũ cuốn trôi"},
        )
        self.later(0, "10:10")
        self.decide("phochutich.muongte1", sub.case_id)
        self.later(0, "15:00")
        self.pay("ketoan.ldld", sub.case_id, "UNC-TT-001")
        self.trail(sub.case_id, self.subject("disaster", "house_damaged", hit))
        return late.case_id, collapsed

    def scene_overdue(self, case_id: str, m: _Member) -> None:
        self.title(
            2,
            "Quá hạn xử lý – hệ thống tự chuyển lên cấp trên",
            "Overdue – the sweep escalates the task",
        )
        task = open_tasks(self.engine, case_id)[0]
        holder = task["role"]
        due = task["escalate_at"]
        assert isinstance(due, datetime)
        sweep = self.clock.set(due + timedelta(minutes=20))
        self.say(
            f"Đường vào bản bị sạt lở, {self.role_title(str(holder))} chưa xử lý hồ sơ nhà bị cuốn trôi.",
            f"The road is cut by landslides; the {self.role_title(str(holder))} has not acted.",
        )
        result = self.s.escalate_due(now=sweep)
        self.say(
            f"  ⟳ {self.when()}  escalate_due: {result.examined} nhiệm vụ đến hạn, "
            f"{result.changed} được chuyển lên.",
            f"  ⟳ {self.when()}  escalate_due: {result.examined} due task(s), {result.changed} escalated.",
        )
        self.clock.set(sweep + timedelta(hours=1))
        self.decide("chutich.ldld", case_id)
        self.clock.set(sweep + timedelta(hours=3))
        self.decide("chutich.cd.muongte", case_id)
        self.later(1, "09:00")
        self.pay("ketoan.ldld", case_id, "UNC-TT-002")
        self.trail(case_id, self.subject("disaster", "house_collapsed", m))

    def scene_housing(self) -> None:
        self.title(
            3,
            "Mái ấm Công đoàn – sửa chữa nhà, chi hai đợt",
            "Union Home – house repair, paid in two tranches",
        )
        self.say(
            "CĐCS xác minh → Công đoàn phường khảo sát thực tế → Thường trực LĐLĐ tỉnh quyết "
            "định → chi 50% khi khởi công, 50% khi xong phần mái.",
            "The grassroots union verifies → the ward union surveys the site → the provincial "
            "standing committee decides → 50% paid at the start of work, 50% when the roof is done.",
        )
        m = self.cast.housing
        self.later(1, "08:30")
        sub = self.submit(
            "canbo.tanphong1",
            "housing",
            "repair",
            m,
            form={
                "housing_condition": "dilapidated",
                "monthly_income_per_capita": 1_150_000,
                "land_certificate_no": "CS 04127",
            },
        )
        self.later(0, "14:00")
        self.decide("chutich.tanphong1", sub.case_id)
        self.later(2, "10:00")
        self.decide("chutich.cd.tanphong", sub.case_id)
        self.later(1, "15:00")
        self.decide("thuongtruc.ldld", sub.case_id)
        self.later(1, "09:30")
        self.pay("ketoan.ldld", sub.case_id, "UNC-MA-014")
        self.later(4, "16:00")
        self.pay("ketoan.ldld", sub.case_id, "UNC-MA-015")
        self.trail(sub.case_id, self.subject("housing", "repair", m))

    def scene_illness(self) -> None:
        self.title(
            4,
            "Ốm đau nằm viện – trả lại để bổ sung rồi duyệt",
            "Hospital stay – returned for information, then approved",
        )
        self.say(
            "Chủ tịch CĐCS trả lại hồ sơ: «Giấy ra viện chưa có dấu của bệnh viện»; cán bộ CĐCS "
            "bổ sung bản có dấu, hồ sơ được duyệt và chi tiền mặt khi đến thăm.",
            "The grassroots chair returns the case: “the discharge paper has no hospital stamp”; "
            "the officer adds a stamped copy, the case is approved and paid in cash at the visit.",
        )
        m = self.cast.illness
        self.later(1, "08:00")
        admitted = self.today() - timedelta(days=9)
        # The diagnosis category is stored but never shown: health data (Law 91/2025).
        sub = self.submit(
            "canbo.tanphong1",
            "illness",
            "hospital",
            m,
            amount=1_000_000,
            event_date=admitted,
            form={
                "admission_date": admitted.isoformat(),
                "facility": "Bệnh viện Đa khoa tỉnh Lai Châu",
                "diagnosis_category": "other",
            },
        )
        self.later(0, "10:30")
        self.decide(
            "chutich.tanphong1",
            sub.case_id,
            "return",
            "Giấy ra viện chưa có dấu của bệnh viện, đề nghị bổ sung bản có dấu.",
        )
        self.later(0, "15:00")
        self.s.provide_information(
            self.ids["canbo.tanphong1"],
            ProvideInformation(
                case_id=sub.case_id,
                note="Đã bổ sung giấy ra viện có dấu.",
                documents=[
                    DocumentIn(
                        kind="discharge_paper",
                        filename="giay_ra_vien_co_dau.pdf",
                        sha256=_sha("demo", m.id, "discharge-stamped"),
                        size=210_000,
                    )
                ],
            ),
        )
        self.later(1, "09:00")
        self.decide("chutich.tanphong1", sub.case_id)
        self.later(0, "14:00")
        self.pay("ketoan.tanphong1", sub.case_id, "PC-0112", method="cash")
        self.trail(sub.case_id, self.subject("illness", "hospital", m))

    def scene_job_loss(self) -> None:
        c = self.campaign("job_loss")
        cutoff: date = date.fromisoformat(c["params"]["dues_cutoff"])
        self.title(
            5,
            "Giảm giờ làm rồi mất việc – mức J1, sau đó bù lên J3",
            "Reduced hours, then job loss – level J1, later topped up to J3",
        )
        self.say(
            f"Đợt «{c['title']}», ngày chốt đoàn phí {cutoff:%d/%m/%Y}.",
            f"Campaign “{c['title']}”, dues cutoff {cutoff:%d/%m/%Y}.",
        )
        units = self.units_of("Đoàn Kết")[:1]
        employer = self.unit_names[units[0]].removeprefix("CĐCS ")
        m, newcomer = self.cast.laid_off, self.cast.newcomer
        self.later(1, "08:30")
        form = {"employer": employer, "affected_days": 21, "monthly_income": 3_200_000}
        j1 = self.submit(
            "canbo.doanket1",
            "job_loss",
            "reduced_hours_14",
            m,
            campaign=True,
            event_date=self.today() - timedelta(days=10),
            form=form,
        )
        self.later(0, "08:45")
        self.expect_refusal(
            lambda: self.submit(
                "canbo.doanket1",
                "job_loss",
                "reduced_hours_14",
                newcomer,
                campaign=True,
                event_date=self.today() - timedelta(days=10),
                form=form,
            ),
            f"canbo.doanket1 đưa {self.person(newcomer)} (mới vào công đoàn) vào danh sách",
            f"canbo.doanket1 lists {self.person(newcomer)} (a new member)",
        )
        self.later(0, "10:00")
        self.decide("chutich.doanket1", j1.case_id)
        self.later(0, "15:00")
        self.decide("chutich.cd.doanket", j1.case_id)
        self.later(1, "09:00")
        self.decide("thuongtruc.ldld", j1.case_id)
        self.later(0, "14:00")
        self.pay("ketoan.ldld", j1.case_id, "UNC-VL-031")
        self.trail(j1.case_id, self.subject("job_loss", "reduced_hours_14", m))
        self.say(
            "  Hai ngày sau doanh nghiệp chấm dứt hợp đồng; đoàn viên không được hưởng trợ cấp "
            "thất nghiệp nên CĐCS đề nghị mức J3 – chỉ chi phần chênh lệch.",
            "  Two days later the contract is terminated without unemployment benefit, so the "
            "union files level J3 – only the difference is paid.",
        )
        self.later(2, "08:30")
        j3 = self.submit(
            "canbo.doanket1",
            "job_loss",
            "terminated",
            m,
            campaign=True,
            event_date=self.today() - timedelta(days=1),
            form=form,
        )
        self.later(0, "10:00")
        self.decide("chutich.doanket1", j3.case_id)
        self.later(0, "15:30")
        self.decide("chutich.cd.doanket", j3.case_id)
        self.later(1, "09:00")
        self.decide("phochutich.ldld", j3.case_id)
        self.later(0, "14:00")
        self.pay("ketoan.ldld", j3.case_id, "UNC-VL-047")
        self.trail(j3.case_id, self.subject("job_loss", "terminated", m))

    def scene_tet(self) -> None:
        c = self.campaign("tet")
        units = self.units_of("Mường Tè")[:1]
        unit = units[0]
        quota = int(c["params"]["quotas"].get(unit, 0))
        self.title(
            6,
            "Tết Sum vầy – danh sách của CĐCS, chỉ tiêu và các lý do từ chối",
            "Tết Sum vầy – a grassroots list, its quota and the reasons for refusal",
        )
        self.say(
            f"«{c['title']}»: {self.unit_names[unit]} được giao {quota} suất (C13).",
            f"“{c['title']}”: {self.unit_names[unit]} has a quota of {quota} (C13).",
        )
        eligible, recent, gone = self.cast.tet_listed, self.cast.tet_new, self.cast.tet_left
        self.later(1, "08:30")
        signed = [
            DocumentIn(
                kind="signed_list",
                filename="danh_sach_niem_yet.pdf",
                sha256=_sha("demo", unit, "tet-list"),
                size=350_000,
            )
        ]

        def item(m: _Member, subtype: str, criterion: str, disaster: bool) -> CaseItem:
            return CaseItem(
                member_id=m.id,
                subtype=subtype,
                event_date=self.today(),
                form={"criterion": criterion, "disaster_area": disaster},
                documents=signed,
            )

        first, flagged, *rest = eligible
        items = [
            item(first, "standard", "disaster_or_job_loss", True),
            item(first, "standard", "low_income", False),  # the same person twice (C6)
            item(recent, "standard", "low_income", False),  # under 12 months (C7)
            item(flagged, "special_hardship", "disaster_or_job_loss", True),  # 4m > 3.3m cap (C5)
            item(gone, "standard", "low_income", False),  # left in 2025 (C3)
            *(
                item(m, "standard", "hazardous_or_remote", False) for m in rest
            ),  # the last: over quota
        ]
        results = self.s.submit_list(
            self.ids["canbo.muongte1"],
            SubmitList(policy="tet", unit_id=unit, campaign_id=c["id"], items=items),
        )
        by_id = {m.id: m for m in [*eligible, recent, gone]}
        self.say(
            f"  {self.when()}  canbo.muongte1 nộp danh sách {len(items)} người:",
            f"  {self.when()}  canbo.muongte1 submits a list of {len(items)}:",
        )
        for r in results:
            self.list_line(r, by_id[r.member_id], items[r.index])
        cases = [r.case_id for r in results if r.case_id]
        flagged_case = next(r.case_id for r in results if r.outcome == "flagged" and r.case_id)
        self.later(0, "14:00")
        for case in cases:
            self.approve_step(case, "chutich.muongte1", "phochutich.muongte1")
        self.later(1, "09:00")
        for case in cases:
            self.approve_step(case, "chutich.cd.muongte", "phochutich.cd.muongte")
        gave_up = cases[-1]
        before = self.budget_available("LC-MUONGTE", "tet")
        self.later(0, "11:00")
        self.s.withdraw(
            self.ids["canbo.muongte1"],
            gave_up,
            "Đoàn viên đã nhận quà Tết của doanh nghiệp, nhường suất cho người khác.",
        )
        after = self.budget_available("LC-MUONGTE", "tet")
        self.say(
            f"  ↩ {self.when()}  canbo.muongte1 rút một hồ sơ đã duyệt: quỹ Tết của Công đoàn "
            f"xã Mường Tè còn {self.money(before)} → {self.money(after)}, trả lại một suất.",
            f"  ↩ {self.when()}  canbo.muongte1 withdraws an approved case: the Mường Tè Tết fund "
            f"goes {self.money(before)} → {self.money(after)} and a quota place is freed.",
        )
        spare = by_id[results[-1].member_id]
        self.later(0, "11:15")
        again = self.submit(
            "canbo.muongte1",
            "tet",
            "standard",
            spare,
            campaign=True,
            form={"criterion": "hazardous_or_remote", "disaster_area": False},
            documents=signed,
        )
        self.say(
            f"  ✓ {self.when()}  nộp lại cho {spare.full_name}, người vượt chỉ tiêu lúc trước: "
            f"{self.money(again.amount)}, {self.t('được nhận', 'accepted')}.",
            f"  ✓ {self.when()}  {spare.full_name}, over the quota before, is filed again: "
            f"{self.money(again.amount)}, accepted.",
        )
        self.later(0, "15:00")
        self.approve_step(again.case_id, "chutich.muongte1")
        self.later(1, "09:00")
        self.approve_step(again.case_id, "chutich.cd.muongte")
        self.later(0, "14:00")
        payable = [x for x in [*cases, again.case_id] if x != gave_up]
        total = sum(
            self.pay("ketoan.cd.muongte", x, f"UNC-TET-{i:03d}") for i, x in enumerate(payable, 1)
        )
        self.say(
            f"  ₫ {self.when()}  ketoan.cd.muongte chi {len(payable)} suất, tổng {self.money(total)}.",
            f"  ₫ {self.when()}  ketoan.cd.muongte pays {len(payable)} gifts, {self.money(total)} in all.",
        )
        member_of = {r.case_id: by_id[r.member_id] for r in results if r.case_id}
        self.trail(flagged_case, self.subject("tet", "special_hardship", member_of[flagged_case]))
        self.trail(gave_up, self.subject("tet", "standard", member_of[gave_up]))

    def list_line(self, r: ListItemResult, m: _Member, item: CaseItem) -> None:
        """One list item: its outcome and why (criterion for accepted, rule for the others)."""
        mark = {"accepted": "✓", "flagged": "⚑", "refused": "✗"}[r.outcome]
        word = {
            "accepted": ("nhận", "accepted"),
            "flagged": ("nhận, gắn cờ", "accepted, flagged"),
            "refused": ("từ chối", "refused"),
        }[r.outcome][0 if self.lang == "vi" else 1]
        line = f"    {mark} {r.index + 1}. {self.person(m)}: {word}"
        if r.case_id:
            status = case_status(self.engine, r.case_id)
            assert status is not None
            line += f" · {self.money(_int(status['entitled_amount']))}"
            label = _CRITERIA.get(str(item.form.get("criterion")), ("", ""))
            line += f" – {label[0] if self.lang == 'vi' else label[1]}"
            if item.form.get("disaster_area"):
                line += self.t("; vùng thiên tai", "; disaster area")
        checks: list[dict[str, object]] = list(r.checks)
        if r.outcome == "flagged" and r.case_id:
            # The flag's reason is in the submission's audit entry.
            first = case_trail(self.engine, r.case_id)[0].payload.get("checks")
            checks = [c for c in first if isinstance(c, dict)] if isinstance(first, list) else []
        self.emit(line, INDENT)
        wanted = "failed" if r.outcome == "refused" else "flagged"
        hit = next((c for c in checks if c.get("outcome") == wanted), None)
        if hit is not None:
            params = hit.get("params")
            reason = translate(
                str(hit.get("reason")), self.lang, **(params if isinstance(params, dict) else {})
            )
            self.emit(f"{INDENT}[{hit.get('code')}] {reason}", INDENT + "  ")

    def ending(self) -> None:
        result = verify_audit(self.engine)
        self.out("")
        if result.ok:
            self.say(
                f"Chuỗi nhật ký kiểm toán: hợp lệ, {result.checked} mục "
                f"(đầu chuỗi ⛓ {result.head_hash[:12]}).",
                f"Audit chain: valid, {result.checked} entries (head ⛓ {result.head_hash[:12]}).",
            )
        else:
            self.say(
                f"Chuỗi nhật ký kiểm toán: KHÔNG hợp lệ tại mục {result.broken_seq}: "
                f"{result.problem_in('vi')}",
                f"Audit chain: INVALID at entry {result.broken_seq}: {result.problem}",
            )


def _story_start(app: App, real_now: datetime) -> tuple[datetime, bool]:
    """Where the story clock starts, and whether the story has to seed first."""
    cal = app.service.calendar
    seeded = seeded_at(app)
    if seeded is None:
        day = (real_now - timedelta(days=STORY_DAYS)).astimezone(VN_TZ).date()
        while not cal.is_working_day(day):
            day -= timedelta(days=1)
        return datetime.combine(day, time(7, 30), VN_TZ), True
    # Campaign windows were set relative to the seeding day: start there (or the next
    # working morning), never before the seed itself.
    local = seeded.astimezone(VN_TZ)
    day = local.date() if local.time() < time(8, 0) else local.date() + timedelta(days=1)
    while not cal.is_working_day(day):
        day += timedelta(days=1)
    return max(seeded, datetime.combine(day, time(7, 30), VN_TZ)), False


def run_demo(app: App, *, lang: Lang = "vi", out: Callable[[str], None] = print) -> None:
    """Seed the demo world if needed, then play the scripted story and print its trails.

    The story needs a database without cases: it raises DemoError when cases exist (run it
    on a fresh or freshly seeded database). It runs on its own clock, starting about
    STORY_DAYS days before now when it seeds, or at the seeding day otherwise; the
    service's clock is restored afterwards.
    """
    with app.engine.connect() as conn:
        has_cases = conn.execute(select(CASE.c.id).limit(1)).first() is not None
    if has_cases:
        raise DemoError(
            "Cơ sở dữ liệu đã có hồ sơ; câu chuyện mẫu cần cơ sở dữ liệu mới (chưa có hồ sơ nào)."
            if lang == "vi"
            else "The database already has cases; the demo story needs a fresh database (no cases)."
        )
    original = app.service.clock
    start, must_seed = _story_start(app, original())
    clock = DemoClock(start)
    app.service.clock = clock
    try:
        if must_seed:
            seed_demo(app)
        story = _Story(app, lang, out, clock)
        story.intro(must_seed)
        late_case, late_member = story.scene_flood()
        story.scene_overdue(late_case, late_member)
        story.scene_housing()
        story.scene_illness()
        story.scene_job_loss()
        story.scene_tet()
        story.ending()
    finally:
        app.service.clock = original
