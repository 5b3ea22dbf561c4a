"""Deterministic demo data for Lai Châu: the union tree after 1/7/2025 and its members."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Final

from domain.cccd import Sex, make_cccd
from domain.roles import OrgLevel
from domain.text import name_key

__all__ = [
    "COMMUNES",
    "FEATURED",
    "FEDERATION_ID",
    "PROVINCE_ID",
    "Commune",
    "OrgUnit",
    "Person",
    "commune_id",
    "generate_people",
    "grassroots_id",
    "make_name",
    "org_tree",
    "pick_ethnicity",
    "slug",
]

FEDERATION_ID: Final = "VN"
PROVINCE_ID: Final = "LC"
FEDERATION_NAME: Final = "Tổng Liên đoàn Lao động Việt Nam"
PROVINCE_NAME: Final = "Liên đoàn Lao động tỉnh Lai Châu"

# domain.md §2.5: the 38 units from 1/7/2025 (NQ 1670/NQ-UBTVQH15). The second item is the
# former district; it only steers which employers and ethnic groups are plausible there.
_WARDS: Final = (("Tân Phong", "city"), ("Đoàn Kết", "city"))
_XA: Final = (
    ("Mường Kim", "than_uyen"),
    ("Khoen On", "than_uyen"),
    ("Than Uyên", "than_uyen"),
    ("Mường Than", "than_uyen"),
    ("Pắc Ta", "tan_uyen"),
    ("Nậm Sỏ", "tan_uyen"),
    ("Tân Uyên", "tan_uyen"),
    ("Mường Khoa", "tan_uyen"),
    ("Bản Bo", "tam_duong"),
    ("Bình Lư", "tam_duong"),
    ("Tả Lèng", "tam_duong"),
    ("Khun Há", "tam_duong"),
    ("Sin Suối Hồ", "phong_tho"),
    ("Phong Thổ", "phong_tho"),
    ("Dào San", "phong_tho"),
    ("Sì Lở Lầu", "phong_tho"),
    ("Khổng Lào", "phong_tho"),
    ("Tủa Sín Chải", "sin_ho"),
    ("Sìn Hồ", "sin_ho"),
    ("Hồng Thu", "sin_ho"),
    ("Nậm Tăm", "sin_ho"),
    ("Pu Sam Cáp", "sin_ho"),
    ("Nậm Cuổi", "sin_ho"),
    ("Nậm Mạ", "sin_ho"),
    ("Lê Lợi", "nam_nhun"),
    ("Nậm Hàng", "nam_nhun"),
    ("Mường Mô", "nam_nhun"),
    ("Hua Bum", "nam_nhun"),
    ("Pa Tần", "nam_nhun"),
    ("Bum Nưa", "muong_te"),
    ("Bum Tở", "muong_te"),
    ("Mường Tè", "muong_te"),
    ("Thu Lũm", "muong_te"),
    ("Pa Ủ", "muong_te"),
    ("Mù Cả", "muong_te"),
    ("Tà Tổng", "muong_te"),
)

# The communes that carry the demo accounts. Their first grassroots union is a sizeable
# employer so that every rule the demo story shows has members to act on.
FEATURED: Final = ("Tân Phong", "Đoàn Kết", "Mường Tè")
_FEATURED_SECTOR: Final = {
    "Tân Phong": "hotel",
    "Đoàn Kết": "construction",
    "Mường Tè": "hydropower",
}

# Former district towns are larger employment centres than the villages around them.
_TOWNS: Final = frozenset({"Than Uyên", "Tân Uyên", "Phong Thổ", "Sìn Hồ", "Bình Lư", "Mường Tè"})
_WARD_PLACES: Final = frozenset(p for p, _ in _WARDS)


def slug(place: str) -> str:
    """ASCII id part for a place name: "Sì Lở Lầu" → "silolau"."""
    return name_key(place).replace(" ", "").replace("'", "")


def commune_id(place: str) -> str:
    return f"{PROVINCE_ID}-{slug(place).upper()}"


def grassroots_id(place: str, n: int) -> str:
    return f"{commune_id(place)}-CS{n}"


@dataclass(frozen=True)
class Commune:
    """One of the 38 commune-level units and its Công đoàn xã/phường."""

    place: str  # "Mường Kim"
    kind: str  # "xã" | "phường"
    area: str  # former district, for plausibility only

    @property
    def id(self) -> str:
        return commune_id(self.place)

    @property
    def union_name(self) -> str:
        return f"Công đoàn {self.kind} {self.place}"


COMMUNES: Final[tuple[Commune, ...]] = tuple(
    [Commune(p, "phường", a) for p, a in _WARDS] + [Commune(p, "xã", a) for p, a in _XA]
)


@dataclass(frozen=True)
class OrgUnit:
    id: str
    name: str
    level: OrgLevel
    parent_id: str | None
    commune_code: str | None
    place: str | None = None  # the commune's place name
    sector: str | None = None  # grassroots only: the kind of employer
    index: int = 0  # grassroots only: 1-based position under its commune union


# --- employers ------------------------------------------------------------------------------

_RIVERS: Final = (
    "Nậm Na",
    "Nậm Mạ",
    "Nậm Củn",
    "Nậm Xe",
    "Pắc Ma",
    "Nậm Lụm",
    "Chu Va",
    "Nậm Cuổi",
    "Nậm Mở",
    "Huổi Vang",
    "Nậm Be",
    "Nậm Sì Lường",
)

# How many workers an employer of each kind tends to have, relative to the others.
_SECTOR_WEIGHT: Final = {
    "hydropower": 4.0,
    "construction": 4.0,
    "rubber": 3.5,
    "mining": 3.0,
    "hotel": 3.0,
    "transport": 2.0,
    "tea": 2.5,
    "cardamom": 2.0,
    "school": 1.5,
    "health": 1.5,
}
_SECTORS_BY_AREA: Final = {
    "city": ("hotel", "construction", "transport", "school", "health", "mining"),
    "tam_duong": ("tea", "mining", "construction", "hydropower", "school"),
    "than_uyen": ("tea", "hydropower", "construction", "school", "health"),
    "tan_uyen": ("tea", "hydropower", "construction", "school"),
    "phong_tho": ("cardamom", "rubber", "mining", "hydropower", "school"),
    "sin_ho": ("cardamom", "tea", "rubber", "hydropower", "school"),
    "nam_nhun": ("rubber", "hydropower", "construction", "school"),
    "muong_te": ("cardamom", "hydropower", "construction", "school", "health"),
}
_ENTERPRISES: Final = frozenset(
    {"hydropower", "construction", "rubber", "mining", "hotel", "transport", "tea", "cardamom"}
)
_HOTEL_NAMES: Final = ("Phong Nha", "Sơn Hà", "Đông Pao", "Hoàng Liên", "Mường Thanh")


def _fresh(rng: random.Random, options: Sequence[str], used: set[str]) -> str:
    """A random option not taken yet, if any is left."""
    free = [o for o in options if o not in used]
    return rng.choice(free or list(options))


def _employer_name(rng: random.Random, sector: str, place: str, used: set[str]) -> str:
    match sector:
        case "hydropower":
            prefix = "CĐCS Công ty Cổ phần Thủy điện "
            return _fresh(rng, [prefix + r for r in _RIVERS], used)
        case "construction":
            return rng.choice(
                (
                    f"CĐCS Công ty TNHH Xây dựng {place}",
                    f"CĐCS Công ty Cổ phần Xây dựng và Thương mại {place}",
                )
            )
        case "rubber":
            return f"CĐCS Nông trường Cao su {place}"
        case "mining":
            return f"CĐCS Công ty Cổ phần Khoáng sản {place}"
        case "hotel":
            return _fresh(rng, [f"CĐCS Công ty TNHH Khách sạn {h}" for h in _HOTEL_NAMES], used)
        case "transport":
            return f"CĐCS Hợp tác xã Vận tải {place}"
        case "tea":
            return f"CĐCS Hợp tác xã Chè {place}"
        case "cardamom":
            return f"CĐCS Hợp tác xã Thảo quả {place}"
        case "school":
            return rng.choice(
                (
                    f"CĐCS Trường Phổ thông Dân tộc Bán trú {place}",
                    f"CĐCS Trường Mầm non {place}",
                )
            )
        case _:
            return f"CĐCS Trạm Y tế {place}"


def org_tree(seed: int = 7) -> list[OrgUnit]:
    """Federation → province → 38 commune unions → 2–4 grassroots unions each, parents first."""
    rng = random.Random(f"laichau-org-{seed}")
    units = [
        OrgUnit(FEDERATION_ID, FEDERATION_NAME, OrgLevel.FEDERATION, None, None),
        OrgUnit(PROVINCE_ID, PROVINCE_NAME, OrgLevel.PROVINCE, FEDERATION_ID, None),
    ]
    for c in COMMUNES:
        units.append(OrgUnit(c.id, c.union_name, OrgLevel.UPPER, PROVINCE_ID, c.id, c.place))
    used: set[str] = set()
    for c in COMMUNES:
        count = rng.randint(3, 4) if c.kind == "phường" else rng.randint(2, 4)
        pool = list(_SECTORS_BY_AREA[c.area])
        rng.shuffle(pool)
        featured = _FEATURED_SECTOR.get(c.place)
        if featured is not None:
            pool = [featured, *(s for s in pool if s != featured)]
        else:
            # Unions are mostly at employers; put one first so every commune has an enterprise.
            first = next(s for s in pool if s in _ENTERPRISES)
            pool = [first, *(s for s in pool if s != first)]
        for n, sector in enumerate(pool[:count], start=1):
            base = _employer_name(rng, sector, c.place, used)
            name, k = base, 1
            while name in used:  # cascades of plants on one river are numbered: Nậm Na 2
                k += 1
                name = f"{base} {k}"
            used.add(name)
            units.append(
                OrgUnit(
                    grassroots_id(c.place, n),
                    name,
                    OrgLevel.GRASSROOTS,
                    c.id,
                    c.id,
                    c.place,
                    sector,
                    n,
                )
            )
    return units


# --- names ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Naming:
    surnames: tuple[str, ...]
    male_middle: tuple[str, ...]
    male_given: tuple[str, ...]
    female_middle: tuple[str, ...]
    female_given: tuple[str, ...]


# Patterns from domain.md §2.4 and local news; few surnames and shared middle names make
# same-name-same-birthday pairs common, which is exactly what C2 has to cope with.
_NAMING: Final[dict[str, _Naming]] = {
    "H'Mông": _Naming(
        ("Giàng", "Sùng", "Vừ", "Thào", "Lý", "Mùa", "Hầu", "Lầu", "Tráng"),
        ("A", "A", "A", "Seo", "Seo", "Văn"),
        (
            "Pếnh",
            "Chau",
            "Màng",
            "Hù",
            "Giống",
            "Dơ",
            "Sử",
            "Lử",
            "Dế",
            "Chinh",
            "Tủa",
            "Páo",
            "Di",
            "Nhè",
            "Chứ",
            "Khua",
            "Lềnh",
            "Sính",
            "Vảng",
            "Chớ",
        ),
        ("Thị",),
        (
            "Dua",
            "Súa",
            "Mỷ",
            "Chía",
            "Pà",
            "Sua",
            "Dợ",
            "Mai",
            "Chở",
            "Xúa",
            "Say",
            "Dính",
            "Mo",
            "Pàng",
            "Lan",
        ),
    ),
    "Thái": _Naming(
        ("Lò", "Lường", "Tòng", "Quàng", "Điêu", "Cầm", "Lù", "Vì", "Hoàng"),
        ("Văn",),
        (
            "Inh",
            "Thưởng",
            "Hặc",
            "Sơn",
            "Khiêm",
            "Chiến",
            "Tiến",
            "Hoan",
            "Ngoan",
            "Biên",
            "Pánh",
            "Thoại",
            "Ún",
            "Duẩn",
            "Xuân",
            "Panh",
        ),
        ("Thị",),
        (
            "Lan",
            "Ơn",
            "Xuân",
            "Hương",
            "Mai",
            "Phanh",
            "Bun",
            "Ín",
            "Thoa",
            "Ánh",
            "Dung",
            "Kim",
            "Hiền",
            "Ngọc",
        ),
    ),
    "Dao": _Naming(
        ("Tẩn", "Phàn", "Lý", "Chảo", "Đặng", "Triệu", "Chẻo"),
        ("A", "Láo", "Văn", "Ông", "Vần"),
        (
            "San",
            "Chàn",
            "Lở",
            "Phù",
            "Kiều",
            "Sành",
            "Quẩy",
            "Tả",
            "Phẩu",
            "Dùn",
            "Chòi",
            "Sinh",
            "Vảng",
            "Lỉn",
        ),
        ("Thị", "Thị", "Thị", "Mý"),
        ("Mẩy", "Liều", "Mây", "Hoài", "Nái", "Dín", "Chạn", "Sửu", "Xoan", "Kiều"),
    ),
    "Hà Nhì": _Naming(
        ("Lỳ", "Chu", "Pờ", "Sì", "Phu", "Lò"),
        ("Xá", "Gò", "Hừ", "Chừ", "Văn", "A"),
        ("Phì", "Chè", "Cà", "Lừ", "Gia", "Xe", "Sừ", "Hờ", "Sang", "Xuân"),
        ("Thị",),
        ("Mé", "Xí", "Chà", "Ca", "Mỳ", "Hà", "Pà", "Gạ", "Phi", "Lan"),
    ),
    "Giáy": _Naming(
        ("Hoàng", "Vàng", "Lù", "Sần", "Lương", "Giàng", "Lồ"),
        ("Văn",),
        (
            "Sếnh",
            "Pao",
            "Chín",
            "Dìn",
            "Phủ",
            "Chiu",
            "Hải",
            "Quân",
            "Lìn",
            "Sinh",
            "Thắng",
            "Phong",
        ),
        ("Thị",),
        ("Sáu", "Mai", "Sen", "Dín", "Dung", "Liên", "Hoa", "Nhung", "Vân", "Thu"),
    ),
    "Lự": _Naming(
        ("Lò", "Tao", "Chang", "Vàng"),
        ("Văn",),
        ("Phanh", "Hặc", "Pấu", "Ón", "Sươi", "Khăm", "Bun", "Chăn"),
        ("Thị",),
        ("Ỏn", "Xuân", "Pòn", "Kẻo", "Ánh", "Bua", "Chiêng", "Lả"),
    ),
    "Kinh": _Naming(
        # Repeats weight the common surnames: about a third of Kinh are Nguyễn.
        ("Nguyễn",) * 10
        + ("Trần",) * 3
        + ("Lê",) * 3
        + ("Phạm",) * 2
        + (
            "Hoàng",
            "Vũ",
            "Đỗ",
            "Bùi",
            "Đặng",
            "Ngô",
            "Dương",
            "Đinh",
            "Phan",
            "Đào",
            "Hà",
            "Trịnh",
        ),
        (
            "Văn",
            "Văn",
            "Đức",
            "Minh",
            "Quang",
            "Hữu",
            "Thanh",
            "Xuân",
            "Tiến",
            "Mạnh",
            "Ngọc",
            "Công",
            "Trọng",
        ),
        (
            "Hùng",
            "Dũng",
            "Tuấn",
            "Hải",
            "Nam",
            "Quân",
            "Long",
            "Thắng",
            "Trung",
            "Cường",
            "Hiếu",
            "Sơn",
            "Hoàng",
            "Khánh",
            "Đạt",
            "Huy",
            "Phong",
            "Tùng",
            "Kiên",
            "Thành",
            "Bình",
            "Việt",
            "Anh",
            "Đông",
        ),
        ("Thị", "Thị", "Thị", "Thu", "Thanh", "Ngọc", "Hồng", "Minh", "Phương"),
        (
            "Hương",
            "Lan",
            "Hoa",
            "Huệ",
            "Hằng",
            "Thảo",
            "Trang",
            "Hà",
            "Ngọc",
            "Hoà",
            "Thuỷ",
            "Nga",
            "Yến",
            "Linh",
            "Phương",
            "Mai",
            "Loan",
            "Tâm",
            "Nhung",
            "Dung",
        ),
    ),
}

# Relative shares of each group among union members by former district [A]: Kinh are
# over-represented among employees compared with the population (S-26c).
_ETHNIC_MIX: Final[dict[str, dict[str, int]]] = {
    "city": {"Kinh": 55, "Thái": 12, "H'Mông": 12, "Giáy": 8, "Dao": 8, "Hà Nhì": 3, "Lự": 2},
    "tam_duong": {"Kinh": 25, "H'Mông": 28, "Giáy": 15, "Dao": 14, "Thái": 12, "Lự": 6},
    "phong_tho": {"Kinh": 15, "Dao": 25, "H'Mông": 25, "Giáy": 15, "Thái": 15, "Hà Nhì": 5},
    "sin_ho": {"Kinh": 15, "H'Mông": 40, "Dao": 20, "Thái": 15, "Hà Nhì": 5, "Lự": 5},
    "nam_nhun": {"Kinh": 20, "Thái": 25, "H'Mông": 25, "Dao": 15, "Hà Nhì": 15},
    "muong_te": {"Kinh": 15, "Hà Nhì": 35, "Thái": 20, "H'Mông": 15, "Dao": 15},
    "than_uyen": {"Kinh": 25, "Thái": 50, "H'Mông": 15, "Dao": 5, "Giáy": 5},
    "tan_uyen": {"Kinh": 25, "Thái": 45, "H'Mông": 20, "Dao": 10},
}

# Share of men by employer kind [A]: construction and mining crews are mostly men.
_MALE_SHARE: Final = {
    "hydropower": 0.75,
    "construction": 0.85,
    "mining": 0.8,
    "rubber": 0.55,
    "transport": 0.8,
    "tea": 0.45,
    "cardamom": 0.5,
    "hotel": 0.4,
    "school": 0.25,
    "health": 0.35,
}


def make_name(rng: random.Random, ethnicity: str, sex: Sex) -> str:
    """A plausible full name for a member of `ethnicity`, in NFC."""
    n = _NAMING[ethnicity]
    if sex == "male":
        parts = (rng.choice(n.surnames), rng.choice(n.male_middle), rng.choice(n.male_given))
    else:
        parts = (rng.choice(n.surnames), rng.choice(n.female_middle), rng.choice(n.female_given))
    return unicodedata.normalize("NFC", " ".join(parts))


def pick_ethnicity(rng: random.Random, area: str) -> str:
    mix = _ETHNIC_MIX[area]
    return rng.choices(list(mix), weights=list(mix.values()))[0]


# --- people -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    key: str  # stable demo id: "DV0001"
    full_name: str
    ethnicity: str
    sex: Sex
    dob: date
    cccd: str
    unit_id: str
    commune_code: str
    joined_on: date
    left_on: date | None
    household_key: str
    phone: str | None


_MOBILE_PREFIXES: Final = (
    "096",
    "097",
    "098",
    "086",
    "032",
    "033",
    "035",
    "036",
    "038",
    "039",
    "091",
    "094",
    "088",
    "083",
    "084",
    "081",
    "070",
    "076",
    "078",
    "089",
    "090",
    "093",
    "056",
    "058",
)
# Birth registered outside Lai Châu [A]: neighbours for everyone, the Red River delta for
# Kinh families who moved up for work.
_NEIGHBOUR_PROVINCES: Final = ("010", "011", "014")
_DELTA_PROVINCES: Final = ("034", "036", "038", "025", "030", "001")

_LAST_REGULAR_JOIN: Final = date(2025, 12, 31)
_RESTRUCTURING: Final = date(2025, 6, 30)  # public-sector members moved out (QĐ 4133/4173)


def _allocate(grassroots: Sequence[OrgUnit], count: int, rng: random.Random) -> dict[str, int]:
    """Members per grassroots union: featured employers sized first, then one each, then by weight."""
    sizes = {u.id: 0 for u in grassroots}
    left = count
    featured = [u for u in grassroots if u.place in FEATURED and u.index == 1]
    for u in featured:
        take = min(left, max(10, count * 4 // 100))
        sizes[u.id] += take
        left -= take
    rest = [u for u in grassroots if sizes[u.id] == 0]
    for u in rest[:left]:
        sizes[u.id] += 1
    left -= min(left, len(rest))

    def weight(u: OrgUnit) -> float:
        town = 4.0 if u.place in _WARD_PLACES else 2.5 if u.place in _TOWNS else 1.0
        return _SECTOR_WEIGHT[u.sector or "school"] * town

    if left > 0:
        picks = rng.choices(list(grassroots), weights=[weight(u) for u in grassroots], k=left)
        for u in picks:
            sizes[u.id] += 1
    return sizes


def _phone(rng: random.Random) -> str | None:
    if rng.random() < 0.25:
        return None  # not everyone gave a number, especially older members in remote villages
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**7):07d}"


def _birth_province(rng: random.Random, ethnicity: str) -> str:
    r = rng.random()
    if ethnicity == "Kinh":
        if r < 0.62:
            return "012"
        return rng.choice(_NEIGHBOUR_PROVINCES) if r < 0.78 else rng.choice(_DELTA_PROVINCES)
    return "012" if r < 0.88 else rng.choice(_NEIGHBOUR_PROVINCES)


def _random_date(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


def generate_people(units: Sequence[OrgUnit], count: int, seed: int, today: date) -> list[Person]:
    """`count` members spread over the grassroots unions, deterministic for (units, count, seed, today).

    Besides the ordinary members the data hold what the rules must cope with: recent joiners
    (under a year of membership), members who left in the 2025 restructuring, spouses who
    share a household, and one pair with the same name and birth date (C2). Every featured
    first grassroots union gets one recent joiner and one leaver.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    rng = random.Random(f"laichau-people-{seed}")
    grassroots = [u for u in units if u.level is OrgLevel.GRASSROOTS]
    area = {c.place: c.area for c in COMMUNES}
    sizes = _allocate(grassroots, count, rng)
    serials = rng.sample(range(1, 1_000_000), count)  # unique serials make unique CCCDs
    seen: set[tuple[str, date]] = set()
    people: list[Person] = []
    for unit in grassroots:
        for k in range(sizes[unit.id]):
            assert unit.place is not None
            assert unit.sector is not None
            ethnicity = pick_ethnicity(rng, area[unit.place])
            sex: Sex = "male" if rng.random() < _MALE_SHARE[unit.sector] else "female"
            name = make_name(rng, ethnicity, sex)
            dob = _random_date(rng, date(1965, 1, 1), date(2004, 12, 31))
            while (name_key(name), dob) in seen:  # only the deliberate pair below may collide
                dob = _random_date(rng, date(1965, 1, 1), date(2004, 12, 31))
            seen.add((name_key(name), dob))
            adult = date(dob.year + 18, dob.month, min(dob.day, 28))
            featured = unit.place in FEATURED and unit.index == 1
            left_on: date | None = None
            if featured and k == 1:
                # Joined a few weeks ago: short tenure, and after any recent dues cutoff.
                joined = today - timedelta(days=rng.randint(20, 60))
            elif (featured and k == 2) or (not featured and rng.random() < 0.01):
                joined = _random_date(rng, max(date(2008, 1, 1), adult), date(2022, 12, 31))
                left_on = _RESTRUCTURING
            elif rng.random() < 0.03:
                joined = today - timedelta(days=rng.randint(20, 300))
            else:
                joined = _random_date(rng, max(date(2008, 1, 1), adult), _LAST_REGULAR_JOIN)
            joined = min(joined, today)
            index = len(people) + 1
            people.append(
                Person(
                    key=f"DV{index:04d}",
                    full_name=name,
                    ethnicity=ethnicity,
                    sex=sex,
                    dob=dob,
                    cccd=make_cccd(_birth_province(rng, ethnicity), dob, sex, serials[index - 1]),
                    unit_id=unit.id,
                    commune_code=unit.commune_code or "",
                    joined_on=joined,
                    left_on=left_on,
                    household_key=f"HH-{index:04d}",
                    phone=_phone(rng),
                )
            )
    people = _pair_spouses(people, rng)
    return _twin(people)


