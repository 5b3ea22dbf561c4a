"""Roles people hold at an org unit, and the levels of the union hierarchy."""

from enum import StrEnum


class OrgLevel(StrEnum):
    """Levels of the union tree, top to bottom (since 7/2025 there is no district level)."""

    FEDERATION = "federation"  # Tổng Liên đoàn Lao động Việt Nam
    PROVINCE = "province"  # Liên đoàn Lao động tỉnh
    UPPER = "upper"  # Công đoàn cấp trên trực tiếp cơ sở (mostly commune/ward unions)
    GRASSROOTS = "grassroots"  # Công đoàn cơ sở

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {
    OrgLevel.FEDERATION: 0,
    OrgLevel.PROVINCE: 1,
    OrgLevel.UPPER: 2,
    OrgLevel.GRASSROOTS: 3,
}


class Role(StrEnum):
    """A function held at an org unit; it reaches that unit and every unit below it."""

    GRASSROOTS_OFFICER = "grassroots_officer"  # cán bộ CĐCS: submits, answers, withdraws
    GRASSROOTS_CHAIR = "grassroots_chair"  # Chủ tịch CĐCS
    UPPER_CHAIR = "upper_chair"  # Chủ tịch Công đoàn cấp trên trực tiếp cơ sở
    PROVINCE_POLICY = "province_policy"  # Ban Chính sách – Pháp luật – QHLĐ, LĐLĐ tỉnh
    PROVINCE_STANDING = "province_standing"  # Thường trực LĐLĐ tỉnh / HĐ quản lý Quỹ
    PROVINCE_BOARD = "province_board"  # Ban Thường vụ LĐLĐ tỉnh (committee)
    PROVINCE_PRESIDENT = "province_president"  # Chủ tịch LĐLĐ tỉnh
    TREASURER = "treasurer"  # kế toán / thủ quỹ
    AUDITOR = "auditor"  # Ủy ban Kiểm tra (UBKT)
    ADMIN = "admin"  # quản trị hệ thống
    MEMBER = "member"  # đoàn viên with an own account


ROLE_TITLES: dict[Role, tuple[str, str]] = {
    Role.GRASSROOTS_OFFICER: ("Cán bộ Công đoàn cơ sở", "Grassroots union officer"),
    Role.GRASSROOTS_CHAIR: ("Chủ tịch Công đoàn cơ sở", "Grassroots union chair"),
    Role.UPPER_CHAIR: ("Chủ tịch Công đoàn cấp trên trực tiếp cơ sở", "Upper-level union chair"),
    Role.PROVINCE_POLICY: ("Ban Chính sách – Pháp luật, LĐLĐ tỉnh", "Provincial policy department"),
    Role.PROVINCE_STANDING: ("Thường trực LĐLĐ tỉnh", "Provincial standing committee"),
    Role.PROVINCE_BOARD: ("Ban Thường vụ LĐLĐ tỉnh", "Provincial executive board"),
    Role.PROVINCE_PRESIDENT: ("Chủ tịch LĐLĐ tỉnh", "Provincial federation president"),
    Role.TREASURER: ("Kế toán / Thủ quỹ", "Treasurer"),
    Role.AUDITOR: ("Ủy ban Kiểm tra", "Inspection committee (auditor)"),
    Role.ADMIN: ("Quản trị hệ thống", "Administrator"),
    Role.MEMBER: ("Đoàn viên", "Member"),
}
