"""Unicode normalisation, search keys and validation for Vietnamese personal names."""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_NAME_LENGTH", "clean_person_name", "name_key", "nfc"]

MAX_NAME_LENGTH = 120

# Apostrophes and hyphens occur in ethnic-minority names ("H'Mông", "Kơ-Sa"); the
# typographic variants arrive from word processors and phone keyboards. The full stop
# covers abbreviated middle names ("Nguyễn V. An") seen on old paper records.
_NAME_PUNCTUATION = frozenset("'\u2019\u02bc-\u2010.")
_PASTED_WHITESPACE = frozenset("\t\n\r")


def nfc(s: str) -> str:
    """Return `s` in Unicode NFC with outer whitespace stripped and inner runs collapsed.

    Vietnamese text arrives both precomposed and decomposed (macOS, some IMEs), and
    with stray double spaces, tabs or NBSPs from spreadsheets; without this two
    spellings of the same name would compare unequal.
    """
    # str.split() without arguments splits on every Unicode whitespace (NBSP included)
    # and drops empty pieces, which strips and collapses in one step.
    return " ".join(unicodedata.normalize("NFC", s).split())


def name_key(s: str) -> str:
    """Return an accent- and case-insensitive key for searching and de-duplicating names.

    "Nguyễn Thị Hoà", "NGUYỄN  THỊ HÒA" and "nguyen thi hoa" share the key
    "nguyen thi hoa": people type names without diacritics, and "oà"/"òa" tone
    placement differs between the old and new orthography.
    """
    folded = unicodedata.normalize("NFC", s).casefold()
    # Tone marks and the circumflex, breve and horn are all combining marks (Mn) in
    # NFD, so dropping Mn leaves the bare Latin letter.
    bare = "".join(
        ch for ch in unicodedata.normalize("NFD", folded) if unicodedata.category(ch) != "Mn"
    )
    # đ is a letter of its own (a stroke, not a combining mark): NFD leaves it alone.
    return " ".join(bare.replace("đ", "d").split())


def clean_person_name(s: str) -> str:
    """Return the NFC-normalised name, or raise ValueError if it cannot be a person's name."""
    # Control and format characters are checked on the raw input because nfc() would
    # turn some of them (\x1c-\x1f count as whitespace) into spaces and hide them.
    # Tabs and line breaks from pasted spreadsheet cells are tolerated: nfc()
    # collapses them.
    for ch in s:
        # Cf includes zero-width and bidi-override characters, which make two names
        # look identical on screen while differing in storage.
        if unicodedata.category(ch).startswith("C") and ch not in _PASTED_WHITESPACE:
            raise ValueError("name contains control characters")
    name = nfc(s)
    if not name:
        raise ValueError("name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"name is longer than {MAX_NAME_LENGTH} characters")
    has_letter = False
    for ch in name:
        category = unicodedata.category(ch)
        if category.startswith("N"):
            raise ValueError("name contains digits")
        if category.startswith("L"):
            has_letter = True
        elif not (category.startswith("M") or ch == " " or ch in _NAME_PUNCTUATION):
            raise ValueError(f"name contains a character not allowed in a name: {ch!r}")
    if not has_letter:
        raise ValueError("name contains no letters")
    return name
