"""Tests of domain.cccd: CCCD plausibility checks, masking and construction."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.cccd import PROVINCE_CODES, Sex, check_cccd, make_cccd, mask_cccd

# Lai Châu (012), 1900s male (0), born 1990, serial 001234.
VALID = "012090001234"
DOB_1990 = date(1990, 5, 17)


class TestProvinceCodes:
    def test_lists_the_63_pre_2025_provinces_with_3_digit_codes(self) -> None:
        assert len(PROVINCE_CODES) == 63
        assert len(set(PROVINCE_CODES.values())) == 63
        assert all(len(code) == 3 and code.isdigit() for code in PROVINCE_CODES)

    @pytest.mark.parametrize(
        ("code", "name"),
        [
            ("001", "Hà Nội"),
            ("011", "Điện Biên"),
            ("012", "Lai Châu"),
            ("046", "Thừa Thiên Huế"),
            ("077", "Bà Rịa - Vũng Tàu"),
            ("079", "Hồ Chí Minh"),
            ("096", "Cà Mau"),
        ],
    )
    def test_maps_codes_to_vietnamese_names(self, code: str, name: str) -> None:
        assert PROVINCE_CODES[code] == name

    @pytest.mark.parametrize("code", ["000", "003", "005", "013", "097", "099"])
    def test_has_no_entry_for_unused_codes(self, code: str) -> None:
        assert code not in PROVINCE_CODES

    def test_names_are_stored_in_nfc(self) -> None:
        assert all(unicodedata.is_normalized("NFC", n) for n in PROVINCE_CODES.values())

    def test_cannot_be_modified(self) -> None:
        with pytest.raises(TypeError):
            PROVINCE_CODES["100"] = "Nowhere"  # type: ignore[index]


class TestCheckCccd:
    def test_a_consistent_number_has_no_problems(self) -> None:
        assert check_cccd(VALID) == []
        assert check_cccd(VALID, DOB_1990, "male") == []

    @pytest.mark.parametrize(
        "cccd",
        [
            "",
            "01209000123",  # 11 digits
            "0120900012345",  # 13 digits
            "01209000123a",
            "012 90001234",
            " 012090001234",
            "０１２０９０００１２３４",  # full-width digits
            "٠١٢٠٩٠٠٠١٢٣٤",  # Arabic-Indic digits
        ],
    )
    def test_anything_but_12_ascii_digits_is_a_format_problem(self, cccd: str) -> None:
        assert check_cccd(cccd) == ["cccd_format"]

    def test_a_format_problem_is_reported_alone(self) -> None:
        # 003 is not a province and 2024 contradicts the digits, but the layout is broken.
        assert check_cccd("00309000123", date(2024, 1, 1), "female") == ["cccd_format"]

    def test_an_unknown_province_is_reported(self) -> None:
        assert check_cccd("003090001234") == ["cccd_province"]

    @pytest.mark.parametrize(
        ("g", "dob_year", "sex"),
        [
            ("0", 1990, "male"),
            ("1", 1990, "female"),
            ("2", 2005, "male"),
            ("3", 2005, "female"),
            ("4", 2105, "male"),
            ("5", 2105, "female"),
            ("6", 2205, "male"),
            ("7", 2205, "female"),
            ("8", 2305, "male"),
            ("9", 2305, "female"),
        ],
    )
    def test_the_century_sex_digit_follows_the_published_table(
        self, g: str, dob_year: int, sex: Sex
    ) -> None:
        cccd = f"012{g}{dob_year % 100:02d}000001"
        assert check_cccd(cccd, date(dob_year, 1, 1), sex) == []
        other: Sex = "female" if sex == "male" else "male"
        assert check_cccd(cccd, date(dob_year, 1, 1), other) == ["cccd_century_sex"]
        assert check_cccd(cccd, date(dob_year - 100, 1, 1), sex) == ["cccd_century_sex"]

    def test_sex_is_checked_without_a_birth_date(self) -> None:
        assert check_cccd(VALID, sex="female") == ["cccd_century_sex"]

    def test_century_is_checked_without_sex(self) -> None:
        # Born 2090 would need G = 2 or 3.
        assert check_cccd(VALID, date(2090, 5, 17)) == ["cccd_century_sex"]

    def test_year_boundaries_belong_to_the_century_they_start(self) -> None:
        assert check_cccd("012000000001", date(1900, 1, 1)) == []
        assert check_cccd("012299000001", date(1999, 12, 31)) == ["cccd_century_sex"]
        assert check_cccd("012200000001", date(2000, 1, 1)) == []

    def test_a_different_birth_year_is_reported(self) -> None:
        assert check_cccd(VALID, date(1991, 5, 17)) == ["cccd_birth_year"]

    def test_reports_every_problem_once_in_a_fixed_order(self) -> None:
        # Unknown province, woman's digit for a man born in 2001, year 90 instead of 01.
        assert check_cccd("003190001234", date(2001, 1, 1), "male") == [
            "cccd_province",
            "cccd_century_sex",
            "cccd_birth_year",
        ]

    def test_rejects_a_sex_outside_the_literal(self) -> None:
        with pytest.raises(ValueError, match="sex"):
            check_cccd(VALID, sex="m")  # type: ignore[arg-type]


class TestMaskCccd:
    def test_shows_only_the_last_four_digits(self) -> None:
        assert mask_cccd("012090001234") == "••••••••1234"

    @given(st.text(min_size=5))
    def test_keeps_the_length_and_the_last_four_characters(self, s: str) -> None:
        masked = mask_cccd(s)
        assert len(masked) == len(s)
        assert masked[-4:] == s[-4:]
        assert set(masked[:-4]) == {"•"}

    @pytest.mark.parametrize("short", ["", "1", "1234"])
    def test_never_shows_a_short_value_in_full(self, short: str) -> None:
        assert mask_cccd(short) == "•" * len(short)


class TestMakeCccd:
    def test_builds_the_documented_layout(self) -> None:
        assert make_cccd("012", DOB_1990, "male", 1234) == VALID
        assert make_cccd("001", date(2003, 2, 1), "female", 999_999) == "001303999999"

    @pytest.mark.parametrize("province", ["Lai Châu", "lai chau", "LAI CHÂU", "012"])
    def test_accepts_a_code_or_a_province_name(self, province: str) -> None:
        assert make_cccd(province, DOB_1990, "male", 1234) == VALID

    @pytest.mark.parametrize("province", ["999", "12", "Atlantis", ""])
    def test_rejects_unknown_provinces(self, province: str) -> None:
        with pytest.raises(ValueError, match="province"):
            make_cccd(province, DOB_1990, "male", 1)

    @pytest.mark.parametrize("serial", [-1, 1_000_000])
    def test_rejects_serials_that_do_not_fit_six_digits(self, serial: int) -> None:
        with pytest.raises(ValueError, match="serial"):
            make_cccd("012", DOB_1990, "male", serial)

    @pytest.mark.parametrize("year", [1899, 2400])
    def test_rejects_birth_years_without_a_century_digit(self, year: int) -> None:
        with pytest.raises(ValueError, match="birth year"):
            make_cccd("012", date(year, 1, 1), "male", 1)

    @pytest.mark.slow
    @given(
        province=st.sampled_from(sorted(PROVINCE_CODES)),
        dob=st.dates(min_value=date(1900, 1, 1), max_value=date(2399, 12, 31)),
        sex=st.sampled_from(get_args(Sex)),
        serial=st.integers(0, 999_999),
    )
    def test_built_numbers_pass_the_check_for_their_owner_and_fail_for_others(
        self, province: str, dob: date, sex: Sex, serial: int
    ) -> None:
        cccd = make_cccd(province, dob, sex, serial)
        assert check_cccd(cccd, dob, sex) == []
        other: Sex = "female" if sex == "male" else "male"
        assert check_cccd(cccd, dob, other) == ["cccd_century_sex"]
        next_yy = date(1900 + (dob.year + 1) % 100, 1, 1)
        assert "cccd_birth_year" in check_cccd(cccd, next_yy)
