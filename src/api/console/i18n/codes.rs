//! The gateway's stored codes in plain words, both languages. Looked up by the code (as the CDR
//! and the API carry it) rather than by matching the enums, so that a code added elsewhere
//! (`src/model/outcome.rs`) does not stop the build: the page shows the code itself until it is
//! written here, and `every_code_has_words` (over each enum's `ALL`) fails and names it.

use super::Lang;

/// (code, English, Chinese).
type Words = &'static [(&'static str, &'static str, &'static str)];

pub const DISPOSITIONS: Words = &[
    ("answered", "answered", "已接通"),
    ("busy", "busy", "忙线"),
    ("no_answer", "no answer", "无人接听"),
    ("cancelled", "cancelled by the caller", "主叫取消"),
    ("rejected", "rejected by the called side", "被叫方拒绝"),
    (
        "failed",
        "failed (network or far end)",
        "失败（网络或对端）",
    ),
    ("refused", "refused by the gateway", "被网关拒绝"),
];

pub const END_REASONS: Words = &[
    ("normal_clearing", "a party hung up", "一方挂断"),
    (
        "cancelled",
        "the caller gave up before the answer",
        "主叫在接通前放弃",
    ),
    (
        "early_bye_outside",
        "the carrier side ended it before the answer",
        "运营商侧在接通前结束",
    ),
    (
        "early_bye_inside",
        "the PBX side ended it before the answer",
        "PBX 侧在接通前结束",
    ),
    (
        "ack_timeout",
        "the answer was never acknowledged (no ACK)",
        "接通后未收到确认（无 ACK）",
    ),
    ("ring_timeout", "it rang too long", "振铃超时"),
    (
        "max_duration",
        "it lasted longer than allowed",
        "超过允许的最长通话时间",
    ),
    ("busy", "the called side was busy", "被叫忙"),
    ("no_answer", "nobody answered", "无人接听"),
    ("invalid_number", "the number does not exist", "号码不存在"),
    ("far_end_failure", "the far end failed", "对端故障"),
    ("rejected", "the called side rejected it", "被叫方拒绝"),
    (
        "carrier_timeout",
        "the carrier never answered",
        "运营商无响应",
    ),
    ("pbx_timeout", "the PBX never answered", "PBX 无响应"),
    (
        "carrier_tls_failed",
        "no TLS connection to the carrier (certificate or handshake)",
        "无法与运营商建立 TLS 连接（证书或握手失败）",
    ),
    ("refused", "refused by the gateway", "被网关拒绝"),
    ("in_progress", "still in progress", "仍在进行中"),
    (
        "gateway_restart",
        "the gateway restarted during the call",
        "通话期间网关重启",
    ),
    (
        "node_lost",
        "the gateway node carrying the call died; another node closed it",
        "承载通话的网关节点失效，由另一节点结束",
    ),
    ("shutdown", "the gateway was shutting down", "网关正在关闭"),
    (
        "media_timeout",
        "no audio came for too long",
        "长时间没有音频",
    ),
    ("operator_hangup", "an operator hung it up", "由操作员挂断"),
    (
        "trunk_suspended",
        "its trunk was suspended",
        "所属中继被暂停",
    ),
    (
        "caller_id_suspended",
        "its caller ID was suspended",
        "其主叫号码被暂停",
    ),
    ("recording_failed", "its recording failed", "录音失败"),
    (
        "carrier_auth_failed",
        "the carrier refused the gateway's credentials",
        "运营商拒绝了网关的认证凭据",
    ),
    (
        "carrier_bad_sdp",
        "the carrier's SDP could not be used (call ended, 502 to the PBX)",
        "运营商的 SDP 无法使用（呼叫已结束，向 PBX 返回 502）",
    ),
    (
        "pbx_bad_sdp",
        "the PBX's SDP could not be used (call ended)",
        "PBX 的 SDP 无法使用（呼叫已结束）",
    ),
    (
        "srtp_failed",
        "a re-offer's answer carried encrypted-media keys that could not be used",
        "重新协商的应答所带加密媒体密钥无法使用",
    ),
];

