"""The Lai Châu demo: seeding builds the province's union tree and members; the story runs."""

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from domain.adapters.repository import ACCOUNT, AUDIT, LINK, MEMBER, MEMBERSHIP, ORG
from domain.bootstrap import App, bootstrap
from domain.cccd import check_cccd
from domain.config import Settings
from domain.demo.seed import seed_demo
from domain.demo.story import DemoError, run_demo
from domain.money import format_vnd
from domain.service.queries import verify_audit
from tests.support import DEFS, Clock, Database, sqlite_database

# domain.md §2.5, typed out again here so the test checks the data against the research.
WARDS = ["Tân Phong", "Đoàn Kết"]
XA = [
    "Mường Kim",
    "Khoen On",
    "Than Uyên",
    "Mường Than",
    "Pắc Ta",
    "Nậm Sỏ",
    "Tân Uyên",
    "Mường Khoa",
    "Bản Bo",
    "Bình Lư",
    "Tả Lèng",
    "Khun Há",
    "Sin Suối Hồ",
    "Phong Thổ",
    "Dào San",
    "Sì Lở Lầu",
    "Khổng Lào",
    "Tủa Sín Chải",
    "Sìn Hồ",
    "Hồng Thu",
    "Nậm Tăm",
    "Pu Sam Cáp",
    "Nậm Cuổi",
    "Nậm Mạ",
    "Lê Lợi",
    "Nậm Hàng",
    "Mường Mô",
    "Hua Bum",
    "Pa Tần",
    "Bum Nưa",
    "Bum Tở",
    "Mường Tè",
    "Thu Lũm",
    "Pa Ủ",
    "Mù Cả",
    "Tà Tổng",
]
FULL_CCCD = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
# A 12-hex hash prefix is all digits now and then (about 1 in 280); it is no CCCD.
HASH_LINK = re.compile(r"⛓\s[0-9a-f]{12}")


def cccd_like(text: str) -> list[str]:
    return FULL_CCCD.findall(HASH_LINK.sub("⛓", text))


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = sqlite_database(tmp_path)
    try:
        yield db
    finally:
        db.close()


def make_app(db: Database, tmp_path: Path, clock: Clock | None = None) -> App:
    """Like tests.support.build_world, but with no org tree: the demo brings its own."""
    settings = Settings(database_url=db.url, definitions_dir=DEFS, data_dir=tmp_path)
    return bootstrap(settings, engine=db.engine, clock=clock)


