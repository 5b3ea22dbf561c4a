"""Administration over HTTP: org units, members and their CSV import, accounts, role grants."""

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from domain.adapters.repository import AUDIT, MEMBER
from domain.cccd import make_cccd
from domain.roles import Role
from tests.api.conftest import TestClient, bearer, login, problem
from tests.support import World


@pytest.fixture
def admins(world: World) -> World:
    world.account("admin_lc", Role.ADMIN, "LC")
    world.account("admin_tp", Role.ADMIN, "TP")
    return world


def _cccd(serial: int, dob: date = date(1990, 5, 17), sex: str = "male") -> str:
    return make_cccd("012", dob, "male" if sex == "male" else "female", 500_000 + serial)


def _members(world: World) -> int:
    with world.app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(MEMBER)).scalar_one())


class TestOrgUnits:
    def test_an_admin_sees_and_creates_units_only_under_their_own(
        self, client: TestClient, admins: World
    ) -> None:
        tp = bearer(admins, "admin_tp")
        r = client.get("/api/v1/org-units", headers=tp)
        assert r.status_code == 200
        assert [u["id"] for u in r.json()] == ["TP", "CS-A", "CS-B"]
        assert r.json()[1]["parent_id"] == "TP"
        new = {
            "id": "CS-D",
            "name": "CĐCS Trường THPT Tân Uyên",
            "level": "grassroots",
            "parent_id": "TP",
        }
        r = client.post("/api/v1/org-units", headers=tp, json=new)
        assert r.status_code == 201, r.text
        assert r.json()["parent_id"] == "TP"
        assert r.json()["level"] == "grassroots"
        problem(client.post("/api/v1/org-units", headers=tp, json=new), 409, "duplicate")
        problem(
            client.post(
                "/api/v1/org-units", headers=tp, json={**new, "id": "CS-E", "parent_id": "DK"}
            ),
            404,
        )
        problem(
            client.post(
                "/api/v1/org-units", headers=tp, json={**new, "id": "X", "level": "province"}
            ),
            422,
            "invalid_field",
        )
        lc = client.get("/api/v1/org-units", headers=bearer(admins, "admin_lc")).json()
        assert {u["id"] for u in lc} == {"LC", "TP", "DK", "CS-A", "CS-B", "CS-C", "CS-D"}
        problem(client.get("/api/v1/org-units", headers=bearer(admins, "upper_tp")), 403)


