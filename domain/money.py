"""Formatting, parsing and Vietnamese spelling of amounts in whole đồng (never floats)."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["MAX_WORDS_AMOUNT", "format_vnd", "format_vnd_en", "parse_vnd", "vnd_in_words"]

NBSP: Final = "\u00a0"
DONG_SIGN: Final = "\u20ab"  # ₫

# Vouchers never get near this; the bound keeps the unit names ("triệu tỷ") defined.
MAX_WORDS_AMOUNT: Final = 10**15

_DIGITS: Final = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_BILLION: Final = 10**9


def _require_int(amount: object) -> int:
    # bool is an int subclass: True would silently format as "1 ₫".
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an int number of đồng, not {type(amount).__name__}")
    return amount


def format_vnd(amount: int) -> str:
    """Format like ICU's vi-VN currency style: "1.300.000 ₫" with a no-break space."""
    amount = _require_int(amount)
    sign = "-" if amount < 0 else ""
    grouped = f"{abs(amount):,}".replace(",", ".")
    # The no-break space keeps the sign from wrapping onto its own line.
    return f"{sign}{grouped}{NBSP}{DONG_SIGN}"


def format_vnd_en(amount: int) -> str:
    """Format for English text: "VND 1,300,000" (negative: "-VND 1,300,000", as ICU en)."""
    amount = _require_int(amount)
    sign = "-" if amount < 0 else ""
    return f"{sign}VND {abs(amount):,}"


def _read_triple(n: int, *, leading: bool) -> list[str]:
    """Words for 0 < n < 1000; a non-leading group says its zero hundreds and tens."""
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    # Inside a larger number every group has three digits, so "1.005.000" is read
    # "một triệu không trăm linh năm nghìn", not "một triệu năm nghìn".
    if hundreds or not leading:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            if words:
                words.append("linh")  # the zero tens digit is spoken as "linh"
            words.append(_DIGITS[units])
    elif tens == 1:
        words.append("mười")
        if units:
            words.append("lăm" if units == 5 else _DIGITS[units])
    else:
        words += [_DIGITS[tens], "mươi"]
        if units == 1:
            words.append("mốt")
        elif units == 5:
            words.append("lăm")
        elif units:
            # "tư" is regional/optional after "mươi"; "bốn" is always correct.
            words.append(_DIGITS[units])
    return words


def _read_below_billion(n: int, *, leading: bool) -> list[str]:
    """Words for 0 < n < 10^9, as groups of three digits with "triệu"/"nghìn"."""
    words: list[str] = []
    for scale, unit in ((10**6, "triệu"), (10**3, "nghìn"), (1, "")):
        group = (n // scale) % 1000
        # An all-zero group is skipped entirely: 1.000.005 is "một triệu không trăm
        # linh năm", never "một triệu không nghìn ...".
        if group == 0:
            continue
        words += _read_triple(group, leading=leading and not words)
        if unit:
            words.append(unit)
    return words


def _read(n: int, *, leading: bool) -> list[str]:
    # Above a billion Vietnamese nests the scales: 10^12 is "nghìn tỷ", 10^15
    # "triệu tỷ", so the part above 10^9 is read as a number and followed by "tỷ".
    high, low = divmod(n, _BILLION)
    words: list[str] = []
    if high:
        words += [*_read(high, leading=leading), "tỷ"]
    if low:
        words += _read_below_billion(low, leading=leading and not words)
    return words


def vnd_in_words(amount: int) -> str:
    """Spell a non-negative amount in Vietnamese for payment vouchers.

    1300000 → "Một triệu ba trăm nghìn đồng"; supports 0..10^15.
    """
    amount = _require_int(amount)
    if amount < 0:
        raise ValueError("amount in words must not be negative")
    if amount > MAX_WORDS_AMOUNT:
        raise ValueError(f"amount in words is limited to {MAX_WORDS_AMOUNT:,} đồng")
    words = _read(amount, leading=True) if amount else [_DIGITS[0]]
    text = " ".join([*words, "đồng"])
    return text[0].upper() + text[1:]


# Either plain digits, or groups of three after a first group of 1-3 digits, all
# separated by the same separator (dot, or a space/NBSP/narrow NBSP as in French-
# style exports). [0-9] rather than \d: \d matches non-ASCII digits too.
_AMOUNT_RE: Final = re.compile(
    r"(?P<num>[0-9]+|[0-9]{1,3}(?P<sep>[. \u00a0\u202f])[0-9]{3}(?:(?P=sep)[0-9]{3})*)"
    r"[ \u00a0\u202f]*(?P<unit>₫|đ|đồng)?"
)


def parse_vnd(text: str) -> int:
    """Parse a whole, non-negative amount such as "1.300.000 ₫" or "1 300 000 đồng"."""
    # NFC so a decomposed "đồng" matches; casefold accepts "Đ" and "ĐỒNG".
    cleaned = unicodedata.normalize("NFC", text).strip().casefold()
    if not cleaned:
        raise ValueError("amount is empty")
    if cleaned.startswith(("-", "−")):
        raise ValueError(f"amount must not be negative: {text!r}")
    if "," in cleaned:
        # In Vietnamese the comma is the decimal separator; đồng have no fractions.
        raise ValueError(f"amount must be a whole number of đồng, without decimals: {text!r}")
    match = _AMOUNT_RE.fullmatch(cleaned)
    if match is None:
        raise ValueError(
            f"not an amount in đồng: {text!r} "
            "(expected digits grouped by dots or spaces, e.g. '1.300.000 ₫')"
        )
    return int(re.sub(r"[^0-9]", "", match["num"]))
