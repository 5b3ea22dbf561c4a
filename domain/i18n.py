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
    "task_not_claimed": (
        "Nhiệm vụ chưa có ai nhận xử lý nên không có gì để trả lại",
        "The task is not claimed, so there is nothing to release",
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
    "membership_open": (
        "Người này vẫn đang là đoàn viên của một công đoàn cơ sở: công đoàn đó cần ghi ngày "
        "kết thúc sinh hoạt trước",
        "This person is still a member of a grassroots union: that union must record the "
        "end of the membership first",
    ),
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
    "idempotency_outcome_lost": (
        "Yêu cầu với Idempotency-Key này đã được thực hiện nhưng câu trả lời bị mất do sự cố: "
        "hãy xem lại kết quả thay vì gửi lại",
        "The request with this Idempotency-Key was carried out, but its answer was lost in a "
        "failure: look the result up instead of sending it again",
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
    "not_member_of_filing_unit": (
        "Không phải đoàn viên của công đoàn cơ sở lập hồ sơ vào ngày {date}",
        "Not a member of the filing grassroots union on {date}",
    ),
    # --- what an audit chain verification found wrong ------------------------------------
    "audit_gap": (
        "đứt đoạn số thứ tự: cần mục #{expected}, gặp mục #{found}",
        "sequence gap: expected {expected}, found {found}",
    ),
    "audit_link_broken": (
        "mã băm liên kết không khớp với mục liền trước",
        "previous-hash link does not match the entry before it",
    ),
    "audit_entry_altered": (
        "nội dung không khớp với mã băm (mục đã bị sửa)",
        "content does not match its hash (the entry was altered)",
    ),
    "audit_entries_removed": (
        "chuỗi kết thúc trước đầu chuỗi đã ghi: có mục đã bị xóa",
        "the chain ends before the recorded head: entries were removed",
    ),
    "audit_entries_added": (
        "chuỗi kéo dài quá đầu chuỗi đã ghi: có mục được thêm ngoài hệ thống",
        "the chain goes on past the recorded head: entries were added around the engine",
    ),
    "audit_newest_rewritten": (
        "mục mới nhất khác với đầu chuỗi đã ghi: mục này đã bị viết lại",
        "the newest entry differs from the recorded head: it was rewritten",
    ),
    "audit_shorter_than_checkpoint": (
        "chuỗi ngắn hơn điểm kiểm tra: có mục đã bị xóa",
        "the chain is shorter than the checkpoint: entries were removed",
    ),
    "audit_checkpoint_differs": (
        "mục tại điểm kiểm tra khác với bản lưu ngoài hệ thống: chuỗi đã bị viết lại",
        "the entry differs from the checkpoint: the chain was rewritten",
    ),
    "audit_checkpoint_signature_invalid": (
        "chữ ký của điểm kiểm tra không hợp lệ",
        "the checkpoint signature is not valid",
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
    # --- HTTP API review (engineer G): request validation details, by pydantic error type --
    "validation.missing": ("Thiếu trường bắt buộc", "Field required"),
    "validation.extra_forbidden": ("Trường không được phép", "Extra field not permitted"),
    "validation.greater_than_equal": (
        "Phải lớn hơn hoặc bằng {ge}",
        "Must be greater than or equal to {ge}",
    ),
    "validation.greater_than": ("Phải lớn hơn {gt}", "Must be greater than {gt}"),
    "validation.less_than_equal": (
        "Phải nhỏ hơn hoặc bằng {le}",
        "Must be less than or equal to {le}",
    ),
    "validation.less_than": ("Phải nhỏ hơn {lt}", "Must be less than {lt}"),
    "validation.int_parsing": ("Phải là số nguyên", "Must be a whole number"),
    "validation.int_type": ("Phải là số nguyên", "Must be a whole number"),
    "validation.int_from_float": ("Phải là số nguyên", "Must be a whole number"),
    "validation.float_parsing": ("Phải là số", "Must be a number"),
    "validation.float_type": ("Phải là số", "Must be a number"),
    "validation.bool_parsing": ("Phải là true hoặc false", "Must be true or false"),
    "validation.bool_type": ("Phải là true hoặc false", "Must be true or false"),
    "validation.string_type": ("Phải là chuỗi ký tự", "Must be a string"),
    "validation.string_too_short": (
        "Cần ít nhất {min_length} ký tự",
        "At least {min_length} characters",
    ),
    "validation.string_too_long": ("Tối đa {max_length} ký tự", "At most {max_length} characters"),
    "validation.string_pattern_mismatch": ("Không đúng định dạng", "Wrong format"),
    "validation.too_short": ("Cần ít nhất {min_length} phần tử", "At least {min_length} items"),
    "validation.too_long": ("Tối đa {max_length} phần tử", "At most {max_length} items"),
    "validation.literal_error": (
        "Phải là một trong các giá trị: {expected}",
        "Must be one of: {expected}",
    ),
    "validation.enum": ("Phải là một trong các giá trị: {expected}", "Must be one of: {expected}"),
    "validation.date_parsing": ("Ngày không hợp lệ (dạng YYYY-MM-DD)", "Invalid date (YYYY-MM-DD)"),
    "validation.date_from_datetime_parsing": (
        "Ngày không hợp lệ (dạng YYYY-MM-DD)",
        "Invalid date (YYYY-MM-DD)",
    ),
    "validation.date_type": ("Ngày không hợp lệ (dạng YYYY-MM-DD)", "Invalid date (YYYY-MM-DD)"),
    "validation.datetime_parsing": (
        "Thời điểm không hợp lệ (dạng ISO 8601)",
        "Invalid time (ISO 8601)",
    ),
    "validation.datetime_from_date_parsing": (
        "Thời điểm không hợp lệ (dạng ISO 8601)",
        "Invalid time (ISO 8601)",
    ),
    "validation.datetime_type": (
        "Thời điểm không hợp lệ (dạng ISO 8601)",
        "Invalid time (ISO 8601)",
    ),
    "validation.timezone_aware": (
        "Thời điểm phải ghi rõ múi giờ",
        "The time must carry a time zone",
    ),
    "validation.json_invalid": ("JSON không hợp lệ", "Invalid JSON"),
    "validation.model_type": ("Phải là một đối tượng JSON", "Must be a JSON object"),
    "validation.model_attributes_type": ("Phải là một đối tượng JSON", "Must be a JSON object"),
    "validation.dict_type": ("Phải là một đối tượng JSON", "Must be a JSON object"),
    "validation.list_type": ("Phải là một danh sách", "Must be a list"),
    "validation.uuid_parsing": ("Mã định danh không hợp lệ", "Invalid identifier"),
    # Values the domain puts into {action}/{status}/{reason} of the messages above, so a
    # Vietnamese sentence does not carry English words (translate() looks them up).
    "term.screen": ("sàng lọc", "screen"),
    "term.provide information": ("bổ sung thông tin", "provide information"),
    "term.attach documents": ("bổ sung giấy tờ", "attach documents"),
    "term.withdraw": ("rút hồ sơ", "withdraw"),
    "term.pay": ("chi trả", "pay"),
    "term.end membership": ("kết thúc tư cách đoàn viên", "end membership"),
    "term.revoke": ("thu hồi quyền", "revoke"),
    "term.deactivate": ("khóa tài khoản", "deactivate"),
    "term.resolve": ("giải quyết", "resolve"),
    "term.screening": ("đang sàng lọc tự động", "screening"),
    "term.in_review": ("đang xét duyệt", "in_review"),
    "term.awaiting_info": ("chờ bổ sung thông tin", "awaiting_info"),
    "term.approved": ("đã được duyệt", "approved"),
    "term.paid": ("đã chi trả", "paid"),
    "term.rejected": ("không được duyệt", "rejected"),
    "term.withdrawn": ("đã rút hồ sơ", "withdrawn"),
    "term.ended": ("đã kết thúc", "ended"),
    "term.inactive": ("đã khóa", "inactive"),
    "term.resolved": ("đã giải quyết", "resolved"),
    "term.required": ("bắt buộc", "required"),
    "term.required for this subtype": ("bắt buộc với loại hỗ trợ này", "required for this subtype"),
    "term.required for this amount": ("bắt buộc với mức hỗ trợ này", "required for this amount"),
    "term.nothing provided": ("chưa có nội dung nào", "nothing provided"),
    "term.yourself": ("không được giao cho chính mình", "yourself"),
    "term.at least one": ("cần ít nhất một", "at least one"),
    "term.>= 0": ("không được âm", ">= 0"),
    "term.must be 64 hex digits": ("phải gồm 64 chữ số hệ 16", "must be 64 hex digits"),
    "term.must be a positive whole number of đồng": (
        "phải là số đồng nguyên dương",
        "must be a positive whole number of đồng",
    ),
    "term.only with approve": ("chỉ dùng khi phê duyệt", "only with approve"),
    "term.this step cannot lower the amount": (
        "bước này không được giảm mức hỗ trợ",
        "this step cannot lower the amount",
    ),
    "term.this step cannot return a case for information": (
        "bước này không được trả hồ sơ để bổ sung",
        "this step cannot return a case for information",
    ),
    "term.this policy has no campaigns": (
        "chính sách này không có đợt phát động",
        "this policy has no campaigns",
    ),
    "term.bank_transfer or cash": (
        "bank_transfer (chuyển khoản) hoặc cash (tiền mặt)",
        "bank_transfer or cash",
    ),
    "term.1–100 characters": ("từ 1 đến 100 ký tự", "1–100 characters"),
    "term.within the next 30 days": ("trong vòng 30 ngày tới", "within the next 30 days"),
    "term.the delegate holds no union role at this unit or above": (
        "người được ủy quyền không giữ chức danh công đoàn nào tại đơn vị này hoặc cấp trên",
        "the delegate holds no union role at this unit or above",
    ),
    "term.cases are filed by a grassroots union": (
        "hồ sơ do công đoàn cơ sở lập",
        "cases are filed by a grassroots union",
    ),
    "term.ends before it starts": ("ngày kết thúc trước ngày bắt đầu", "ends before it starts"),
    "term.unknown cursor": ("con trỏ phân trang không hợp lệ", "unknown cursor"),
}

# Message parameters whose values are words the domain writes in English (see "term." keys).
TERM_PARAMS = frozenset({"action", "status", "reason"})


def translate(key: str, lang: Lang = "vi", **params: object) -> str:
    """The text for `key` in `lang`, with `{param}` placeholders filled in."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    template = pair[0] if lang == "vi" else pair[1]
    if lang == "vi":
        params = {k: _term(v) if k in TERM_PARAMS else v for k, v in params.items()}
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template


def _term(value: object) -> object:
    """The Vietnamese for a word the domain put into a message in English, if there is one."""
    pair = MESSAGES.get(f"term.{value}") if isinstance(value, str) else None
    return pair[0] if pair else value