def test_seed_builds_the_38_commune_unions_and_the_requested_members(
    database: Database, tmp_path: Path
) -> None:
    app = make_app(database, tmp_path, Clock())
    accounts = seed_demo(app, members=140, seed=3)

    with app.engine.connect() as conn:
        units = {r["id"]: dict(r) for r in conn.execute(select(ORG)).mappings()}
        parents = dict(conn.execute(select(LINK.c.child_id, LINK.c.parent_id)).tuples().all())
        members = [
            dict(r)
            for r in conn.execute(
                select(MEMBER, MEMBERSHIP.c.unit_id, MEMBERSHIP.c.joined_on).join(
                    MEMBERSHIP, MEMBERSHIP.c.member_id == MEMBER.c.id
                )
            ).mappings()
        ]
        hashes = [r[0] for r in conn.execute(select(ACCOUNT.c.password_hash))]

    assert units["VN"]["level"] == "federation"
    assert units["LC"]["name"] == "Liên đoàn Lao động tỉnh Lai Châu"
    upper = {u["name"] for u in units.values() if u["level"] == "upper"}
    assert upper == {f"Công đoàn phường {w}" for w in WARDS} | {f"Công đoàn xã {x}" for x in XA}
    assert units["LC-TANPHONG"]["name"] == "Công đoàn phường Tân Phong"
    children = Counter(parents[u] for u, row in units.items() if row["level"] == "grassroots")
    assert len(children) == 38
    assert all(2 <= n <= 4 for n in children.values())
    assert all(u.isascii() for u in units)

    assert len(members) == 140
    assert len({m["cccd"] for m in members}) == 140
    for m in members:
        assert check_cccd(m["cccd"], m["dob"], m["sex"]) == [], m["cccd"]
        assert unicodedata.is_normalized("NFC", m["full_name"])
        assert 1965 <= m["dob"].year <= 2004
        assert m["commune_code"] == parents[m["unit_id"]]  # the commune of their union
    provinces = Counter(m["cccd"][:3] for m in members)
    assert provinces["012"] > len(members) * 0.7  # mostly born in Lai Châu
    assert len(provinces) > 1
    assert any(m["joined_on"].year > 2025 for m in members)  # tenure rules have someone to bite
    households = Counter(m["household_key"] for m in members)
    assert any(n == 2 for n in households.values())  # some spouses share a household

    names = {a.username for a in accounts.accounts}
    for expected in (
        "canbo.tanphong1",
        "chutich.tanphong1",
        "chutich.cd.tanphong",
        "thuongtruc.ldld",
        "bantv1",
        "bantv2",
        "bantv3",
        "ketoan.ldld",
        "ketoan.cd.tanphong",
        "ubkt.ldld",
        "quantri",
    ):
        assert expected in names
    assert accounts.get("chutich.cd.tanphong").unit_name == "Công đoàn phường Tân Phong"
    assert accounts.get("chutich.tanphong1").role_title == "Chủ tịch Công đoàn cơ sở"
    assert all(h is None for h in hashes)  # no passwords until the API adds log-in

    again = seed_demo(app, members=140, seed=3)
    assert again.created is False
    assert {a.username for a in again.accounts} == names
    with app.engine.connect() as conn:
        assert len(conn.execute(select(MEMBER.c.id)).tuples().all()) == 140


def test_story_runs_on_a_fresh_database_and_the_audit_verifies(
    database: Database, tmp_path: Path
) -> None:
    app = make_app(database, tmp_path)
    clock_before = app.service.clock
    lines: list[str] = []
    run_demo(app, out=lines.append)
    text = "\n".join(lines)

    assert 100 <= len(lines) <= 200
    for marker in (
        "Cảnh 6",
        "[C8]",
        "[C10]",
        "[C3]",
        "[C6]",
        "[C7]",
        "[C13]",
        "gắn cờ: C5",
        "Quá hạn – chuyển lên",
        "Chi tiền đợt 2/2",
        "Trả lại, yêu cầu bổ sung",
        "Bổ sung hồ sơ",
        "Rút hồ sơ – hoàn lại dự toán",
        "lượt 2/2",
        format_vnd(25_000_000),
        "⛓",
    ):
        assert marker in text, marker
    assert "Chuỗi nhật ký kiểm toán: hợp lệ" in text
    assert verify_audit(app.engine).ok
    assert app.service.clock is clock_before

    assert cccd_like("⛓ 123456789012 · 012095765222") == ["012095765222"]
    assert cccd_like(text) == []
    with app.engine.connect() as conn:
        cccds = [r[0] for r in conn.execute(select(MEMBER.c.cccd))]
        stamps = [r[0] for r in conn.execute(select(AUDIT.c.at))]
    assert not any(c in text for c in cccds)
    # Health data stays out of the output: no diagnosis category, code or title.
    for word in ("chẩn đoán", "diagnosis", "cancer", "other_serious_illness"):
        assert word not in text
    # The story writes in the past and in time order, so later real work follows it.
    assert stamps == sorted(stamps)
    assert max(stamps) <= datetime.now(UTC)

    with pytest.raises(DemoError):
        run_demo(app, out=lines.append)  # the story needs a database without cases


def test_story_in_english_after_a_separate_seed(database: Database, tmp_path: Path) -> None:
    app = make_app(database, tmp_path)
    seed_demo(app)  # as the CLI's seed command would, on the real clock
    lines: list[str] = []
    run_demo(app, lang="en", out=lines.append)
    text = "\n".join(lines)
    assert "Audit chain: valid" in text
    assert "VND 25,000,000" in text
    assert "Chuỗi" not in text
    assert cccd_like(text) == []
    assert verify_audit(app.engine).ok
