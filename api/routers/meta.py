"""Health, who-am-I, and the loaded policy definitions."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
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
from domain.workflow import Localized

router = APIRouter(tags=["meta"])
v1 = APIRouter(prefix="/api/v1")


class Health(BaseModel):
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
    role: str = Field(description="Role code.", examples=["grassroots_officer"])
    role_title: str = Field(description="The role's name in the caller's language.")
    unit_id: str = Field(description="The org unit the role is held at.", examples=["LC-TANPHONG"])


class Me(BaseModel):
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
    version: int = Field(description="Definition version; a case keeps the one it was filed under.")
    current: bool = Field(description="New cases are filed under this version.")


class PolicySummary(BaseModel):
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
    name: str = Field(description="Field name in `form`.")
    type: str = Field(description="text | integer | money | boolean | date | choice …")
    required: bool = Field(description="Must be given at submission.")
    sensitive: bool = Field(description="Health data: redacted for roles that do not need it.")
    choices: list[str] | None = Field(default=None, description="Allowed values of a choice.")


class SubtypeOut(BaseModel):
    code: str = Field(description="Subtype code.")
    title: str = Field(description="Title in the caller's language.")
    documents: list[str] = Field(description="Document kinds required.")


class PolicyDetail(PolicySummary):
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


router.include_router(v1)
