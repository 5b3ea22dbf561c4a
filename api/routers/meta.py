"""Health, who-am-I, and the loaded policy definitions."""

from dataclasses import asdict
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.auth import Caller
from api.deps import CallerLang, Welfare
from api.problems import problems, render, request_lang
from domain.adapters.db import READ_ONLY
from domain.adapters.definitions import DefinitionStore
from domain.i18n import translate
from domain.roles import ROLE_TITLES
from domain.service.directory import list_campaigns
from domain.workflow import Localized

router = APIRouter(tags=["meta"])
v1 = APIRouter(prefix="/api/v1")


class Health(BaseModel):
    """The service and its database are up."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok", "database": "ok"}]})
    status: str = Field(description="`ok` when the API answers.", examples=["ok"])
    database: str = Field(description="`ok` when the database answered a query.", examples=["ok"])


@router.get(
    "/healthz",
    response_model=Health,
    summary="Health check",
    description="Answers 200 when the API and its database work, 503 (problem) otherwise. "
    "No token needed.",
    responses=problems(503),
)
def healthz(request: Request, app: Welfare) -> Health | JSONResponse:
    try:
        with app.engine.connect().execution_options(**READ_ONLY) as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        lang = request_lang(request)
        return render(
            request,
            status=503,
            code="service_unavailable",
            title=translate("service_unavailable", lang),
            detail=None,
            headers={"Retry-After": "5"},
        )
    return Health(status="ok", database="ok")


class Grant(BaseModel):
    """One role the account holds at an org unit."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "role": "grassroots_officer",
                    "role_title": "Cán bộ Công đoàn cơ sở",
                    "unit_id": "LC-TANPHONG-CS1",
                }
            ]
        }
    )
    role: str = Field(description="Role code.", examples=["grassroots_officer"])
    role_title: str = Field(description="The role's name in the caller's language.")
    unit_id: str = Field(description="The org unit the role is held at.", examples=["LC-TANPHONG"])


class Me(BaseModel):
    """The logged-in account, its role grants and the org units it reaches."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "0192f7a0-…",
                    "username": "canbo.tanphong1",
                    "display_name": "Lò Văn Thắng",
                    "grants": [
                        {
                            "role": "grassroots_officer",
                            "role_title": "Cán bộ Công đoàn cơ sở",
                            "unit_id": "LC-TANPHONG-CS01",
                        }
                    ],
                    "scope": ["LC-TANPHONG-CS01"],
                }
            ]
        }
    )
    account_id: str = Field(description="The account id (the token's subject).")
    username: str = Field(description="Log-in name.")
    display_name: str = Field(description="Name shown to people.")
    grants: list[Grant] = Field(description="Roles held today, each at an org unit.")
    scope: list[str] = Field(description="Every org unit the caller's roles reach (sorted).")


@v1.get(
    "/me",
    response_model=Me,
    summary="Who am I",
    description="The calling account, its roles today and the org units they reach.",
    responses=problems(401),
    tags=["auth"],
)
def me(caller: Caller, lang: CallerLang) -> Me:
    i = 0 if lang == "vi" else 1
    return Me(
        account_id=caller.account_id,
        username=caller.username,
        display_name=caller.display_name,
        grants=[
            Grant(role=r.value, role_title=ROLE_TITLES[r][i], unit_id=u) for r, u in caller.grants
        ],
        scope=sorted(caller.units()),
    )


class PolicyVersion(BaseModel):
    """One published version of a policy definition."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"version": 1, "current": True}]})
    version: int = Field(description="Definition version; a case keeps the one it was filed under.")
    current: bool = Field(description="New cases are filed under this version.")


class PolicySummary(BaseModel):
    """A loaded policy definition and its versions."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "illness",
                    "title": "Hỗ trợ đoàn viên ốm đau, tai nạn",
                    "version": 1,
                    "versions": [{"version": 1, "current": True}],
                    "campaign": False,
                    "subtypes": ["serious_illness", "hospital_stay"],
                }
            ]
        }
    )
    code: str = Field(description="Policy code (the definition file name).", examples=["housing"])
    title: str = Field(description="Title in the caller's language.")
    version: int = Field(description="Current version.")
    versions: list[PolicyVersion] = Field(description="Every loaded version.")
    campaign: bool = Field(description="Cases are filed within a declared campaign.")
    subtypes: list[str] = Field(description="Subtype codes.")


class FormFieldOut(BaseModel):
    """One field of a policy's case form; `sensitive` fields are shown only to those who need them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "diagnosis_category",
                    "type": "choice",
                    "required": False,
                    "sensitive": True,
                    "choices": ["cancer", "other"],
                }
            ]
        }
    )
    name: str = Field(description="Field name in `form`.")
    type: str = Field(description="text | integer | money | boolean | date | choice …")
    required: bool = Field(description="Must be given at submission.")
    sensitive: bool = Field(description="Health data: redacted for roles that do not need it.")
    choices: list[str] | None = Field(default=None, description="Allowed values of a choice.")