pub const REFUSAL_REASONS: Words = &[
    ("unknown_trunk", "no such trunk", "没有该中继"),
    (
        "caller_id_not_authorized",
        "the caller ID is not one the carrier authorized",
        "主叫号码未经运营商授权",
    ),
    (
        "anonymous_not_allowed",
        "anonymous callers are not allowed",
        "不允许匿名主叫",
    ),
    ("number_blocked", "the number is blocked", "号码已被屏蔽"),
    (
        "outside_calling_hours",
        "outside the calling hours",
        "不在允许的呼叫时段",
    ),
    (
        "rate_limited",
        "too many calls per second",
        "每秒呼叫数超限",
    ),
    (
        "trunk_concurrency",
        "the trunk carries as many calls as allowed",
        "中继并发数已满",
    ),
    (
        "caller_id_concurrency",
        "the caller ID carries as many calls as allowed",
        "该主叫号码并发数已满",
    ),
    (
        "unknown_number",
        "the called number is not this trunk's",
        "被叫号码不属于该中继",
    ),
    (
        "invalid_number",
        "the called number is not valid",
        "被叫号码无效",
    ),
    ("trunk_suspended", "the trunk is suspended", "中继已被暂停"),
    (
        "caller_id_suspended",
        "the caller ID is suspended",
        "主叫号码已被暂停",
    ),
    ("trunk_throttled", "the trunk is throttled", "中继已被限流"),
    (
        "caller_id_throttled",
        "the caller ID is throttled",
        "主叫号码已被限流",
    ),
    (
        "callee_frequency_limit",
        "this number was called too often",
        "该号码被呼叫过于频繁",
    ),
    (
        "shared_state_unavailable",
        "the cluster's shared state was unreachable",
        "集群共享状态不可用",
    ),
    (
        "unknown_source",
        "it came from no configured peer",
        "来源不是已配置的对端",
    ),
    ("invalid_request", "the request was invalid", "请求无效"),
    (
        "malformed_request",
        "the request could not be parsed",
        "请求格式错误",
    ),
    (
        "shutting_down",
        "the gateway was shutting down",
        "网关正在关闭",
    ),
    (
        "no_carrier",
        "the trunk has no carrier address",
        "中继没有运营商地址",
    ),
    (
        "media_unavailable",
        "no media port was free",
        "没有空闲的媒体端口",
    ),
    (
        "duplicate_call_id",
        "the Call-ID was already in use",
        "Call-ID 已在使用",
    ),
    (
        "recording_not_writable",
        "recordings could not be written",
        "无法写入录音",
    ),
    (
        "recording_disk_full",
        "the recordings disk was full",
        "录音磁盘已满",
    ),
    (
        "recording_exists",
        "the recording file existed already",
        "录音文件已存在",
    ),
    (
        "recording_bad_call_id",
        "the call id makes no file name",
        "通话 ID 无法用作文件名",
    ),
    (
        "recording_io_error",
        "the recording could not be written (I/O error)",
        "录音写入失败（I/O 错误）",
    ),
    (
        "recording_unrepairable",
        "an unfinished recording could not be repaired",
        "未完成的录音无法修复",
    ),
    (
        "recording_unavailable",
        "the recorder was unavailable",
        "录音器不可用",
    ),
    (
        "descriptor_limit",
        "the gateway carries as many calls as it can",
        "网关已达到可承载的通话上限",
    ),
    (
        "overload",
        "the gateway was overloaded (its SIP queue was late)",
        "网关过载（SIP 队列积压）",
    ),
    (
        "sdp_malformed",
        "the SDP offer could not be parsed",
        "SDP 提议无法解析",
    ),
    (
        "sdp_too_large",
        "the SDP offer was over the size or media-line limit",
        "SDP 提议超出大小或媒体行数上限",
    ),
    (
        "trunk_not_registered",
        "the trunk was not registered with its carrier",
        "中继尚未在运营商处注册",
    ),
    (
        "srtp_unsupported",
        "the encrypted media (SRTP) keys offered or answered could not be used",
        "提议或应答的加密媒体（SRTP）密钥无法使用",
    ),
    (
        "dtls_srtp_unsupported",
        "the offer asked for DTLS-SRTP; only SDES keys are supported",
        "提议要求 DTLS-SRTP；仅支持 SDES 密钥",
    ),
    (
        "srtp_not_allowed",
        "encrypted media (SRTP) offered on a leg configured for plain RTP",
        "在配置为明文 RTP 的一侧提议了加密媒体（SRTP）",
    ),
    (
        "srtp_required",
        "plain RTP on a leg that requires encrypted media (SRTP)",
        "在要求加密媒体（SRTP）的一侧使用了明文 RTP",
    ),
];

pub const DIRECTIONS: Words = &[
    ("outbound", "outbound", "呼出"),
    ("inbound", "inbound", "呼入"),
];

pub const HANGUP_SIDES: Words = &[
    ("inside", "the agent's side (PBX)", "坐席侧（PBX）"),
    (
        "outside",
        "the customer's side (carrier)",
        "客户侧（运营商）",
    ),
    ("gateway", "the gateway", "网关"),
];

pub const RECORDING_STATES: Words = &[
    ("complete", "complete", "完整"),
    ("one_way", "one side only", "仅单方声音"),
    ("no_media", "no audio", "无音频"),
    ("incomplete", "incomplete", "不完整"),
    ("failed", "failed", "失败"),
];

