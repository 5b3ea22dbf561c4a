"""Vietnamese and English texts for everything a person reads: error titles, check reasons.

Keys are stable codes; Vietnamese is the default language. A missing key falls back to the
key itself so a typo shows up in review rather than crashing a request.
"""

from collections.abc import Mapping
from typing import Literal

Lang = Literal["vi", "en"]

MESSAGES: Mapping[str, tuple[str, str]] = {
    # --- refused requests (errors) -----------------------------------------------------
    "not_found": ("Không tìm thấy {entity}", "{entity} not found"),
    "conflict": ("Yêu cầu xung đột với thay đổi khác", "The request conflicts with another change"),
    "stale_case": (
        "Hồ sơ đã được người khác thay đổi, vui lòng tải lại",
        "The case was changed by someone else; reload it",
    ),
    "task_not_open": ("Nhiệm vụ không còn mở", "The task is no longer open"),
    "transition_not_allowed": (
        "Không thể {action} khi hồ sơ ở trạng thái {status}",
        "Cannot {action} while the case is {status}",
    ),
    "permission_denied": ("Không có quyền thực hiện", "Not permitted"),
    "not_task_holder": (
        "Bạn không giữ vai trò {role} tại đơn vị phụ trách nhiệm vụ này",
        "You do not hold the role {role} at the unit this task is routed to",
    ),
    "task_claimed_by_other": (
        "Nhiệm vụ đang do người khác nhận xử lý",
        "The task is claimed by someone else",
    ),
    "invalid_request": ("Dữ liệu không hợp lệ", "Invalid request"),
    "invalid_field": (
        "Trường {field} không hợp lệ: {reason}",
        "Field {field} is invalid: {reason}",
    ),
    "rule_violation": (
        "Yêu cầu bị từ chối theo quy định chống trục lợi",
        "Refused by the anti-abuse rules",
    ),
    "duplicate": ("Đã tồn tại: {what}", "Already exists: {what}"),
    "invalid_definition": ("Định nghĩa quy trình không hợp lệ", "Invalid workflow definition"),
    "budget_insufficient": (
        "Ngân sách quỹ {fund} năm {year} không đủ",
        "The {fund} budget for {year} is insufficient",
    ),
    # --- HTTP API (api-core): problem titles, log-in, idempotency ------------------------
    "problem.not_found": ("Không tìm thấy", "Not found"),
    "problem.conflict": ("Xung đột với trạng thái hiện tại", "Conflicts with the current state"),
    "problem.forbidden": ("Không có quyền thực hiện", "Not permitted"),
    "problem.invalid": ("Dữ liệu không hợp lệ", "Invalid request"),
    "problem.rule": (
        "Yêu cầu bị từ chối theo quy định",
        "Refused by the rules",
    ),
    "problem.unauthorized": ("Chưa xác thực", "Not authenticated"),
    "problem.throttled": ("Quá nhiều lần thử", "Too many attempts"),
    "validation_error": ("Dữ liệu gửi lên không hợp lệ", "The request data is invalid"),
    "unauthorized": (
        "Chưa đăng nhập hoặc mã truy cập không hợp lệ, đã hết hạn",
        "Not logged in, or the access token is invalid or expired",
    ),
    "invalid_credentials": (
        "Tên đăng nhập hoặc mật khẩu không đúng",
        "Incorrect username or password",
    ),
    "login_throttled": (
        "Đăng nhập sai quá nhiều lần; thử lại sau {seconds} giây",
        "Too many failed log-ins; try again in {seconds} seconds",
    ),
    "idempotency_key_reused": (
        "Khóa Idempotency-Key đã được dùng cho một yêu cầu khác",
        "The Idempotency-Key was already used for a different request",
    ),
    "idempotency_in_progress": (
        "Yêu cầu với cùng Idempotency-Key đang được xử lý",
        "A request with the same Idempotency-Key is still being processed",
    ),
    "role_required": (
        "Cần vai trò {roles} để thực hiện",
        "Needs the role {roles}",
    ),
    "method_not_allowed": ("Phương thức không được hỗ trợ", "Method not allowed"),
    "unsupported_media_type": (
        "Kiểu nội dung không được hỗ trợ; hãy gửi application/json",
        "Unsupported content type; send application/json",
    ),
    "payload_too_large": ("Dữ liệu gửi lên quá lớn", "The request body is too large"),
    "http_error": ("Yêu cầu không hợp lệ", "Bad request"),
    "service_unavailable": (
        "Cơ sở dữ liệu tạm thời không sẵn sàng; vui lòng thử lại",
        "The database is temporarily unavailable; please retry",
    ),
    "internal_error": ("Lỗi hệ thống", "Internal error"),
    # --- administration and audit (engineer B: member import, complaints, audit search) -----
    "import.required": ("Thiếu giá trị bắt buộc", "A required value is missing"),
    "import.invalid_date": (
        "Ngày không hợp lệ: {value} (dùng dd/mm/yyyy)",
        "Invalid date: {value} (use dd/mm/yyyy)",
    ),
    "import.invalid_sex": ("Giới tính phải là Nam hoặc Nữ", "Sex must be Nam or Nữ (male/female)"),
    "import.duplicate_in_file": (
        "Số CCCD trùng với dòng {row} trong tệp",
        "The CCCD repeats row {row} of the file",
    ),
    # --- check outcomes (reasons recorded in the audit log) ------------------------------
    "ok": ("Đạt", "Passed"),
    "cccd_format": ("Số CCCD phải gồm 12 chữ số", "The CCCD must be 12 digits"),
    "cccd_province": ("Mã tỉnh trong CCCD không tồn tại", "Unknown province code in the CCCD"),
    "cccd_century_sex": (
        "Mã thế kỷ/giới tính trong CCCD không khớp ngày sinh hoặc giới tính",
        "The CCCD century/sex digit does not match the birth date or sex",
    ),
    "cccd_birth_year": (
        "Năm sinh trong CCCD không khớp ngày sinh",
        "The CCCD birth year does not match the birth date",
    ),
    "not_member_on_event_date": (
        "Không phải đoàn viên vào ngày {date}",
        "Not a union member on {date}",
    ),
    "tenure_too_short": (
        "Thời gian là đoàn viên {months} tháng, chưa đủ {required} tháng",
        "Membership of {months} months is shorter than the required {required}",
    ),
    "joined_after_cutoff": (
        "Gia nhập sau ngày chốt đóng đoàn phí {cutoff}",
        "Joined after the dues cutoff date {cutoff}",
    ),
    "outside_filing_window": (
        "Nộp ngoài thời hạn {days} ngày kể từ ngày sự việc",
        "Filed outside the {days}-day window after the event",
    ),
    "event_in_future": ("Ngày sự việc ở tương lai", "The event date is in the future"),
    "campaign_required": (
        "Chính sách này cần chọn đợt hỗ trợ đang mở",
        "This policy needs an open campaign",
    ),
    "campaign_closed": (
        "Đợt hỗ trợ {campaign} không mở nhận hồ sơ",
        "Campaign {campaign} is not open",
    ),
    "event_outside_campaign": (
        "Ngày sự việc nằm ngoài thời gian của đợt hỗ trợ",
        "The event date is outside the campaign period",
    ),
    "outside_affected_area": (
        "Nơi ở/làm việc không thuộc xã bị ảnh hưởng",
        "Residence or workplace is not in an affected commune",
    ),
    "duplicate_claim": (
        "Đã có hồ sơ khác cho cùng {key_kind}",
        "Another case exists for the same {key_kind}",
    ),
    "frequency_cap": (
        "Vượt số lần hỗ trợ: {count}/{max_count} trong {period}",
        "Too many supports: {count}/{max_count} within {period}",
    ),
    "amount_cap": (
        "Vượt mức trần {cap}: đã nhận {used}, đề nghị thêm {amount}",
        "Over the cap of {cap}: {used} already, {amount} more requested",
    ),
    "amount_rule": (
        "Số tiền không đúng quy định: {reason}",
        "Amount does not fit the rule: {reason}",
    ),
    "no_higher_level": (
        "Đã nhận mức hỗ trợ bằng hoặc cao hơn trong đợt này",
        "An equal or higher support was already granted in this campaign",
    ),
    "documents_missing": ("Thiếu giấy tờ: {kinds}", "Missing documents: {kinds}"),
    "document_reused": (
        "Tệp giấy tờ đã được dùng trong hồ sơ khác",
        "A document file was already used in another case",
    ),
    "possible_duplicate_person": (
        "Có người khác trùng họ tên và ngày sinh",
        "Another person has the same name and birth date",
    ),
    "acts_twice": (
        "Một người không được thực hiện hai vai trò trên cùng hồ sơ",
        "Nobody may act in two functions on one case",
    ),
    "actor_is_beneficiary": (
        "Người thực hiện là người thụ hưởng hoặc cùng hộ gia đình",
        "The actor is the beneficiary or in the beneficiary's household",
    ),
    "own_unit": (
        "Không được xử lý hồ sơ của chính đơn vị mình",
        "May not act on a case of one's own unit",
    ),
    "same_approver_twice": (
        "Lần phê duyệt thứ hai phải do người khác thực hiện",
        "The second approval must come from another person",
    ),
    "quota_exhausted": (
        "Đơn vị đã dùng hết chỉ tiêu {quota} suất",
        "The unit's quota of {quota} is used up",
    ),
    "flagged_second_approval": (
        "Hồ sơ bị gắn cờ, cần thêm một người phê duyệt",
        "The case is flagged and needs a second approver",
    ),
    # --- e-mail notifications (flows): case statuses as people read them ----------------------
    "status_screening": ("Đang sàng lọc tự động", "Being screened"),
    "status_in_review": ("Đang xét duyệt", "Under review"),
    "status_awaiting_info": ("Chờ bổ sung thông tin", "Waiting for more information"),
    "status_approved": ("Đã được duyệt", "Approved"),
    "status_paid": ("Đã chi trả", "Paid"),
    "status_rejected": ("Không được duyệt", "Rejected"),
    "status_withdrawn": ("Đã rút hồ sơ", "Withdrawn"),
}


def translate(key: str, lang: Lang = "vi", **params: object) -> str:
    """The text for `key` in `lang`, with `{param}` placeholders filled in."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    template = pair[0] if lang == "vi" else pair[1]
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template
