"""Auditors over HTTP: a case's trail, audit search, chain verification, the case dossier."""

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select

from domain.adapters.repository import AUDIT, MEMBER
from domain.audit import canonical_json, new_signing_key
from domain.service.queries import checkpoint
from tests.api.conftest import TestClient, bearer, problem
from tests.support import World


def _tamper(engine: Engine, sql: str) -> None:
    """What a DBA could do: bypass the append-only trigger, then edit (as test_audit_chain does)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_change")
            conn.exec_driver_sql(sql)
            conn.exec_driver_sql("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_no_change")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_entry_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_entry_no_delete")
            conn.exec_driver_sql(sql)


def _decided_case(world: World, unit: str = "CS-A", officer: str = "officer_a") -> str:
    chair = {"CS-A": "chair_a", "CS-B": "chair_b", "CS-C": "chair_c"}[unit]
    sub = world.submit("housing", "repair", world.member(unit), unit=unit, by=officer)
    world.decide(sub.case_id, chair)
    return sub.case_id


class TestTrail:
    def test_every_entry_says_who_role_when_what_version_checks_and_hash_link(
        self, client: TestClient, world: World
    ) -> None:
        case_id = _decided_case(world)
        r = client.get(f"/api/v1/cases/{case_id}/trail", headers=bearer(world, "auditor"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["case_id"] == case_id
        assert body["unit_id"] == "CS-A"
        assert body["all_ok"]
        entries = body["entries"]
        assert [e["action"] for e in entries] == ["case.submitted", "case.screened", "task.decided"]
        submitted, _, decided = entries
        assert submitted["actor_id"] == world.accounts["officer_a"]
        assert submitted["actor_role"] == "grassroots_officer"
        assert submitted["org_unit_id"] == "CS-A"
        assert submitted["policy"] == "housing"
        assert submitted["policy_version"] == 1
        assert submitted["at"].endswith("Z")
        assert {c["outcome"] for c in submitted["checks"]} <= {"passed", "flagged"}
        assert any(c["rule"] == "cccd_plausible" for c in submitted["checks"])
        assert decided["actor_id"] == world.accounts["chair_a"]
        assert decided["actor_role"] == "grassroots_chair"
        assert decided["checks"], "the approval records the checks that guarded it"
        for e in entries:
            assert len(e["entry_hash"]) == 64
            assert len(e["prev_hash"]) == 64
            assert e["content_ok"]
            assert e["link_ok"]
        # The hash link is the stored hash of the entry just before, in the whole chain.
        with world.app.engine.connect() as conn:
            prev = conn.execute(
                select(AUDIT.c.entry_hash).where(AUDIT.c.seq == decided["seq"] - 1)
            ).scalar_one()
        assert decided["prev_hash"] == prev

    def test_a_tampered_entry_is_named_in_the_trail_and_by_verification(
        self, client: TestClient, world: World
    ) -> None:
        case_id = _decided_case(world)
        h = bearer(world, "auditor")
        target = client.get(f"/api/v1/cases/{case_id}/trail", headers=h).json()["entries"][1]
        _tamper(
            world.app.engine,
            "UPDATE audit_entry SET payload = replace(payload, 'passed', 'pas5ed') "
            f"WHERE seq = {target['seq']}",
        )
        trail = client.get(f"/api/v1/cases/{case_id}/trail", headers=h).json()
        assert not trail["all_ok"]
        bad = [e["seq"] for e in trail["entries"] if not e["content_ok"]]
        assert bad == [target["seq"]]
        v = client.post("/api/v1/audit/verification", headers=h, json={})
        assert v.status_code == 200
        assert v.json()["ok"] is False
        assert v.json()["broken_seq"] == target["seq"]
        assert v.json()["problem_code"] == "audit_entry_altered"
        assert v.json()["problem"] == "nội dung không khớp với mã băm (mục đã bị sửa)"
        english = client.post(
            "/api/v1/audit/verification", headers={**h, "Accept-Language": "en"}, json={}
        )
        assert "altered" in english.json()["problem"]

    def test_scope_foreign_case_is_404_other_roles_403_no_token_401(
        self, client: TestClient, world: World
    ) -> None:
        in_tp = _decided_case(world, "CS-A")
        in_dk = _decided_case(world, "CS-C", "officer_c")
        tp = bearer(world, "auditor_tp")
        assert client.get(f"/api/v1/cases/{in_tp}/trail", headers=tp).status_code == 200
        problem(client.get(f"/api/v1/cases/{in_dk}/trail", headers=tp), 404, "not_found")
        problem(client.get("/api/v1/cases/no-such-case/trail", headers=tp), 404, "not_found")
        problem(
            client.get(f"/api/v1/cases/{in_tp}/trail", headers=bearer(world, "officer_a")),
            403,
            "permission_denied",
        )
        problem(client.get(f"/api/v1/cases/{in_tp}/trail"), 401)


class TestVerification:
    def test_clean_chain_verifies(self, client: TestClient, world: World) -> None:
        _decided_case(world)
        r = client.post("/api/v1/audit/verification", headers=bearer(world, "auditor"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ok"]
        assert body["broken_seq"] is None
        assert body["checked"] == body["head_seq"] > 0

    def test_against_a_signed_checkpoint_and_a_wrong_key(
        self, client: TestClient, world: World
    ) -> None:
        _decided_case(world)
        private, public = new_signing_key()
        cp = checkpoint(world.app.engine, world.clock(), private).to_json()
        h = bearer(world, "auditor")
        _decided_case(world)  # the chain grows after the checkpoint: still fine
        good = client.post(
            "/api/v1/audit/verification",
            headers=h,
            json={"checkpoint": cp, "public_key_pem": public.decode()},
        ).json()
        assert good["ok"]
        assert good["signature_ok"] is True
        assert good["checkpoint_seq"] == cp["seq"] < good["head_seq"]
        _, other = new_signing_key()
        wrong = client.post(
            "/api/v1/audit/verification",
            headers=h,
            json={"checkpoint": cp, "public_key_pem": other.decode()},
        ).json()
        assert wrong["ok"] is False
        assert wrong["signature_ok"] is False
        forged = {**cp, "entry_hash": "0" * 64}
        moved = client.post(
            "/api/v1/audit/verification", headers=h, json={"checkpoint": forged}
        ).json()
        assert moved["ok"] is False
        assert moved["problem_code"] == "audit_checkpoint_differs"
        assert "chuỗi đã bị viết lại" in moved["problem"]
        garbage = {**cp, "signature": base64.b64encode(b"x" * 64).decode()}
        r = client.post(
            "/api/v1/audit/verification",
            headers=h,
            json={"checkpoint": garbage, "public_key_pem": public.decode()},
        )
        assert r.json()["signature_ok"] is False
        problem(
            client.post(
                "/api/v1/audit/verification",
                headers=h,
                json={"checkpoint": cp, "public_key_pem": "not a key"},
            ),
            422,
            "invalid_field",
        )

    def test_only_auditors_verify(self, client: TestClient, world: World) -> None:
        problem(
            client.post("/api/v1/audit/verification", headers=bearer(world, "province_standing")),
            403,
        )


class TestSearch:
    def _search(self, client: TestClient, world: World, who: str = "auditor", **q: Any) -> Any:
        r = client.get("/api/v1/audit/entries", headers=bearer(world, who), params=q)
        assert r.status_code == 200, r.text
        return r.json()

    def test_filters_by_member_unit_policy_actor_action_and_period(
        self, client: TestClient, world: World
    ) -> None:
        m1 = world.member("CS-A")
        a = world.submit("housing", "repair", m1)
        world.decide(a.case_id, "chair_a")
        world.clock.advance(days=2)
        start = world.clock()
        m2 = world.member("CS-B")
        b = world.submit("housing", "repair", m2, unit="CS-B", by="officer_b")
        by_member = self._search(client, world, member_id=m1)["items"]
        assert {e["case_id"] for e in by_member} == {a.case_id, None}
        assert next(e["action"] for e in by_member) == "member.added"
        assert {e["action"] for e in by_member} >= {"case.submitted", "task.decided"}
        by_unit = self._search(client, world, org_unit_id="CS-B")["items"]
        assert by_unit
        assert {e["unit_id"] for e in by_unit} == {"CS-B"}
        assert b.case_id in {e["case_id"] for e in by_unit}
        by_policy = self._search(client, world, policy="housing")["items"]
        assert {e["policy"] for e in by_policy} == {"housing"}
        by_actor = self._search(client, world, actor_id=world.accounts["chair_a"])["items"]
        assert [e["action"] for e in by_actor] == ["task.decided"]
        by_action = self._search(client, world, action="case.submitted")["items"]
        assert {e["case_id"] for e in by_action} == {a.case_id, b.case_id}
        period = self._search(
            client,
            world,
            **{"from": start.isoformat(), "to": (start + timedelta(hours=1)).isoformat()},
        )["items"]
        assert period
        assert all(e["at"] >= start.isoformat()[:19] for e in period)
        assert a.case_id not in {e["case_id"] for e in period}
        assert b.case_id in {e["case_id"] for e in period}

    def test_flag_filter_finds_entries_raising_or_checking_the_flag(
        self, client: TestClient, world: World
    ) -> None:
        # Two members with the same name and birth date: the duplicate-person check flags.
        m = world.member("CS-A")
        world.member("CS-B")  # same name and birth date as m
        sub = world.submit("housing", "repair", m)
        assert sub.flags, "two members share name and birth date"
        flag = sub.flags[0]
        hits = self._search(client, world, flag=flag)["items"]
        assert sub.case_id in {e["case_id"] for e in hits}
        for e in hits:
            assert flag in e["flags"] or any(
                c["code"] == flag and c["outcome"] != "passed" for c in e["checks"]
            )
        assert self._search(client, world, flag="C99")["items"] == []
        problem(
            client.get(
                "/api/v1/audit/entries", headers=bearer(world, "auditor"), params={"flag": "C5%"}
            ),
            422,
        )

    def test_keyset_pagination_returns_every_entry_once(
        self, client: TestClient, world: World
    ) -> None:
        _decided_case(world)
        everything = self._search(client, world, limit=500)["items"]
        seen: list[int] = []
        cursor = None
        while True:
            q: dict[str, Any] = {"limit": 7}
            if cursor is not None:
                q["cursor"] = cursor
            page = self._search(client, world, **q)
            seen += [e["seq"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [e["seq"] for e in everything] == sorted(set(seen))
        problem(
            client.get(
                "/api/v1/audit/entries", headers=bearer(world, "auditor"), params={"limit": 501}
            ),
            422,
        )

    def test_an_auditor_sees_only_entries_of_their_units(
        self, client: TestClient, world: World
    ) -> None:
        in_dk = _decided_case(world, "CS-C", "officer_c")
        in_tp = _decided_case(world, "CS-A")
        tp = self._search(client, world, "auditor_tp", limit=500)["items"]
        assert in_tp in {e["case_id"] for e in tp}
        assert in_dk not in {e["case_id"] for e in tp}
        assert {e["unit_id"] for e in tp} <= {"TP", "CS-A", "CS-B"}
        assert self._search(client, world, "auditor_tp", org_unit_id="CS-C")["items"] == []
        province = self._search(client, world, "auditor", limit=500)["items"]
        assert in_dk in {e["case_id"] for e in province}
        problem(client.get("/api/v1/audit/entries", headers=bearer(world, "chair_a")), 403)


class TestDossier:
    def test_dossier_content_masking_hash_and_its_export_is_audited(
        self, client: TestClient, world: World
    ) -> None:
        case_id = _decided_case(world)
        r = client.get(f"/api/v1/cases/{case_id}/dossier", headers=bearer(world, "auditor"))
        assert r.status_code == 200, r.text
        doc = r.json()
        with world.app.engine.connect() as conn:
            cccd = conn.execute(
                select(MEMBER.c.cccd).where(MEMBER.c.id == doc["member"]["id"])
            ).scalar_one()
        assert cccd not in r.text
        assert doc["member"]["cccd_masked"] == "•" * 8 + cccd[-4:]
        assert doc["case"]["id"] == case_id
        assert doc["case"]["status"] == "in_review"
        assert doc["documents"]
        assert all(len(x["sha256"]) == 64 for x in doc["documents"])
        assert [x["action"] for x in doc["decisions"]] == ["approve"]
        assert {x["status"] for x in doc["tasks"]} == {"done", "open"}
        assert [x["action"] for x in doc["trail"]] == [
            "case.submitted",
            "case.screened",
            "task.decided",
        ]
        assert doc["verification"] == {"entries_checked": 3, "all_ok": True, "broken_seqs": []}
        # The hash covers the canonical JSON of the document without sha256 and audit_seq.
        unsigned = {k: v for k, v in doc.items() if k not in ("sha256", "audit_seq")}
        assert hashlib.sha256(canonical_json(unsigned)).hexdigest() == doc["sha256"]
        with world.app.engine.connect() as conn:
            row = (
                conn.execute(select(AUDIT).where(AUDIT.c.seq == doc["audit_seq"])).mappings().one()
            )
        assert row["action"] == "dossier.exported"
        assert row["actor_id"] == world.accounts["auditor"]
        assert json.loads(row["payload"])["sha256"] == doc["sha256"]
        trail = client.get(f"/api/v1/cases/{case_id}/trail", headers=bearer(world, "auditor"))
        assert trail.json()["entries"][-1]["action"] == "dossier.exported"

    def test_dossier_scope(self, client: TestClient, world: World) -> None:
        in_dk = _decided_case(world, "CS-C", "officer_c")
        problem(
            client.get(f"/api/v1/cases/{in_dk}/dossier", headers=bearer(world, "auditor_tp")), 404
        )
        problem(
            client.get(f"/api/v1/cases/{in_dk}/dossier", headers=bearer(world, "officer_c")), 403
        )
        with world.app.engine.connect() as conn:
            exports = conn.execute(
                select(AUDIT.c.seq).where(AUDIT.c.action == "dossier.exported")
            ).all()
        assert exports == [], "a refused export records nothing"