class TestMembers:
    def test_register_list_masked_end_membership(self, client: TestClient, admins: World) -> None:
        tp = bearer(admins, "admin_tp")
        cccd = _cccd(1, date(1991, 4, 2), "female")
        body = {
            "full_name": "Lo\u0300 Thi\u0323 Mai",  # decomposed: stored NFC
            "cccd": cccd,
            "dob": "1991-04-02",
            "sex": "female",
            "unit_id": "CS-A",
            "joined_on": "2018-09-01",
            "phone": "+84 912 345 678",
        }
        r = client.post("/api/v1/members", headers=tp, json=body)
        assert r.status_code == 201, r.text
        m = r.json()
        assert m["full_name"] == "Lò Thị Mai"
        assert m["phone"] == "0912345678"
        assert m["cccd_masked"] == "••••••••" + cccd[-4:]
        assert cccd not in r.text
        problem(client.post("/api/v1/members", headers=tp, json=body), 409, "duplicate")
        problem(
            client.post(
                "/api/v1/members",
                headers=tp,
                json={**body, "cccd": _cccd(2, date(1991, 4, 2), "female"), "unit_id": "CS-C"},
            ),
            404,
        )
        wrong_year = client.post(
            "/api/v1/members",
            headers=tp,
            json={**body, "cccd": _cccd(3, date(1985, 1, 1), "female")},
        )
        assert problem(wrong_year, 422)["field"] == "cccd"
        found = client.get("/api/v1/members", headers=tp, params={"q": "thi mai"}).json()
        assert [x["id"] for x in found["items"]] == [m["id"]]
        assert client.get("/api/v1/members", headers=tp, params={"q": cccd[-4:]}).json()["items"]
        lc_only = client.get(
            "/api/v1/members", headers=bearer(admins, "admin_lc"), params={"unit_id": "CS-C"}
        ).json()
        assert m["id"] not in {x["id"] for x in lc_only["items"]}
        r = client.post(
            f"/api/v1/members/{m['id']}/membership-end", headers=tp, json={"left_on": "2026-02-28"}
        )
        assert r.status_code == 200
        assert r.json()["left_on"] == "2026-02-28"
        problem(
            client.post(
                f"/api/v1/members/{m['id']}/membership-end",
                headers=tp,
                json={"left_on": "2026-03-01"},
            ),
            409,
        )

    def test_a_member_moves_to_another_union(self, client: TestClient, admins: World) -> None:
        tp = bearer(admins, "admin_tp")
        cccd = _cccd(4, date(1988, 6, 9))
        body = {
            "full_name": "Sùng A Lử",
            "cccd": cccd,
            "dob": "1988-06-09",
            "sex": "male",
            "unit_id": "CS-A",
            "joined_on": "2016-03-01",
        }
        m = client.post("/api/v1/members", headers=tp, json=body).json()
        join = {"cccd": cccd, "dob": "1988-06-09", "unit_id": "CS-B", "joined_on": "2026-03-01"}
        still_open = client.post("/api/v1/memberships", headers=tp, json=join)
        assert str(problem(still_open, 409, "membership_open")["title"]).startswith("Người này vẫn")
        end = {"left_on": "2026-02-28"}
        client.post(f"/api/v1/members/{m['id']}/membership-end", headers=tp, json=end)
        problem(
            client.post("/api/v1/memberships", headers=tp, json={**join, "dob": "1988-06-10"}),
            404,
        )
        early = client.post(
            "/api/v1/memberships", headers=tp, json={**join, "joined_on": "2026-02-28"}
        )
        assert problem(early, 422)["field"] == "joined_on"
        bad_card = client.post("/api/v1/memberships", headers=tp, json={**join, "cccd": "12345"})
        assert problem(bad_card, 422)["errors"][0]["field"] == "cccd"  # type: ignore[index]
        r = client.post("/api/v1/memberships", headers=tp, json=join)
        assert r.status_code == 201, r.text
        assert (r.json()["id"], r.json()["unit_id"], r.json()["joined_on"]) == (
            m["id"],
            "CS-B",
            "2026-03-01",
        )
        assert cccd not in r.text
        # An admin elsewhere cannot record a join in CS-B.
        admins.account("admin_dk", Role.ADMIN, "DK")
        other = client.post("/api/v1/memberships", headers=bearer(admins, "admin_dk"), json=join)
        problem(other, 404)

    def test_list_pagination(self, client: TestClient, admins: World) -> None:
        for _ in range(5):
            admins.member("CS-B")
        tp = bearer(admins, "admin_tp")
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, "unit_id": "CS-B"}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/api/v1/members", headers=tp, params=params).json()
            seen += [x["id"] for x in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 5


CSV_HEADER = (
    "Họ và tên,Số CCCD,Ngày sinh,Giới tính,Ngày vào Công đoàn,Số điện thoại,Mã hộ,Ghi chú\n"
)


def _upload(
    client: TestClient,
    world: World,
    text: str | bytes,
    *,
    dry_run: bool,
    who: str = "admin_tp",
    unit: str = "CS-A",
) -> Any:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return client.post(
        "/api/v1/member-imports",
        headers=bearer(world, who),
        files={"file": ("danh-sach.csv", data, "text/csv")},
        data={"unit_id": unit, "dry_run": str(dry_run).lower()},
    )


class TestImport:
    def _file(self) -> tuple[str, dict[str, str]]:
        ok1 = _cccd(10, date(1988, 2, 3), "male")
        ok2 = _cccd(11, date(1992, 12, 30), "female")
        bad_year = _cccd(12, date(1980, 1, 1), "male")
        rows = [
            f"Nguyễn Văn An,{ok1},03/02/1988,Nam,01/01/2015,0912 345 678,H1,",  # 2 ok
            f"Lò Thị Bình,{ok2},30/12/1992,Nữ,15/06/2019,,H1,con dâu",  # 3 ok
            f"Sai Ngày,{_cccd(13)},31/02/1990,Nam,01/01/2015,,,",  # 4 bad date
            f"Sai Năm,{bad_year},01/01/1981,Nam,01/01/2015,,,",  # 5 CCCD year ≠ dob
            f"Trùng Tệp,{ok1},03/02/1988,Nam,01/01/2015,,,",  # 6 same CCCD as row 2
            f",{_cccd(14)},17/05/1990,Nam,01/01/2015,,,",  # 7 no name
            f"Giới Tính,{_cccd(15)},17/05/1990,Khác,01/01/2015,,,",  # 8 bad sex
            "",  # blank line at the end
        ]
        return "\ufeff" + CSV_HEADER + "\n".join(rows), {"ok1": ok1, "ok2": ok2}

    def test_dry_run_reports_every_row_and_writes_nothing(
        self, client: TestClient, admins: World
    ) -> None:
        text, _ = self._file()
        before = _members(admins)
        r = _upload(client, admins, text, dry_run=True)
        assert r.status_code == 200, r.text
        rep = r.json()
        assert rep["dry_run"]
        assert rep["total"] == 7
        assert rep["ok"] == 2
        assert rep["errors"] == 5
        assert rep["ignored_columns"] == ["Ghi chú"]
        assert rep["columns"]["Họ và tên"] == "full_name"
        by_row = {x["row"]: x for x in rep["rows"]}
        assert by_row[2]["status"] == by_row[3]["status"] == "ok"
        assert by_row[2]["member_id"] is None
        assert (by_row[4]["field"], by_row[4]["code"]) == ("dob", "invalid_date")
        assert "dd/mm/yyyy" in by_row[4]["message"]
        assert (by_row[5]["field"], by_row[5]["code"]) == ("cccd", "cccd_birth_year")
        assert (by_row[6]["field"], by_row[6]["code"]) == ("cccd", "duplicate_in_file")
        assert "2" in by_row[6]["message"]
        assert (by_row[7]["field"], by_row[7]["code"]) == ("full_name", "required")
        assert (by_row[8]["field"], by_row[8]["code"]) == ("sex", "invalid_sex")
        assert _members(admins) == before

    def test_import_writes_exactly_the_valid_rows_and_a_second_run_finds_duplicates(
        self, client: TestClient, admins: World
    ) -> None:
        text, cccds = self._file()
        before = _members(admins)
        rep = _upload(client, admins, text, dry_run=False).json()
        assert rep["ok"] == 2
        assert not rep["dry_run"]
        ids = [x["member_id"] for x in rep["rows"] if x["status"] == "ok"]
        assert all(ids)
        assert _members(admins) == before + 2
        listed = client.get(
            "/api/v1/members", headers=bearer(admins, "admin_tp"), params={"unit_id": "CS-A"}
        ).json()["items"]
        households = {x["id"]: x["household_key"] for x in listed if x["id"] in ids}
        assert set(households.values()) == {"H1"}
        with admins.app.engine.connect() as conn:
            added = conn.execute(
                select(func.count()).select_from(AUDIT).where(AUDIT.c.action == "member.added")
            ).scalar_one()
            summary = conn.execute(
                select(AUDIT.c.payload).where(AUDIT.c.action == "members.imported")
            ).scalar_one()
        assert added >= 2
        assert rep["file_sha256"] in summary
        assert cccds["ok1"] not in summary
        again = _upload(client, admins, text, dry_run=True).json()
        codes = {x["row"]: x["code"] for x in again["rows"]}
        assert codes[2] == codes[3] == "duplicate"
        assert again["ok"] == 0

    def test_english_headers_semicolons_and_no_bom(self, client: TestClient, admins: World) -> None:
        c = _cccd(20)
        text = f"full_name;cccd;dob;sex;joined_on\nGiàng A Dơ;{c};17/05/1990;male;2015-01-01\n"
        rep = _upload(client, admins, text, dry_run=True).json()
        assert rep["ok"] == 1, rep

    def test_refusals_of_the_whole_file(self, client: TestClient, admins: World) -> None:
        problem(_upload(client, admins, "ho_ten,cccd\nA,1\n", dry_run=True), 422, "invalid_field")
        problem(_upload(client, admins, "ho_ten\n".encode("utf-16"), dry_run=True), 422)
        problem(_upload(client, admins, b"", dry_run=True), 422)
        big = CSV_HEADER + ("x" * 1000 + "\n") * 2200
        problem(_upload(client, admins, big, dry_run=True), 422)
        problem(_upload(client, admins, CSV_HEADER, dry_run=True, unit="CS-C"), 404)
        problem(_upload(client, admins, CSV_HEADER, dry_run=True, who="officer_a"), 403)


class TestAccounts:
    def test_create_grant_revoke_reset_and_deactivate(
        self, client: TestClient, admins: World
    ) -> None:
        tp = bearer(admins, "admin_tp")
        r = client.post(
            "/api/v1/accounts",
            headers=tp,
            json={
                "username": "canbo.namna3",
                "display_name": "Lò Thị Hương",
                "home_unit_id": "CS-A",
                "password": "mat-khau-ban-dau",
            },
        )
        assert r.status_code == 201, r.text
        acc = r.json()
        assert acc["active"]
        assert acc["grants"] == []
        problem(
            client.post(
                "/api/v1/accounts",
                headers=tp,
                json={"username": "canbo.dk", "display_name": "X", "home_unit_id": "CS-C"},
            ),
            404,
        )
        g = client.post(
            f"/api/v1/accounts/{acc['id']}/grants",
            headers=tp,
            json={"role": "grassroots_officer", "unit_id": "CS-A", "valid_from": "2026-01-01"},
        )
        assert g.status_code == 201, g.text
        problem(
            client.post(
                f"/api/v1/accounts/{acc['id']}/grants",
                headers=tp,
                json={"role": "auditor", "unit_id": "LC"},
            ),
            404,
        )
        h = login(client, "canbo.namna3", "mat-khau-ban-dau")
        assert client.get("/api/v1/me", headers=h).json()["scope"] == ["CS-A"]
        rv = client.post(f"/api/v1/grants/{g.json()['id']}/revocation", headers=tp, json={})
        assert rv.status_code == 200
        assert rv.json()["valid_to"] is not None
        assert client.get("/api/v1/me", headers=h).json()["scope"] == []
        problem(
            client.post(f"/api/v1/grants/{g.json()['id']}/revocation", headers=tp, json={}), 409
        )
        pw = client.post(
            f"/api/v1/accounts/{acc['id']}/password",
            headers=tp,
            json={"password": "mat-khau-moi-2026"},
        )
        assert pw.status_code == 200
        login(client, "canbo.namna3", "mat-khau-moi-2026")
        d = client.post(f"/api/v1/accounts/{acc['id']}/deactivation", headers=tp)
        assert d.status_code == 200
        assert d.json()["active"] is False
        problem(client.get("/api/v1/me", headers=h), 401)
        problem(client.post(f"/api/v1/accounts/{acc['id']}/deactivation", headers=tp), 409)
        problem(
            client.post(f"/api/v1/accounts/{admins.accounts['admin_tp']}/deactivation", headers=tp),
            422,
        )

    def test_accounts_outside_the_admins_units_are_invisible(
        self, client: TestClient, admins: World
    ) -> None:
        tp = bearer(admins, "admin_tp")
        listed = client.get("/api/v1/accounts", headers=tp, params={"limit": 500}).json()["items"]
        names = {a["username"] for a in listed}
        assert {"officer_a", "chair_b", "upper_tp"} <= names
        assert not names & {"officer_c", "upper_dk", "auditor", "admin_lc"}
        problem(client.get(f"/api/v1/accounts/{admins.accounts['officer_c']}", headers=tp), 404)
        r = client.get(f"/api/v1/accounts/{admins.accounts['officer_a']}", headers=tp)
        assert r.status_code == 200
        assert r.json()["grants"][0]["role"] == "grassroots_officer"
        problem(
            client.post(
                f"/api/v1/accounts/{admins.accounts['officer_c']}/deactivation", headers=tp
            ),
            404,
        )


def test_policy_versions_with_content_hashes(client: TestClient, world: World) -> None:
    r = client.get("/api/v1/policies/housing/versions", headers=bearer(world, "officer_a"))
    assert r.status_code == 200
    (v,) = r.json()
    assert v["version"] == 1
    assert v["current"]
    assert v["loaded"]
    assert len(v["sha256"]) == 64
    problem(client.get("/api/v1/policies/nope/versions", headers=bearer(world, "officer_a")), 404)
