"""What the union officials ran into when using the API by hand (review of issue 3).

Each test here failed before its fix: an officer could not look up the member a case is for,
validation details came in English to a Vietnamese caller, …
"""

from tests.api.conftest import TestClient, bearer, problem
from tests.support import World


class TestOfficersFindTheirMembers:
    """A case names its member by id: the officers who file cases must be able to find it."""

    def test_officer_and_chair_list_their_own_units_members_only(
        self, client: TestClient, world: World
    ) -> None:
        own = world.member("CS-A", name="Lò Thị Mai")
        foreign = world.member("CS-C", name="Lò Thị Mai")
        for who in ("officer_a", "chair_a"):
            r = client.get(
                "/api/v1/members", params={"q": "lo thi mai"}, headers=bearer(world, who)
            )
            assert r.status_code == 200, r.text
            assert [m["id"] for m in r.json()["items"]] == [own]
            assert foreign not in r.text
            # naming a foreign unit gives nothing, not its members
            r = client.get(
                "/api/v1/members", params={"unit_id": "CS-C"}, headers=bearer(world, who)
            )
            assert r.status_code == 200, r.text
            assert r.json()["items"] == []

    def test_other_roles_still_may_not_list_members(self, client: TestClient, world: World) -> None:
        for who in ("treasurer_a", "upper_tp", "auditor"):
            problem(client.get("/api/v1/members", headers=bearer(world, who)), 403)


class TestVietnameseDetails:
    """A Vietnamese caller reads Vietnamese sentences, not English words inside them."""

    def test_validation_details_are_translated(self, client: TestClient, world: World) -> None:
        h = bearer(world, "officer_a")
        r = client.get("/api/v1/cases", params={"limit": 0}, headers=h)
        body = problem(r, 422, "validation_error")
        assert body["errors"] == [
            {
                "field": "limit",
                "location": "query",
                "message": "Phải lớn hơn hoặc bằng 1",
                "type": "greater_than_equal",
            }
        ]
        assert body["detail"] == "limit: Phải lớn hơn hoặc bằng 1"
        r = client.get("/api/v1/cases", params={"limit": "abc"}, headers=h)
        assert problem(r, 422)["detail"] == "limit: Phải là số nguyên"
        # English keeps pydantic's own message
        r = client.get("/api/v1/cases", params={"limit": 0}, headers={**h, "Accept-Language": "en"})
        assert problem(r, 422)["detail"] == "limit: Input should be greater than or equal to 1"

    def test_domain_words_inside_messages_are_translated(
        self, client: TestClient, world: World
    ) -> None:
        case_id = world.submit("housing", "repair", world.member()).case_id
        h = bearer(world, "officer_a")
        url = f"/api/v1/cases/{case_id}/withdrawal"
        assert client.post(url, json={"reason": "Rút"}, headers=h).status_code == 200
        body = problem(client.post(url, json={"reason": "Rút"}, headers=h), 409)
        assert body["detail"] == "Không thể rút hồ sơ khi hồ sơ ở trạng thái đã rút hồ sơ"
        en = client.post(url, json={"reason": "Rút"}, headers={**h, "Accept-Language": "en"})
        assert problem(en, 409)["detail"] == "Cannot withdraw while the case is withdrawn"


class TestTheDocsPage:
    """/docs is where officials and integrators learn the API: every model explains itself."""

    def test_every_model_has_a_description_and_an_example(self, client: TestClient) -> None:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
        undocumented, no_example = [], []
        for name, schema in schemas.items():
            if name.startswith("Body_"):
                continue  # FastAPI's own wrapper of a form body (its fields are documented)
            if not schema.get("description"):
                undocumented.append(name)
            props = schema.get("properties", {})
            if schema.get("type") == "object" and not (
                schema.get("examples")
                or all("examples" in p or "$ref" in p for p in props.values())
            ):
                no_example.append(name)
        assert undocumented == []
        assert no_example == []
        # one model per name: no module-qualified duplicates such as api__models__CheckOut
        assert not [n for n in schemas if "__" in n]

    def test_every_models_examples_are_valid_instances_of_it(self) -> None:
        """An example that its own model refuses misleads whoever copies it from /docs."""
        import importlib

        from pydantic import BaseModel, ValidationError

        wrong = []
        for module in (
            "api.models",
            "api.problems",
            "api.auth",
            "api.routers.admin",
            "api.routers.audit",
            "api.routers.complaints",
            "api.routers.meta",
        ):
            mod = importlib.import_module(module)
            for name, cls in vars(mod).items():
                if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
                    continue
                extra = cls.model_config.get("json_schema_extra")
                examples = extra.get("examples") if isinstance(extra, dict) else None
                for example in examples if isinstance(examples, list) else []:
                    try:
                        cls.model_validate(example)
                    except ValidationError as e:
                        wrong.append((module, name, str(e)[:200]))
        assert wrong == []


class TestOfficersFindTheirCampaign:
    """A campaign list names its campaign by id: officers must be able to find it and their quota."""

    def test_campaigns_open_today_with_the_quota_of_my_units_only(
        self, client: TestClient, world: World
    ) -> None:
        from datetime import timedelta

        today = world.clock.today()
        tet = world.campaign("tet", "tet-2027", quotas={"CS-A": 5, "CS-C": 2})
        closed = world.campaign(
            "tet",
            "tet-2026",
            opens_on=today - timedelta(days=400),
            closes_on=today - timedelta(days=300),
        )
        r = client.get("/api/v1/campaigns", headers=bearer(world, "officer_a"))
        assert r.status_code == 200, r.text
        by_id = {c["id"]: c for c in r.json()}
        assert set(by_id) >= {tet, closed}
        assert by_id[tet]["open"] is True
        assert by_id[closed]["open"] is False
        assert by_id[tet]["quotas"] == {"CS-A": 5}  # not CS-C's
        r = client.get(
            "/api/v1/campaigns",
            params={"policy": "tet", "open": "true"},
            headers=bearer(world, "officer_a"),
        )
        assert [c["id"] for c in r.json()] == [tet]
        assert client.get("/api/v1/campaigns").status_code == 401


def test_an_unknown_route_says_not_found_in_the_callers_language(
    client: TestClient, world: World
) -> None:
    h = bearer(world, "officer_a")
    body = problem(client.get("/api/v1/nothing-here", headers=h), 404, "not_found")
    assert body["detail"] == body["title"] == "Không tìm thấy"
    en = client.get("/api/v1/nothing-here", headers={**h, "Accept-Language": "en"})
    assert problem(en, 404)["detail"] == "Not found"