class SubtypeOut(BaseModel):
    """A subtype of a policy and the documents it needs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "hospital",
                    "title": "Thăm hỏi ốm đau nằm viện",
                    "documents": ["discharge_paper", "cccd", "health_data_consent"],
                }
            ]
        }
    )
    code: str = Field(description="Subtype code.")
    title: str = Field(description="Title in the caller's language.")
    documents: list[str] = Field(description="Document kinds required.")


class PolicyDetail(PolicySummary):
    """A loaded policy definition: its form, subtypes with their documents, and steps."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "illness",
                    "title": "Thăm hỏi, hỗ trợ đoàn viên ốm đau, bệnh hiểm nghèo, tai nạn lao động và tử vong",
                    "version": 1,
                    "versions": [{"version": 1, "current": True}],
                    "campaign": False,
                    "subtypes": ["hospital"],
                    "form": [
                        {"name": "facility", "type": "text", "required": False, "sensitive": False},
                        {
                            "name": "diagnosis_category",
                            "type": "choice",
                            "required": False,
                            "sensitive": True,
                            "choices": ["cancer", "other"],
                        },
                    ],
                    "subtype_details": [
                        {
                            "code": "hospital",
                            "title": "Thăm hỏi ốm đau nằm viện",
                            "documents": ["discharge_paper", "cccd", "health_data_consent"],
                        }
                    ],
                    "steps": ["screening", "grassroots_review", "payment_grassroots"],
                }
            ]
        }
    )
    form: list[FormFieldOut] = Field(description="The case form's fields.")
    subtype_details: list[SubtypeOut] = Field(description="Each subtype with its documents.")
    steps: list[str] = Field(description="Step ids of the workflow, in definition order.")


def _title(text: Localized, lang: str) -> str:
    return text.vi if lang == "vi" else text.en


def _summary(defs: DefinitionStore, code: str, lang: str) -> PolicySummary:
    d = defs.current(code)
    versions = sorted(v for (p, v) in defs.versions if p == code)
    return PolicySummary(
        code=code,
        title=_title(d.title, lang),
        version=d.version,
        versions=[PolicyVersion(version=v, current=v == d.version) for v in versions],
        campaign=d.campaign is not None,
        subtypes=list(d.subtypes),
    )


@v1.get(
    "/policies",
    response_model=list[PolicySummary],
    summary="Loaded policy definitions",
    description="Every policy with its current and loaded versions.",
    responses=problems(401),
)
def policies(app: Welfare, caller: Caller, lang: CallerLang) -> list[PolicySummary]:
    del caller
    return [_summary(app.definitions, c, lang) for c in app.definitions.policies()]


@v1.get(
    "/policies/{code}",
    response_model=PolicyDetail,
    summary="One policy definition",
    description="The current version's form, subtypes with their documents, and steps.",
    responses=problems(401, 404),
)
def policy(
    app: Welfare,
    caller: Caller,
    lang: CallerLang,
    code: Annotated[str, Path(max_length=40, description="Policy code.", examples=["housing"])],
) -> PolicyDetail:
    del caller
    d = app.definitions.current(code)  # NotFound for an unknown policy
    base = _summary(app.definitions, code, lang)
    return PolicyDetail(
        **base.model_dump(),
        form=[
            FormFieldOut(
                name=n,
                type=str(f.type.value),
                required=f.required,
                sensitive=f.sensitive,
                choices=f.choices,
            )
            for n, f in d.form.items()
        ],
        subtype_details=[
            SubtypeOut(code=c, title=_title(s.title, lang), documents=list(s.documents))
            for c, s in d.subtypes.items()
        ],
        steps=list(d.steps),
    )


class CampaignOut(BaseModel):
    """A declared campaign (Tết, disaster, job loss): the `campaign_id` of a campaign list."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0192f7a0-aaaa-7000-8000-000000000002",
                    "policy": "tet",
                    "code": "tet-2027",
                    "title": "Tết Sum vầy – Xuân Đinh Mùi 2027",
                    "opens_on": "2026-11-15",
                    "closes_on": "2027-01-31",
                    "event_from": "2026-11-15",
                    "event_to": "2027-01-31",
                    "affected_communes": [],
                    "quotas": {"LC-TANPHONG-CS1": 5},
                    "open": True,
                }
            ]
        }
    )
    id: str = Field(description="Campaign id: `campaign_id` of a case or a campaign list.")
    policy: str = Field(description="The policy it is declared for.", examples=["tet"])
    code: str = Field(description="Short code.", examples=["tet-2027"])
    title: str = Field(description="Title, as declared.")
    opens_on: date = Field(description="First day lists may be filed.")
    closes_on: date = Field(description="Last day lists may be filed.")
    event_from: date = Field(description="Events (e.g. a disaster) from this day count.")
    event_to: date = Field(description="Events up to this day count.")
    affected_communes: list[str] = Field(description="Disaster campaigns: the communes hit.")
    quotas: dict[str, int] = Field(
        description="Places per grassroots union, for the caller's units only (C13)."
    )
    open: bool = Field(description="Lists may be filed today.")


@v1.get(
    "/campaigns",
    response_model=list[CampaignOut],
    summary="Declared campaigns",
    description="Campaigns newest first, optionally of one `policy` and only those open "
    "today: officers find here the `campaign_id` of a Tết, disaster or job-loss list and "
    "their unit's quota.",
    responses=problems(401, 422),
)
def campaigns(
    app: Welfare,
    caller: Caller,
    policy: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$")] = None,
    open_only: Annotated[bool, Query(alias="open", description="Only those open today.")] = False,
) -> list[CampaignOut]:
    views = list_campaigns(
        app.engine, caller.units(), app.service.clock(), policy=policy, open_only=open_only
    )
    return [CampaignOut(**asdict(v)) for v in views]


router.include_router(v1)  # last: include_router copies the routes declared so far
