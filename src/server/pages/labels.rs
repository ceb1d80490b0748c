//! The pages' words, in Korean and English. Korean is the default (the
//! teams certifying under ISMS-P); the browser's `Accept-Language` or the
//! switch in the header picks English.

use crate::workflow::state::{Phase, State};

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ko,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "ko" => Some(Lang::Ko),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first of Korean or English an `Accept-Language` header names.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        header.split(',').find_map(|item| {
            let tag = item.split(';').next()?.trim().to_ascii_lowercase();
            Lang::parse(tag.split('-').next()?)
        })
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Ko => Lang::En,
            Lang::En => Lang::Ko,
        }
    }

    /// A request state's name on the pages.
    pub fn state_name(self, state: State) -> &'static str {
        match (self, state) {
            (Lang::En, state) => state.as_str(),
            (Lang::Ko, State::Requested) => "접수",
            (Lang::Ko, State::TargetsFound) => "대상 확인됨",
            (Lang::Ko, State::S3Cleared) => "파일 삭제됨",
            (Lang::Ko, State::DbMasked) => "DB 마스킹됨",
            (Lang::Ko, State::Done) => "파기 완료",
            (Lang::Ko, State::Failed) => "실패",
            (Lang::Ko, State::Cancelled) => "취소됨",
            (Lang::Ko, State::Coalesced) => "병합됨",
        }
    }

    /// A phase's name on the pages.
    pub fn phase_name(self, phase: Phase) -> &'static str {
        match (self, phase) {
            (Lang::En, phase) => phase.as_str(),
            (Lang::Ko, Phase::FindingTargets) => "대상 찾기",
            (Lang::Ko, Phase::DeletingObjects) => "파일 삭제",
            (Lang::Ko, Phase::MaskingRows) => "행 마스킹",
            (Lang::Ko, Phase::Verifying) => "검증",
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::Ko => &KO,
            Lang::En => &EN,
        }
    }
}

/// Every label the pages show.
pub struct Text {
    pub language_name: &'static str,
    pub title: &'static str,
    pub queue: &'static str,
    pub register: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub token: &'static str,
    pub sign_in_help: &'static str,
    pub bad_token: &'static str,
    pub signed_in_as: &'static str,
    pub window: &'static str,
    pub window_always_open: &'static str,
    pub by_state: &'static str,
    pub needs_attention: &'static str,
    pub in_progress: &'static str,
    pub recently_finished: &'static str,
    pub nothing: &'static str,
    pub request: &'static str,
    pub state: &'static str,
    pub phase: &'static str,
    pub progress: &'static str,
    pub batch_of: &'static str,
    pub objects_deleted: &'static str,
    pub rows_masked: &'static str,
    pub attempts: &'static str,
    pub requested_at: &'static str,
    pub due_by: &'static str,
    pub overdue: &'static str,
    pub finished_late: &'static str,
    pub last_error: &'static str,
    pub lease: &'static str,
    pub no_lease: &'static str,
    pub next_attempt: &'static str,
    pub external_ref: &'static str,
    pub idempotency_key: &'static str,
    pub submitted_by: &'static str,
    pub coalesced_into: &'static str,
    pub timeline: &'static str,
    pub started: &'static str,
    pub finished: &'static str,
    pub duration: &'static str,
    pub anomalies: &'static str,
    pub events: &'static str,
    pub record: &'static str,
    pub record_hidden: &'static str,
    pub outcome: &'static str,
    pub verification: &'static str,
    pub tables: &'static str,
    pub buckets: &'static str,
    pub method: &'static str,
    pub count: &'static str,
    pub download_csv: &'static str,
    pub download_json: &'static str,
    pub retry: &'static str,
    pub cancel: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub show: &'static str,
    pub register_title: &'static str,
    pub register_help: &'static str,
    pub requests_done: &'static str,
    pub live: &'static str,
    pub not_allowed: &'static str,
    pub not_found: &'static str,
    pub refused: &'static str,
    pub done_ok: &'static str,
}

