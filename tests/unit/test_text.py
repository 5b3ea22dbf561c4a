"""Tests of domain.text: NFC normalisation, name search keys and name validation."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.text import MAX_NAME_LENGTH, clean_person_name, name_key, nfc

# Every letter of the Vietnamese alphabet with every tone mark.
VIETNAMESE_LETTERS = (
    "aàảãáạăằẳẵắặâầẩẫấậbcdđeèẻẽéẹêềểễếệghiìỉĩíịklmnoòỏõóọôồổỗốộơờởỡớợpqrstuùủũúụưừửữứựvxyỳỷỹýỵ"
)


def nfd(s: str) -> str:
    return unicodedata.normalize("NFD", s)


class TestNfc:
    def test_decomposed_input_comes_back_precomposed(self) -> None:
        decomposed = nfd("Nguyễn Thị Hoà")
        assert decomposed != "Nguyễn Thị Hoà"
        assert nfc(decomposed) == "Nguyễn Thị Hoà"

    def test_outer_whitespace_is_stripped_and_inner_runs_collapse_to_one_space(self) -> None:
        assert nfc("  Lò \t Thị\u00a0\u00a0Lan \n") == "Lò Thị Lan"

    def test_blank_text_becomes_empty(self) -> None:
        assert nfc(" \t\u00a0\n ") == ""

    @given(st.text())
    def test_is_idempotent_and_leaves_no_double_or_outer_spaces(self, s: str) -> None:
        once = nfc(s)
        assert nfc(once) == once
        assert "  " not in once
        assert once == once.strip()
        assert unicodedata.is_normalized("NFC", once)


class TestNameKey:
    @pytest.mark.parametrize(
        "name",
        [
            "Nguyễn Thị Hoà",  # old tone placement
            "Nguyễn Thị Hòa",  # new tone placement
            "nguyen thi hoa",
            "NGUYỄN  THỊ HÒA",
            "  Nguyen\tThi  Hoa ",
        ],
    )
    def test_spellings_of_one_name_share_a_key(self, name: str) -> None:
        assert name_key(name) == "nguyen thi hoa"
        assert name_key(nfd(name)) == "nguyen thi hoa"

    @pytest.mark.parametrize(
        ("name", "key"),
        [
            ("Đặng", "dang"),
            ("đỗ đức", "do duc"),
            ("ĐINH", "dinh"),
            ("Trương Ưng Ơn", "truong ung on"),
            ("Giàng A Pếnh", "giang a penh"),
            ("H'Mông", "h'mong"),
            ("Lê Văn Ấn", "le van an"),
        ],
    )
    def test_strips_every_vietnamese_mark_including_d_with_stroke(
        self, name: str, key: str
    ) -> None:
        assert name_key(name) == key

    def test_different_names_keep_different_keys(self) -> None:
        assert name_key("Nguyễn Văn An") != name_key("Nguyễn Văn Anh")

    @given(st.text())
    def test_keys_are_stable_under_normalisation_and_case(self, s: str) -> None:
        key = name_key(s)
        assert name_key(key) == key
        assert name_key(nfd(s)) == key

    @given(st.text(alphabet=VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper() + " \t"))
    def test_vietnamese_text_reduces_to_lowercase_ascii_whatever_its_case(self, s: str) -> None:
        key = name_key(s)
        assert key.isascii()
        assert key == key.lower()
        assert name_key(s.upper()) == key == name_key(s.lower())


class TestCleanPersonName:
    @pytest.mark.parametrize(
        "name",
        [
            "Sùng A Chau",
            "Giàng A Pếnh",
            "Lò Thị Lan",
            "H'Mông",
            "H\u2019Hen Niê",
            "Nguyễn Thị Minh-Khai",
            "Nguyễn V. An",
        ],
    )
    def test_accepts_real_names_unchanged(self, name: str) -> None:
        assert clean_person_name(name) == name

    def test_returns_the_normalised_form(self) -> None:
        assert clean_person_name(nfd("  Lò   Thị Lan\t")) == "Lò Thị Lan"

    @pytest.mark.parametrize("name", ["", "   ", "\t\n"])
    def test_rejects_empty_names(self, name: str) -> None:
        with pytest.raises(ValueError, match="name is empty"):
            clean_person_name(name)

    def test_accepts_the_longest_allowed_name_and_rejects_one_more_character(self) -> None:
        longest = "A" * MAX_NAME_LENGTH
        assert clean_person_name(longest) == longest
        with pytest.raises(ValueError, match="longer than 120"):
            clean_person_name(longest + "A")

    def test_length_is_measured_after_normalisation(self) -> None:
        # 120 visible characters padded with spaces and written decomposed.
        name = nfd("Ễ" * MAX_NAME_LENGTH)
        assert len(name) > MAX_NAME_LENGTH
        assert clean_person_name(f"  {name}  ") == "Ễ" * MAX_NAME_LENGTH

    @pytest.mark.parametrize("name", ["Nguyễn Văn 2", "Lò Thị Lan3", "Sùng A ٣", "Vàng Ⅱ"])
    def test_rejects_digits(self, name: str) -> None:
        with pytest.raises(ValueError, match="digits"):
            clean_person_name(name)

    @pytest.mark.parametrize(
        "name",
        ["Lò\x00Lan", "Lò\x1fLan", "Lò\u200bLan", "\u202eLò Lan", "\ufeffLò Lan", "Lò\x7fLan"],
    )
    def test_rejects_control_and_invisible_format_characters(self, name: str) -> None:
        with pytest.raises(ValueError, match="control characters"):
            clean_person_name(name)

    @pytest.mark.parametrize("name", ["<script>", "Lan@mail", "Lò_Lan", "Lan 😀"])
    def test_rejects_symbols(self, name: str) -> None:
        with pytest.raises(ValueError, match="not allowed"):
            clean_person_name(name)

    def test_rejects_punctuation_without_letters(self) -> None:
        with pytest.raises(ValueError, match="no letters"):
            clean_person_name("' - .")