pub const LEGS: Words = &[
    ("inside", "agent (PBX)", "坐席（PBX）"),
    ("outside", "customer (carrier)", "客户（运营商）"),
];

pub const STEPS: Words = &[
    ("alert", "alert", "告警"),
    ("throttle", "throttle", "限流"),
    ("suspend_number", "suspend the number", "暂停号码"),
    ("suspend_trunk", "suspend the trunk", "暂停中继"),
];

/// The anomaly rules (`config::RuleId::code`).
pub const RULES: Words = &[
    (
        "over_frequent_number",
        "too many calls from one caller ID",
        "单个主叫号码呼叫过频",
    ),
    (
        "over_frequent_callee",
        "too many calls to one number",
        "对同一号码呼叫过频",
    ),
    ("over_long_call", "over-long calls", "通话时长过长"),
    ("low_answer_rate", "low answer rate", "接通率过低"),
    ("error_rate", "high error rate", "错误率过高"),
    ("network_errors", "network errors", "网络错误"),
    ("short_calls", "many short calls", "短通话过多"),
    (
        "outside_hours",
        "calls outside the calling hours",
        "允许时段外呼叫",
    ),
    (
        "unauthorized_caller_id",
        "unauthorized caller IDs",
        "未授权主叫号码",
    ),
    ("complaint_batch", "a batch of complaints", "集中投诉"),
    ("repeated_complaint", "repeated complaints", "重复投诉"),
    ("fraud_complaint", "a fraud complaint", "诈骗投诉"),
    ("silent_calls", "silent calls", "静默通话"),
];

/// What a KPI row or an anomaly is about.
pub const SUBJECTS: Words = &[
    ("trunk", "trunk", "中继"),
    ("caller_id", "caller ID", "主叫号码"),
    ("callee", "called number", "被叫号码"),
];

pub const ENFORCEMENT_ACTIONS: Words = &[("impose", "imposed", "实施"), ("lift", "lifted", "解除")];

/// The words for `code` in `table`, else the code itself.
pub fn words(table: Words, code: &str, lang: Lang) -> String {
    table
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, en, zh)| match lang {
            Lang::En => *en,
            Lang::Zh => *zh,
        })
        .unwrap_or(code)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::super::has_cjk;
    use super::*;
    use crate::model::{Direction, Disposition, EndReason, HangupSide, RecordingStatus};
    use crate::model::{RefusalReason, Step};

    fn assert_complete(what: &str, table: Words, codes: &[&str]) {
        for code in codes {
            assert!(
                table.iter().any(|(c, _, _)| c == code),
                "{what} `{code}` has no words in the console (src/api/console/i18n/codes.rs)"
            );
        }
        for (code, en, zh) in table {
            assert!(
                codes.contains(code),
                "{what} `{code}` is no code of the gateway"
            );
            assert!(!en.is_empty() && !has_cjk(en), "{what} `{code}`: English");
            assert!(has_cjk(zh), "{what} `{code}`: Chinese not translated: {zh}");
        }
    }

    #[test]
    fn every_code_has_words() {
        let codes = |all: Vec<&'static str>| all;
        assert_complete(
            "disposition",
            DISPOSITIONS,
            &codes(Disposition::ALL.iter().map(|d| d.as_str()).collect()),
        );
        assert_complete(
            "end reason",
            END_REASONS,
            &codes(EndReason::ALL.iter().map(|d| d.as_str()).collect()),
        );
        assert_complete(
            "refusal reason",
            REFUSAL_REASONS,
            &codes(RefusalReason::ALL.iter().map(|d| d.as_str()).collect()),
        );
        assert_complete(
            "direction",
            DIRECTIONS,
            &[Direction::Outbound.as_str(), Direction::Inbound.as_str()],
        );
        assert_complete(
            "hangup side",
            HANGUP_SIDES,
            &codes(HangupSide::ALL.iter().map(|d| d.as_str()).collect()),
        );
        assert_complete(
            "recording status",
            RECORDING_STATES,
            &RecordingStatus::ALL.map(RecordingStatus::as_str),
        );
        assert_complete("leg", LEGS, &["inside", "outside"]);
        assert_complete(
            "step",
            STEPS,
            &codes(Step::ALL.iter().map(|s| s.as_str()).collect()),
        );
        assert_complete(
            "rule",
            RULES,
            &codes(
                crate::config::RuleId::ALL
                    .iter()
                    .map(|r| r.code())
                    .collect(),
            ),
        );
        assert_complete(
            "subject",
            SUBJECTS,
            &codes(
                crate::model::SubjectKind::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect(),
            ),
        );
        assert_eq!(words(DISPOSITIONS, "busy", Lang::Zh), "忙线");
        assert_eq!(words(DISPOSITIONS, "new_code", Lang::Zh), "new_code");
    }
}