pub static KO: Text = Text {
    language_name: "한국어",
    title: "lethe 개인정보 파기",
    queue: "처리 현황",
    register: "파기 관리대장",
    sign_in: "로그인",
    sign_out: "로그아웃",
    token: "API 토큰",
    sign_in_help: "운영자·감사자용 토큰으로 로그인하세요. 토큰은 서버 설정([[server.token]])에서 발급됩니다.",
    bad_token: "토큰이 올바르지 않습니다.",
    signed_in_as: "로그인:",
    window: "작업 시간대",
    window_always_open: "제한 없음 (항상 작업)",
    by_state: "상태별 요청 수",
    needs_attention: "확인 필요 (기한 초과·실패·재시도 중)",
    in_progress: "진행 중",
    recently_finished: "최근 종료",
    nothing: "없음",
    request: "요청",
    state: "상태",
    phase: "단계",
    progress: "진행",
    batch_of: "배치",
    objects_deleted: "삭제한 파일",
    rows_masked: "마스킹한 행",
    attempts: "시도",
    requested_at: "요청 시각",
    due_by: "처리 기한",
    overdue: "기한 초과",
    finished_late: "기한 후 완료",
    last_error: "마지막 오류",
    lease: "작업자 점유",
    no_lease: "없음",
    next_attempt: "다음 시도",
    external_ref: "요청자 참조",
    idempotency_key: "멱등 키",
    submitted_by: "요청 주체",
    coalesced_into: "병합된 요청",
    timeline: "처리 경과",
    started: "시작",
    finished: "종료",
    duration: "소요",
    anomalies: "이상 사항",
    events: "이벤트 기록",
    record: "파기 기록",
    record_hidden: "파기 기록은 감사(audit) 권한으로만 볼 수 있습니다.",
    outcome: "결과",
    verification: "검증",
    tables: "테이블",
    buckets: "버킷",
    method: "방법",
    count: "건수",
    download_csv: "CSV 내려받기",
    download_json: "JSON 내려받기",
    retry: "재시도",
    cancel: "취소",
    from: "시작일",
    to: "종료일",
    show: "조회",
    register_title: "파기 관리대장",
    register_help: "기간 중 파기가 완료된 요청의 기록입니다 (UTC 기준, 양 끝 포함). 회원 키와 파일 키는 담기지 않습니다.",
    requests_done: "완료된 요청",
    live: "자동 새로고침 중",
    not_allowed: "이 권한으로는 볼 수 없습니다.",
    not_found: "요청을 찾을 수 없습니다.",
    refused: "거부됨",
    done_ok: "처리했습니다.",
};

pub static EN: Text = Text {
    language_name: "English",
    title: "lethe erasures",
    queue: "Queue",
    register: "Register",
    sign_in: "Sign in",
    sign_out: "Sign out",
    token: "API token",
    sign_in_help: "Sign in with an operator's or auditor's token ([[server.token]] in the server's configuration).",
    bad_token: "That token is not valid.",
    signed_in_as: "Signed in:",
    window: "Off-peak window",
    window_always_open: "none configured (always working)",
    by_state: "Requests by state",
    needs_attention: "Needs attention (overdue, failed, retrying)",
    in_progress: "In progress",
    recently_finished: "Recently finished",
    nothing: "none",
    request: "Request",
    state: "State",
    phase: "Phase",
    progress: "Progress",
    batch_of: "batch",
    objects_deleted: "Objects deleted",
    rows_masked: "Rows masked",
    attempts: "Attempts",
    requested_at: "Requested",
    due_by: "Due by",
    overdue: "overdue",
    finished_late: "finished late",
    last_error: "Last error",
    lease: "Lease",
    no_lease: "none",
    next_attempt: "Next attempt",
    external_ref: "Reference",
    idempotency_key: "Idempotency key",
    submitted_by: "Submitted by",
    coalesced_into: "Folded into",
    timeline: "Timeline",
    started: "Started",
    finished: "Finished",
    duration: "Took",
    anomalies: "Anomalies",
    events: "Event log",
    record: "Destruction record",
    record_hidden: "Destruction records are for the audit role.",
    outcome: "Outcome",
    verification: "Verification",
    tables: "Tables",
    buckets: "Buckets",
    method: "Method",
    count: "Count",
    download_csv: "Download CSV",
    download_json: "Download JSON",
    retry: "Retry",
    cancel: "Cancel",
    from: "From",
    to: "To",
    show: "Show",
    register_title: "Destruction register (파기 관리대장)",
    register_help: "Requests done in the period (UTC days, both inclusive). No member key and no object key is in it.",
    requests_done: "requests done",
    live: "refreshing",
    not_allowed: "Your role cannot see this.",
    not_found: "No such request.",
    refused: "Refused",
    done_ok: "Done.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_korean_or_english() {
        assert_eq!(
            Lang::from_accept_language("ko-KR,ko;q=0.9,en;q=0.8"),
            Some(Lang::Ko)
        );
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            Lang::from_accept_language("fr-FR, en;q=0.5"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("fr-FR"), None);
    }
}
