"""Complaints over HTTP: who may file, who sees them, who resolves them, and the audit trail."""

from sqlalchemy import select

from domain.adapters.repository import AUDIT
from domain.roles import Role
from tests.api.conftest import TestClient, bearer, problem
from tests.support import World

TEXT = "Gia đình tôi chưa nhận được tiền hỗ trợ\ndù hồ sơ đã được duyệt."


def _case(world: World, unit: str = "CS-A", officer: str = "officer_a") -> tuple[str, str]:
    member = world.member(unit)
    sub = world.submit("housing", "repair", member, unit=unit, by=officer)
    return sub.case_id, member


class TestFiling:
    def test_the_member_files_and_the_text_stays_out_of_the_audit_log(
        self, client: TestClient, world: World
    ) -> None:
        case_id, member = _case(world)
        world.account("member_a", Role.MEMBER, "CS-A", member_id=member)
        r = client.post(
            f"/api/v1/cases/{case_id}/complaints",
            headers=bearer(world, "member_a"),
            json={"kind": "complaint", "text": TEXT},
        )
        assert r.status_code == 201, r.text
        c = r.json()
        assert c["status"] == "open"
        assert c["text"] == TEXT
        assert c["kind"] == "complaint"
        assert c["handling_unit_id"] == "TP"  # nobody decided yet: the level above grassroots
        with world.app.engine.connect() as conn:
            payloads = [p for (p,) in conn.execute(select(AUDIT.c.payload))]
            filed = [
                p
                for (p,) in conn.execute(
                    select(AUDIT.c.payload).where(AUDIT.c.entity_id == c["id"])
                )
            ]
        assert not any("chưa nhận" in p for p in payloads)
        assert len(filed) == 1
        assert "text_sha256" in filed[0]

    def test_the_units_officer_files_feedback_others_get_404(
        self, client: TestClient, world: World
    ) -> None:
        case_id, _ = _case(world)
        other_member = world.member("CS-A")
        world.account("member_other", Role.MEMBER, "CS-A", member_id=other_member)
        ok = client.post(
            f"/api/v1/cases/{case_id}/complaints",
            headers=bearer(world, "officer_a"),
            json={"kind": "feedback", "text": "Cảm ơn Công đoàn"},
        )
        assert ok.status_code == 201
        for who in ("officer_b", "member_other", "officer_c"):
            problem(
                client.post(
                    f"/api/v1/cases/{case_id}/complaints",
                    headers=bearer(world, who),
                    json={"kind": "complaint", "text": "x"},
                ),
                404,
            )
        for who in ("chair_a", "auditor", "upper_tp"):  # they may read the case: 403
            problem(
                client.post(
                    f"/api/v1/cases/{case_id}/complaints",
                    headers=bearer(world, who),
                    json={"kind": "complaint", "text": "x"},
                ),
                403,
            )
        problem(
            client.post(
                f"/api/v1/cases/{case_id}/complaints",
                headers=bearer(world, "officer_a"),
                json={"kind": "rumour", "text": "x"},
            ),
            422,
            "validation_error",
        )
        problem(
            client.post(
                f"/api/v1/cases/{case_id}/complaints",
                headers=bearer(world, "officer_a"),
                json={"kind": "complaint", "text": "a\x00b"},
            ),
            422,
        )

    def test_a_retried_filing_with_the_same_key_files_once(
        self, client: TestClient, world: World
    ) -> None:
        case_id, _ = _case(world)
        h = {**bearer(world, "officer_a"), "Idempotency-Key": "complaint-1"}
        body = {"kind": "complaint", "text": TEXT}
        first = client.post(f"/api/v1/cases/{case_id}/complaints", headers=h, json=body)
        again = client.post(f"/api/v1/cases/{case_id}/complaints", headers=h, json=body)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert again.headers.get("Idempotent-Replayed") == "true"
        listed = client.get("/api/v1/complaints", headers=bearer(world, "officer_a")).json()
        assert len(listed["items"]) == 1


class TestReadingAndResolving:
    def test_lifecycle_and_scope(self, client: TestClient, world: World) -> None:
        case_id, _ = _case(world)
        world.account("auditor_dk", Role.AUDITOR, "DK")
        cid = client.post(
            f"/api/v1/cases/{case_id}/complaints",
            headers=bearer(world, "officer_a"),
            json={"kind": "complaint", "text": TEXT},
        ).json()["id"]
        # Who sees it: the filer, the auditors whose units reach the case; not others.
        for who in ("officer_a", "auditor_tp", "auditor"):
            r = client.get(f"/api/v1/complaints/{cid}", headers=bearer(world, who))
            assert r.status_code == 200, (who, r.text)
            assert [
                c["id"]
                for c in client.get("/api/v1/complaints", headers=bearer(world, who)).json()[
                    "items"
                ]
            ] == [cid]
        for who in ("officer_a2", "officer_b", "auditor_dk", "chair_a"):
            problem(client.get(f"/api/v1/complaints/{cid}", headers=bearer(world, who)), 404)
            assert (
                client.get("/api/v1/complaints", headers=bearer(world, who)).json()["items"] == []
            )
        # Who resolves: an auditor at the handling unit (TP) or above; others never.
        for who in ("officer_a", "auditor_dk"):
            problem(
                client.post(
                    f"/api/v1/complaints/{cid}/resolution",
                    headers=bearer(world, who),
                    json={"resolution": "Đã xem xét"},
                ),
                403 if who == "officer_a" else 404,
            )
        r = client.post(
            f"/api/v1/complaints/{cid}/resolution",
            headers=bearer(world, "auditor_tp"),
            json={"resolution": "Đã xác minh và giải quyết."},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "resolved"
        assert r.json()["resolved_by"] == world.accounts["auditor_tp"]
        problem(
            client.post(
                f"/api/v1/complaints/{cid}/resolution",
                headers=bearer(world, "auditor"),
                json={"resolution": "Lần hai"},
            ),
            409,
            "transition_not_allowed",
        )
        listed = client.get(
            "/api/v1/complaints", headers=bearer(world, "auditor"), params={"status": "open"}
        )
        assert listed.json()["items"] == []
        # The trail of the case shows the complaint's filing and resolution.
        trail = client.get(
            f"/api/v1/cases/{case_id}/trail", headers=bearer(world, "auditor")
        ).json()
        assert [e["action"] for e in trail["entries"]][-2:] == [
            "complaint.filed",
            "complaint.resolved",
        ]

    def test_unknown_complaint_is_404(self, client: TestClient, world: World) -> None:
        problem(client.get("/api/v1/complaints/nope", headers=bearer(world, "auditor")), 404)
        problem(
            client.post(
                "/api/v1/complaints/nope/resolution",
                headers=bearer(world, "auditor"),
                json={"resolution": "x"},
            ),
            404,
        )
