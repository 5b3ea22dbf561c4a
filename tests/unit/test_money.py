"""Tests of domain.money: VND formatting, parsing and amounts in Vietnamese words."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import MAX_WORDS_AMOUNT, format_vnd, format_vnd_en, parse_vnd, vnd_in_words

NBSP = "\u00a0"


class TestFormatVnd:
    @pytest.mark.parametrize(
        ("amount", "text"),
        [
            (0, "0\u00a0₫"),
            (5, "5\u00a0₫"),
            (999, "999\u00a0₫"),
            (1000, "1.000\u00a0₫"),
            (1_300_000, "1.300.000\u00a0₫"),
            (-1_300_000, "-1.300.000\u00a0₫"),
            (12_345_678_901, "12.345.678.901\u00a0₫"),
        ],
    )
    def test_uses_dot_grouping_a_no_break_space_and_the_dong_sign(
        self, amount: int, text: str
    ) -> None:
        assert format_vnd(amount) == text

    def test_the_sign_is_u20ab_and_the_space_cannot_break(self) -> None:
        text = format_vnd(1)
        assert text.endswith("\u20ab")
        assert text[-2] == "\u00a0"

    @pytest.mark.parametrize("bad", [True, False, 1.0, 1300000.0, "1300000", None])
    def test_refuses_anything_but_an_int(self, bad: object) -> None:
        with pytest.raises(TypeError):
            format_vnd(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            format_vnd_en(bad)  # type: ignore[arg-type]


class TestFormatVndEn:
    @pytest.mark.parametrize(
        ("amount", "text"),
        [
            (0, "VND 0"),
            (999, "VND 999"),
            (1_300_000, "VND 1,300,000"),
            (-1_300_000, "-VND 1,300,000"),
        ],
    )
    def test_uses_the_currency_code_and_comma_grouping(self, amount: int, text: str) -> None:
        assert format_vnd_en(amount) == text


WORDS = [
    (0, "Không đồng"),
    (1, "Một đồng"),
    (5, "Năm đồng"),
    (10, "Mười đồng"),
    (11, "Mười một đồng"),
    (14, "Mười bốn đồng"),
    (15, "Mười lăm đồng"),
    (20, "Hai mươi đồng"),
    (21, "Hai mươi mốt đồng"),
    (24, "Hai mươi bốn đồng"),
    (25, "Hai mươi lăm đồng"),
    (31, "Ba mươi mốt đồng"),
    (55, "Năm mươi lăm đồng"),
    (99, "Chín mươi chín đồng"),
    (100, "Một trăm đồng"),
    (101, "Một trăm linh một đồng"),
    (105, "Một trăm linh năm đồng"),
    (110, "Một trăm mười đồng"),
    (111, "Một trăm mười một đồng"),
    (115, "Một trăm mười lăm đồng"),
    (121, "Một trăm hai mươi mốt đồng"),
    (1000, "Một nghìn đồng"),
    (1001, "Một nghìn không trăm linh một đồng"),
    (1050, "Một nghìn không trăm năm mươi đồng"),
    (1100, "Một nghìn một trăm đồng"),
    (10_000, "Mười nghìn đồng"),
    (15_000, "Mười lăm nghìn đồng"),
    (21_000, "Hai mươi mốt nghìn đồng"),
    (100_000, "Một trăm nghìn đồng"),
    (250_000, "Hai trăm năm mươi nghìn đồng"),
    (500_500, "Năm trăm nghìn năm trăm đồng"),
    (1_000_000, "Một triệu đồng"),
    (1_000_001, "Một triệu không trăm linh một đồng"),
    (1_005_000, "Một triệu không trăm linh năm nghìn đồng"),
    (1_010_000, "Một triệu không trăm mười nghìn đồng"),
    (1_300_000, "Một triệu ba trăm nghìn đồng"),
    (2_500_000, "Hai triệu năm trăm nghìn đồng"),
    (
        12_345_678,
        "Mười hai triệu ba trăm bốn mươi lăm nghìn sáu trăm bảy mươi tám đồng",
    ),
    (50_000_000, "Năm mươi triệu đồng"),
    (105_000_000, "Một trăm linh năm triệu đồng"),
    (1_000_000_000, "Một tỷ đồng"),
    (1_000_000_005, "Một tỷ không trăm linh năm đồng"),
    (1_200_000_000, "Một tỷ hai trăm triệu đồng"),
    (2_000_000_000, "Hai tỷ đồng"),
    (
        2_021_000_015,
        "Hai tỷ không trăm hai mươi mốt triệu không trăm mười lăm đồng",
    ),
    (1_000_000_000_000, "Một nghìn tỷ đồng"),
    (5_000_000_000_000, "Năm nghìn tỷ đồng"),
    (1_001_000_000_000, "Một nghìn không trăm linh một tỷ đồng"),
    (MAX_WORDS_AMOUNT, "Một triệu tỷ đồng"),
]


class TestVndInWords:
    @pytest.mark.parametrize(("amount", "words"), WORDS)
    def test_reads_amounts_as_on_a_payment_voucher(self, amount: int, words: str) -> None:
        assert vnd_in_words(amount) == words

    def test_supports_exactly_up_to_10_to_the_15(self) -> None:
        assert MAX_WORDS_AMOUNT == 10**15
        with pytest.raises(ValueError, match="limited"):
            vnd_in_words(10**15 + 1)

    def test_refuses_negative_amounts(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            vnd_in_words(-1)

    @pytest.mark.parametrize("bad", [True, 1.0, "1"])
    def test_refuses_anything_but_an_int(self, bad: object) -> None:
        with pytest.raises(TypeError):
            vnd_in_words(bad)  # type: ignore[arg-type]

    @pytest.mark.slow
    @given(st.integers(1, MAX_WORDS_AMOUNT))
    def test_follows_the_reading_rules_for_any_amount(self, amount: int) -> None:
        words = vnd_in_words(amount)
        assert words[0].isupper()
        assert words[1:] == words[1:].lower()
        assert words.endswith(" đồng")
        assert "  " not in words
        tokens = words.lower().split()
        pairs = list(itertools.pairwise(tokens))
        # One after "mươi" is "mốt", five after a ten is "lăm", zero tens are "linh".
        assert ("mươi", "một") not in pairs
        assert ("mươi", "năm") not in pairs
        assert ("mười", "năm") not in pairs
        assert ("không", "mươi") not in pairs
        assert ("một", "mươi") not in pairs
        # A zero group is skipped, never read as "không nghìn/triệu/tỷ".
        assert ("không", "nghìn") not in pairs
        assert ("không", "triệu") not in pairs
        # Non-zero amounts never start with zero hundreds.
        assert tokens[0] != "không"

    @given(st.integers(1, 999))
    def test_thousands_are_the_same_words_followed_by_nghin(self, n: int) -> None:
        small = vnd_in_words(n).removesuffix(" đồng")
        assert vnd_in_words(n * 1000) == f"{small} nghìn đồng"
        assert vnd_in_words(n * 1_000_000) == f"{small} triệu đồng"
        assert vnd_in_words(n * 1_000_000_000) == f"{small} tỷ đồng"

    @given(st.integers(1, 999))
    def test_inner_groups_always_say_their_hundreds(self, n: int) -> None:
        words = vnd_in_words(1_000_000 + n)
        assert words.startswith("Một triệu ")
        assert " trăm" in words


class TestParseVnd:
    @pytest.mark.parametrize(
        "text",
        [
            "1300000",
            "1.300.000",
            "1.300.000 ₫",
            "1.300.000\u00a0₫",
            "1.300.000₫",
            "1.300.000 đ",
            "1.300.000đ",
            "1.300.000 Đ",
            "1.300.000 đồng",
            "1.300.000 ĐỒNG",
            "1 300 000",
            "1\u00a0300\u00a0000",
            "1\u202f300\u202f000 ₫",
            "  1.300.000 ₫  ",
            "1.300.000 đo\u0302\u0300ng",  # "đồng" typed decomposed
        ],
    )
    def test_accepts_the_usual_ways_of_writing_an_amount(self, text: str) -> None:
        assert parse_vnd(text) == 1_300_000

    @pytest.mark.parametrize(
        ("text", "amount"),
        [("0", 0), ("0 ₫", 0), ("999", 999), ("1.000", 1000), ("12.345.678.901", 12_345_678_901)],
    )
    def test_reads_the_value(self, text: str, amount: int) -> None:
        assert parse_vnd(text) == amount

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "empty"),
            ("   ", "empty"),
            ("-1.300.000", "negative"),
            ("−1.300.000", "negative"),
            ("1.300.000,5", "decimals"),
            ("1,300,000", "decimals"),
            ("1.300.000,00 ₫", "decimals"),
            ("abc", "not an amount"),
            ("1.300.000 USD", "not an amount"),
            ("1.3", "not an amount"),
            ("1.30", "not an amount"),
            ("1.3000", "not an amount"),
            ("1300.000.000", "not an amount"),
            ("1.300 000", "not an amount"),
            (".300", "not an amount"),
            ("1.300.", "not an amount"),
            ("+1300", "not an amount"),
            ("₫ 1.300", "not an amount"),
            ("1.300 ₫ ₫", "not an amount"),
            ("１３００", "not an amount"),
            ("1e6", "not an amount"),
        ],
    )
    def test_rejects_everything_else_with_a_clear_message(self, text: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            parse_vnd(text)

    @given(st.integers(0, 10**18))
    def test_reads_back_what_format_vnd_writes(self, amount: int) -> None:
        assert parse_vnd(format_vnd(amount)) == amount
        assert parse_vnd(str(amount)) == amount
        assert parse_vnd(f"{amount:,} đồng".replace(",", " ")) == amount