def _pair_spouses(people: list[Person], rng: random.Random) -> list[Person]:
    """About one member in ten shares a household with a spouse in the same commune."""
    by_commune: dict[str, list[int]] = {}
    for i, p in enumerate(people):
        by_commune.setdefault(p.commune_code, []).append(i)
    out = list(people)
    for indices in by_commune.values():
        men = [i for i in indices if people[i].sex == "male"]
        women = [i for i in indices if people[i].sex == "female"]
        rng.shuffle(men)
        for m in men:
            if rng.random() > 0.2 or not women:
                continue
            match = next(
                (w for w in women if abs(people[w].dob.year - people[m].dob.year) <= 8), None
            )
            if match is None:
                continue
            women.remove(match)
            out[match] = replace(out[match], household_key=out[m].household_key)
    return out


def _twin(people: list[Person]) -> list[Person]:
    """Give two H'Mông men in different communes the same name and birth date (domain.md §2.4)."""
    candidates = [
        i
        for i, p in enumerate(people)
        if p.ethnicity == "H'Mông"
        and p.sex == "male"
        and p.left_on is None
        and not p.unit_id.endswith("-CS1")
    ]
    first = next(iter(candidates), None)
    second = next(
        (
            i
            for i in candidates[1:]
            if first is not None and people[i].commune_code != people[first].commune_code
        ),
        None,
    )
    if first is None or second is None:
        return people
    a, b = people[first], people[second]
    out = list(people)
    # The twin keeps its own birth province and serial, re-encoded for the shared birth date.
    cccd = make_cccd(b.cccd[:3], a.dob, "male", int(b.cccd[6:]))
    out[second] = replace(b, full_name=a.full_name, dob=a.dob, cccd=cccd)
    return out
