"""Plausibility checks, masking and construction of Vietnamese citizen ID numbers (CCCD)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Final, Literal

from domain.text import name_key

__all__ = ["PROVINCE_CODES", "Sex", "check_cccd", "make_cccd", "mask_cccd"]

Sex = Literal["male", "female"]

# Codes of the province where the birth was registered (Circular 07/2016/TT-BCA).
# The 2025 province mergers did not renumber already-issued cards, so the 63
# pre-merger codes stay the ones found on real IDs.
PROVINCE_CODES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "001": "Hà Nội",
        "002": "Hà Giang",
        "004": "Cao Bằng",
        "006": "Bắc Kạn",
        "008": "Tuyên Quang",
        "010": "Lào Cai",
        "011": "Điện Biên",
        "012": "Lai Châu",
        "014": "Sơn La",
        "015": "Yên Bái",
        "017": "Hòa Bình",
        "019": "Thái Nguyên",
        "020": "Lạng Sơn",
        "022": "Quảng Ninh",
        "024": "Bắc Giang",
        "025": "Phú Thọ",
        "026": "Vĩnh Phúc",
        "027": "Bắc Ninh",
        "030": "Hải Dương",
        "031": "Hải Phòng",
        "033": "Hưng Yên",
        "034": "Thái Bình",
        "035": "Hà Nam",
        "036": "Nam Định",
        "037": "Ninh Bình",
        "038": "Thanh Hóa",
        "040": "Nghệ An",
        "042": "Hà Tĩnh",
        "044": "Quảng Bình",
        "045": "Quảng Trị",
        "046": "Thừa Thiên Huế",
        "048": "Đà Nẵng",
        "049": "Quảng Nam",
        "051": "Quảng Ngãi",
        "052": "Bình Định",
        "054": "Phú Yên",
        "056": "Khánh Hòa",
        "058": "Ninh Thuận",
        "060": "Bình Thuận",
        "062": "Kon Tum",
        "064": "Gia Lai",
        "066": "Đắk Lắk",
        "067": "Đắk Nông",
        "068": "Lâm Đồng",
        "070": "Bình Phước",
        "072": "Tây Ninh",
        "074": "Bình Dương",
        "075": "Đồng Nai",
        "077": "Bà Rịa - Vũng Tàu",
        "079": "Hồ Chí Minh",
        "080": "Long An",
        "082": "Tiền Giang",
        "083": "Bến Tre",
        "084": "Trà Vinh",
        "086": "Vĩnh Long",
        "087": "Đồng Tháp",
        "089": "An Giang",
        "091": "Kiên Giang",
        "092": "Cần Thơ",
        "093": "Hậu Giang",
        "094": "Sóc Trăng",
        "095": "Bạc Liêu",
        "096": "Cà Mau",
    }
)

_CODE_BY_NAME_KEY: Final[Mapping[str, str]] = MappingProxyType(
    {name_key(name): code for code, name in PROVINCE_CODES.items()}
)

# The gender/century digit G covers five centuries from 1900; each century has
# an even digit for men and the next odd digit for women.
_FIRST_CENTURY = 1900
_LAST_CENTURY = 2300
_SEXES: Final = ("male", "female")

_MASK = "•"
_VISIBLE = 4


def _is_ascii_digits(s: str) -> bool:
    # str.isdigit() alone accepts e.g. Arabic-Indic or superscript digits.
    return s.isascii() and s.isdigit()


def _check_sex(sex: str) -> None:
    # Literal is not enforced at runtime; callers may pass values read from forms.
    if sex not in _SEXES:
        raise ValueError(f"sex must be 'male' or 'female', not {sex!r}")


def check_cccd(cccd: str, dob: date | None = None, sex: Sex | None = None) -> list[str]:
    """Return the problem codes of a CCCD number (empty list if it is plausible).

    There is no check digit, so only the layout PPP G YY NNNNNN is checked: the
    province code, and the century/sex digit and birth year against `dob`/`sex`.
    """
    if sex is not None:
        _check_sex(sex)
    if len(cccd) != 12 or not _is_ascii_digits(cccd):
        # The other checks read fixed positions and would only add noise.
        return ["cccd_format"]
    problems: list[str] = []
    if cccd[:3] not in PROVINCE_CODES:
        problems.append("cccd_province")
    g = int(cccd[3])
    century = _FIRST_CENTURY + (g // 2) * 100
    g_sex: Sex = "male" if g % 2 == 0 else "female"
    if (dob is not None and dob.year - dob.year % 100 != century) or (
        sex is not None and sex != g_sex
    ):
        problems.append("cccd_century_sex")
    if dob is not None and int(cccd[4:6]) != dob.year % 100:
        problems.append("cccd_birth_year")
    return problems


def mask_cccd(cccd: str) -> str:
    """Return `cccd` with all but its last 4 characters replaced by "•"."""
    if len(cccd) <= _VISIBLE:
        # A value this short is not a real ID; masking all of it keeps the promise
        # that whatever was typed into the field is never shown in full.
        return _MASK * len(cccd)
    return _MASK * (len(cccd) - _VISIBLE) + cccd[-_VISIBLE:]


def make_cccd(province: str, dob: date, sex: Sex, serial: int) -> str:
    """Build a plausible CCCD for demo data and tests.

    `province` is a 3-digit code or a province name (diacritics and case optional).
    """
    _check_sex(sex)
    if _is_ascii_digits(province) and province in PROVINCE_CODES:
        code = province
    elif (found := _CODE_BY_NAME_KEY.get(name_key(province))) is not None:
        code = found
    else:
        raise ValueError(f"unknown province {province!r}")
    if not _FIRST_CENTURY <= dob.year < _LAST_CENTURY + 100:
        raise ValueError(f"birth year {dob.year} cannot be encoded in a CCCD")
    if isinstance(serial, bool) or not isinstance(serial, int):
        raise TypeError("serial must be an int")
    if not 0 <= serial <= 999_999:
        raise ValueError(f"serial {serial} is outside 0..999999")
    g = (dob.year // 100 - _FIRST_CENTURY // 100) * 2 + (0 if sex == "male" else 1)
    return f"{code}{g}{dob.year % 100:02d}{serial:06d}"
