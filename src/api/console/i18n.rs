//! The console's two languages: English and 简体中文. Every label is a key of `T`, written once
//! with both texts (the `messages!` table cannot take a key without both); the codes the
//! gateway stores (dispositions, reasons, directions…) have their own tables in `codes.rs`.
//! Placeholders are `{name}`, filled by `T::fill`; a test checks that both texts of a key name
//! the same placeholders and that no Chinese text is an English one left untranslated.
//!
//! The language is the `tg_lang` cookie (set by the switch, `/console/lang/{code}`), else the
//! best of the browser's `Accept-Language`, else English.

pub mod codes;

use axum::http::HeaderMap;

use super::session::{cookie, LANG_COOKIE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    /// The code in URLs and the cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The HTML `lang` attribute.
    pub fn html(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The language's own name (for the switch).
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Zh => "简体中文",
        }
    }

    pub fn of_code(code: &str) -> Option<Lang> {
        match code {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The cookie's choice, else the browser's.
    pub fn of_request(headers: &HeaderMap) -> Lang {
        if let Some(lang) = cookie(headers, LANG_COOKIE).and_then(Lang::of_code) {
            return lang;
        }
        headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(Lang::of_accept_language)
            .unwrap_or(Lang::En)
    }

    /// The most preferred of our languages in an `Accept-Language` value (by q-value, then
    /// order); English when it names neither.
    pub fn of_accept_language(value: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in value.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let lang = match primary {
                "zh" => Lang::Zh,
                "en" => Lang::En,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::En)
    }
}

macro_rules! messages {
    ($($key:ident => $en:literal, $zh:literal;)+) => {
        /// A label of the console, in both languages.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum T { $($key),+ }

        impl T {
            pub const ALL: &'static [T] = &[$(T::$key),+];

            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((T::$key, Lang::En) => $en, (T::$key, Lang::Zh) => $zh,)+
                }
            }
        }
    };
}

messages! {
    AppName => "trunkguard console", "trunkguard 控制台";
    SkipToContent => "Skip to the content", "跳到正文";
    MainNav => "Main", "主导航";
    NavCalls => "Calls", "通话";
    NavLive => "Live calls", "实时通话";
    NavEnforcement => "Enforcement", "管控措施";
    NavTrunks => "Trunks", "中继";
    NavKpis => "KPIs", "指标";
    NavAnomalies => "Anomalies", "异常";
    SignedInAs => "Signed in as {name} ({role})", "已登录：{name}（{role}）";
    SignOut => "Sign out", "退出登录";
    Language => "Language", "语言";
    RoleAdmin => "administrator", "管理员";
    RoleCompliance => "compliance officer", "合规专员";
    RoleCarrier => "carrier", "运营商";
    RoleAgent => "agent", "坐席";

    SignInTitle => "Sign in", "登录";
    SignInIntro => "Sign in with the API token you were given. The console keeps a session for you; the token is not stored in the browser.", "请使用分配给您的 API 令牌登录。控制台会为您保持会话，浏览器不会保存令牌。";
    TokenLabel => "API token", "API 令牌";
    TokenHelp => "It starts with tg_.", "以 tg_ 开头。";
    SignInButton => "Sign in", "登录";
    SignInFailed => "This token is not valid: it is unknown or revoked.", "该令牌无效：未知或已被吊销。";
    FormExpired => "The form had expired. Please try again.", "表单已过期，请重试。";
    SignedOut => "You are signed out.", "您已退出登录。";
    PleaseSignIn => "Please sign in to continue.", "请先登录。";

    ForbiddenTitle => "Not allowed", "无权访问";
    ForbiddenText => "Your role may not open this page or do this.", "您的角色无权打开此页面或执行此操作。";
    NotFoundTitle => "Not found", "未找到";
    NotFoundText => "There is no such page or call.", "没有这个页面或通话。";
    CsrfTitle => "Form refused", "表单被拒绝";
    CsrfText => "This form did not carry this session's security token, so it was refused. Reload the page and try again.", "该表单未携带本会话的安全令牌，已被拒绝。请刷新页面后重试。";
    UnavailableTitle => "Unavailable", "暂不可用";
    UnavailableText => "The gateway could not answer now. Try again in a moment.", "网关暂时无法响应，请稍后重试。";
    BadRequestTitle => "Cannot do this", "无法执行";
    HomeTitle => "Welcome", "欢迎";
    HomeNothing => "There is no page for your role yet.", "暂时没有适用于您角色的页面。";

    CallsTitle => "Calls", "通话记录";
    SearchLegend => "Find calls", "查找通话";
    NumberLabel => "Number", "号码";
    NumberHelp => "Caller or callee: the whole number or some of its digits.", "主叫或被叫：完整号码或其中部分数字。";
    MatchLabel => "The digits are", "数字位置";
    MatchAnywhere => "anywhere in the number", "号码中任意位置";
    MatchSuffix => "at the end", "号码结尾";
    MatchPrefix => "at the start", "号码开头";
    MatchWhole => "the whole number", "完整号码";
    TrunkLabel => "Trunk", "中继";
    DirectionLabel => "Direction", "方向";
    FromLabel => "From", "开始时间";
    ToLabel => "Until", "结束时间";
    TimesIn => "Times in {zone}", "时间以 {zone} 计";
    DispositionLabel => "Outcome", "结果";
    ReasonLabel => "Refusal reason", "拒绝原因";
    RecordingFilter => "Recording", "录音";
    RecordingKept => "with a recording", "有录音";
    RecordingNone => "without a recording", "无录音";
    OrderLabel => "Order", "排序";
    NewestFirst => "newest first", "最新在前";
    OldestFirst => "oldest first", "最早在前";
    Any => "any", "不限";
    SearchButton => "Search", "搜索";
    ClearButton => "Clear", "清除";
    ExportCsv => "Export these calls as CSV", "将这些通话导出为 CSV";
    EvidenceOfThese => "Evidence package of these calls", "这些通话的证据包";
    EvidencePackage => "Download the evidence package (ZIP)", "下载证据包（ZIP）";
    EvidenceTooMany => "More than 50 calls match: an evidence package holds at most 50. Narrow the search.", "匹配的通话超过 50 个：一个证据包最多包含 50 个通话。请缩小查询范围。";
    EvidenceNoCall => "No call matches this search: there is nothing to package.", "没有符合此查询的通话：无可打包的内容。";
    ResultsCaption => "Calls found", "查询结果";
    ColTime => "Time", "时间";
    ColTimeIn => "Time ({zone})", "时间（{zone}）";
    MoreFilters => "More filters", "更多筛选条件";
    ColCaller => "Caller", "主叫";
    ColCallee => "Callee", "被叫";
    ColTalk => "Talk time", "通话时长";
    ColOutcome => "Outcome", "结果";
    ColReason => "Reason", "原因";
    NoCalls => "No call matches this search.", "没有符合条件的通话。";
    NextPage => "Next page", "下一页";
    FirstPage => "First page", "第一页";
    OpenCall => "Open call {id}", "查看通话 {id}";
    StatusLabel => "Final SIP status", "最终 SIP 状态码";
    TalkMin => "Talk time at least (s)", "通话时长至少（秒）";
    TalkMax => "Talk time at most (s)", "通话时长至多（秒）";
    AnomalyIdLabel => "Named by anomaly", "异常编号";
    AnomalyIdHelp => "An anomaly's number (from the anomalies page): the calls that show it.", "异常的编号（见异常页面）：显示该异常的通话。";
    BadAnomalyId => "An anomaly's number: digits only.", "异常编号：只能是数字。";
    HoldFilter => "Legal hold", "法律保全";
    HoldOn => "on hold", "已保全";
    HoldOff => "not on hold", "未保全";
    FixTheForm => "Some values could not be read; see the marked fields.", "部分输入无法识别，请查看标出的字段。";
    BadNumber => "Use digits (a +, spaces and dashes are ignored).", "请输入数字（+、空格和连字符会被忽略）。";
    BadChoice => "Not one of the choices.", "不是可选的值。";
    BadTime => "Not a date and time.", "不是有效的日期时间。";
    BadPeriod => "Must be after the start.", "必须晚于开始时间。";
    BadStatus => "A SIP status: 100 to 699.", "SIP 状态码：100 至 699。";
    BadSeconds => "Whole seconds.", "请输入整数秒。";

    CallTitle => "Call", "通话";
    BackToSearch => "Back to the calls", "返回通话记录";
    WhatHappened => "What happened", "通话经过";
    SaysCall => "{direction} call from {caller} to {callee} on trunk {trunk}, placed {time}.", "{time}，中继 {trunk} 上由 {caller} 打给 {callee} 的{direction}通话。";
    SaysAnswered => "Answered after {ring}; the parties talked for {talk}.", "{ring}后接通，双方通话 {talk}。";
    SaysNotAnswered => "Not answered: {outcome} (final answer {status}).", "未接通：{outcome}（最终应答 {status}）。";
    SaysRefused => "Refused by the gateway: {reason}. The caller was answered {status}.", "被网关拒绝：{reason}。向主叫应答 {status}。";
    SaysEnded => "It ended: {reason}. Hung up by {side}.", "结束原因：{reason}。挂断方：{side}。";
    SaysEndedNoSide => "It ended: {reason}.", "结束原因：{reason}。";
    Unknown => "unknown", "未知";
    Details => "Details", "详细信息";
    CallIdLabel => "Call id", "通话 ID";
    InsideCallId => "PBX leg Call-ID", "PBX 侧 Call-ID";
    OutsideCallId => "Carrier leg Call-ID", "运营商侧 Call-ID";
    SourceLabel => "INVITE sent from", "INVITE 来源地址";
    PresentedFrom => "Caller as presented", "呈现的主叫";
    PaiLabel => "P-Asserted-Identity", "P-Asserted-Identity";
    InviteAt => "INVITE received", "收到 INVITE";
    RingingAt => "Ringing", "振铃";
    AnswerAt => "Answered", "接通";
    EndAt => "Ended", "结束";
    FinalStatus => "Final SIP answer", "最终 SIP 应答";
    Q850Label => "Q.850 cause", "Q.850 原因值";
    LoadLabel => "Calls then on the trunk / on this caller ID", "当时中继 / 该主叫号码上的通话数";

    LegsTitle => "Both legs' quality", "双向通话质量";
    LegLabel => "Leg", "通话侧";
    PacketsIn => "Packets received", "收到的包";
    PacketsOut => "Packets sent to it", "发给它的包";
    LostLabel => "Lost", "丢包";
    JitterLabel => "Jitter (ms)", "抖动（毫秒）";
    MaxJitterLabel => "Max jitter (ms)", "最大抖动（毫秒）";
    GapLabel => "Longest gap (ms)", "最长中断（毫秒）";
    MosLabel => "MOS", "MOS 评分";
    OneWayLabel => "One-way audio", "单通";
    Yes => "yes", "是";
    No => "no", "否";
    NoMedia => "No media was relayed for this call.", "该通话没有转发媒体。";

    DtmfTitle => "DTMF digits", "DTMF 按键";
    DigitLabel => "Digit", "按键";
    DurationMsLabel => "Length (ms)", "时长（毫秒）";
    NoDtmf => "No digit was pressed.", "没有按键。";

    SipLadderTitle => "SIP ladder of both legs", "双向 SIP 信令时序图";
    SipLadderNone => "No SIP trace is stored for this call (tracing off, deleted by the retention rules, or the call ended a moment ago).", "该通话没有保存 SIP 信令记录（未开启记录、已按保留规则删除，或通话刚刚结束）。";
    SipLadderDropped => "{count} more messages ({bytes} bytes) were not kept: over the per-call cap.", "另有 {count} 条消息（{bytes} 字节）超出每通话上限，未保存。";
    LadderPbx => "PBX", "PBX（坐席交换机）";
    LadderGateway => "Gateway", "网关";
    LadderCarrier => "Carrier", "运营商";
    Retransmission => "retransmission", "重传";

    RecordingTitle => "Recording", "录音";
    RecStatusLabel => "State", "状态";
    RecLengthLabel => "Length", "时长";
    RecSizeLabel => "Size", "大小";
    CodecLabel => "Codec", "编码";
    StoredDigest => "SHA-256 stored when it was closed", "录音结束时保存的 SHA-256";
    NoteLabel => "Note", "备注";
    PausesLabel => "Paused (PCI)", "暂停录音（PCI）";
    PauseRow => "{start}–{end}, paused by {who}: {ended}", "{start}–{end}，由 {who} 暂停：{ended}";
    PauseResumedBy => "resumed by {who}", "由 {who} 恢复";
    PauseMaxPause => "resumed by itself after the longest pause allowed", "达到最长暂停时间后自动恢复";
    PauseCallEnded => "the call ended while paused", "通话在暂停中结束";
    NoRecording => "This call has no recording.", "该通话没有录音。";
    RecordingPurged => "The recording was deleted by the retention rules on {time}; its digest stays.", "录音已于 {time} 按保留规则删除，其摘要仍保留。";
    NoRecordingFile => "The recording has no file to play.", "该录音没有可播放的文件。";
    PlayerLabel => "Recording player", "录音播放器";
    Play => "Play", "播放";
    WaveformLabel => "Waveform of both channels: the agent above, the customer below", "双声道波形：上为坐席，下为客户";
    WaveformCaption => "Above: the agent (PBX). Below: the customer (carrier). Click to go there.", "上：坐席（PBX）。下：客户（运营商）。点击可跳转到该位置。";
    Pause => "Pause", "暂停";
    Back10 => "Back 10 s", "后退 10 秒";
    Forward10 => "Forward 10 s", "前进 10 秒";
    SpeedLabel => "Speed", "速度";
    ListenTo => "Listen to", "收听";
    LevelLabel => "Level", "音量";
    ChannelBoth => "both (agent left, customer right)", "双方（左：坐席，右：客户）";
    ChannelAgent => "the agent only", "仅坐席";
    ChannelCustomer => "the customer only", "仅客户";
    DownloadWav => "Download the WAV file", "下载 WAV 文件";
    VerifyNow => "Verify now", "立即校验";
    VerifyOk => "Verified: the file matches the digest stored when it was closed.", "校验通过：文件与录音结束时保存的摘要一致。";
    VerifyMismatch => "Mismatch: the file does not match its stored digest.", "不一致：文件与保存的摘要不符。";
    ComputedDigest => "SHA-256 now", "当前 SHA-256";
    CheckedAt => "Checked", "校验时间";
    ProblemLabel => "Problem", "问题";

    HoldTitle => "Legal hold", "法律保全";
    OnHold => "On hold since {time}, placed by {who}: {reason}. Retention will not delete this call.", "自 {time} 起由 {who} 保全：{reason}。保留规则不会删除该通话。";
    NotOnHold => "Not on hold: the retention rules apply.", "未保全：适用保留规则。";
    HoldReason => "Reason", "原因";
    HoldReasonHelp => "A case number, a court order: why the call must be kept.", "案件编号、法院命令等：保留该通话的理由。";
    PlaceHold => "Place on hold", "保全";
    ReleaseHold => "Release the hold", "解除保全";
    ReleaseReason => "Why it is released (optional)", "解除原因（可选）";
    HoldHistory => "Holds of this call", "该通话的保全记录";
    PlacedAt => "Placed", "保全时间";
    PlacedBy => "By", "操作人";
    ReleasedAt => "Released", "解除时间";
    ReleasedBy => "Released by", "解除人";
    SayWhy => "Say why.", "请填写原因。";
    HoldPlaced => "The call is on hold.", "已保全该通话。";
    HoldReleased => "The hold is released.", "已解除保全。";

    AnomaliesTitle => "Anomalies citing this call", "涉及该通话的异常";
    DetectedAt => "Detected", "检测时间";
    RuleLabel => "Rule", "规则";
    SubjectLabel => "Subject", "对象";
    ObservedLabel => "Observed", "观测值";
    ThresholdLabel => "Threshold", "阈值";
    StepLabel => "Step", "措施";
    EnforcementTitle => "Enforcement they caused", "由此产生的管控";
    ActionLabel => "Action", "动作";
    UntilLabel => "Until", "截止";
    OperatorLabel => "Operator", "操作人";
    NoneYet => "None.", "无。";
    TrailTitle => "Who read or changed this call", "该通话的访问记录";
    TrailHelp => "From the audit log: every request that named this call, through the API or this console.", "来自审计日志：通过 API 或本控制台涉及该通话的每个请求。";
    WhoLabel => "Who", "访问者";
    HttpStatus => "Answer (HTTP)", "应答（HTTP）";

    LiveTitle => "Live calls", "实时通话";
    LiveHelp => "The calls in progress, refreshed every few seconds.", "正在进行的通话，每隔几秒自动刷新。";
    StartedLabel => "Started", "开始时间";
    AgentLeg => "Agent leg (PBX)", "坐席侧（PBX）";
    CustomerLeg => "Customer leg (carrier)", "客户侧（运营商）";
    HangUp => "Hang up", "挂断";
    HangUpCall => "Hang up call {id}", "挂断通话 {id}";
    NoLiveCalls => "No call is in progress.", "当前没有进行中的通话。";
    Ringing => "ringing", "振铃中";
    LegFigures => "in {in} · out {out} · lost {lost} · jitter {jitter} ms · {codec} · last packet {age} ms ago", "收 {in} · 发 {out} · 丢 {lost} · 抖动 {jitter} 毫秒 · {codec} · 上个包 {age} 毫秒前";
    LegFiguresSilent => "{codec} · no RTP yet", "{codec} · 尚无 RTP";
    HungUp => "The call is being hung up.", "正在挂断该通话。";
    AlreadyEnded => "That call had already ended.", "该通话已经结束。";

    EnforcementPageTitle => "Enforcement", "管控措施";
    InForceTitle => "Steps in force", "正在执行的措施";
    NothingInForce => "No step is in force.", "当前没有执行中的措施。";
    SinceLabel => "Since", "开始";
    CauseLabel => "Cause", "起因";
    LiftStep => "Lift", "解除";
    ImposeTitle => "Impose a step", "实施措施";
    ImposeNumber => "Caller ID (empty: the whole trunk)", "主叫号码（留空：整个中继）";
    DurationLabel => "For how long (optional)", "持续时间（可选）";
    DurationHelp => "A duration such as 30m, 2h or 1d; empty: until lifted.", "例如 30m、2h 或 1d；留空：直到解除。";
    ImposeButton => "Impose", "实施";
    EnforcementLogTitle => "Log of the last 24 hours (UTC)", "最近 24 小时记录（UTC）";
    StepImposed => "The step is in force.", "措施已生效。";
    StepLifted => "The step is lifted.", "措施已解除。";
    NotTheTrunksNumber => "Not a number of this trunk.", "不是该中继的号码。";
    TrunksTitle => "Trunks", "中继";
    UpdatedBy => "Last changed {time} by {who}.", "最近修改：{time}，修改人 {who}。";
    MaxConcurrent => "Calls at once", "最大并发通话数";
    MaxPerCallerId => "Calls at once per caller ID", "每个主叫号码的最大并发数";
    MaxCps => "Calls per second", "每秒呼叫数";
    CallingHours => "Calling hours", "允许呼叫时段";
    TimeZoneLabel => "Time zone", "时区";
    TrunkNumbers => "Numbers (caller IDs allowed out, numbers reachable in)", "号码（允许呼出的主叫号码、可呼入的号码）";
    BlockedNumbers => "Blocked numbers", "屏蔽号码";
    NoNumbers => "No number.", "没有号码。";
    NoBlocked => "No blocked number.", "没有屏蔽号码。";
    AddNumber => "Add a number", "添加号码";
    Add => "Add", "添加";
    Remove => "Remove", "移除";
    RemoveNumber => "Remove {number}", "移除 {number}";
    NumberAdded => "The number is added; the next call sees it.", "号码已添加，下一通呼叫即生效。";
    NumberRemoved => "The number is removed; the next call sees it.", "号码已移除，下一通呼叫即生效。";
    AlreadyListed => "This number is on the list already.", "该号码已在列表中。";
    NotListed => "This number is not on the list.", "该号码不在列表中。";
    KpisTitle => "Key figures", "关键指标";
    KpisLegend => "Period and bucket", "时段与粒度";
    KpisHelp => "Days in UTC; empty: today. Ratios are over the calls offered to the carrier.", "日期按 UTC 计；留空为今天。比率按提交给运营商的呼叫计算。";
    BucketLabel => "Bucket", "粒度";
    BucketHour => "hour", "小时";
    BucketDay => "day", "天";
    ShowButton => "Show", "显示";
    ExportKpis => "Export these figures as CSV", "将这些指标导出为 CSV";
    NoFigures => "No call in this period.", "该时段没有呼叫。";
    ChartAttempts => "Attempts and answered calls per bucket", "每个时段的呼叫尝试与接通数";
    ChartRatios => "ASR and NER per bucket, in percent", "每个时段的 ASR 与 NER（百分比）";
    Attempts => "Attempts", "呼叫尝试";
    Answered => "Answered", "接通";
    TimeUtc => "Time (UTC)", "时间（UTC）";
    KpisTable => "Figures per bucket and subject", "按时段与对象的指标";
    InvalidRate => "Invalid numbers", "空号率";
    ShortCalls => "Short calls", "短通话";
    ComplaintsPer1000 => "Complaints per 1,000 answered", "每千次接通投诉数";
    MaxCallSecs => "Longest call (s)", "最长通话时长（秒）";
    ThrottleShare => "Throttled share", "限流比例";
    EditLimits => "Edit the limits", "修改限制";
    LimitsLegend => "The trunk's limits", "中继限制";
    SaveLimits => "Save the limits", "保存限制";
    LimitsSaved => "The limits are saved; the next call sees them.", "限制已保存，下一通呼叫即生效。";
    EmptyIsDefault => "An empty field takes the default (shown greyed). The server checks every value; a refused one is shown beside its field.", "留空的字段使用默认值（灰色显示）。服务器会检查每个值，被拒绝的值会在其字段旁说明原因。";
    DefaultValue => "default ({value})", "默认（{value}）";
    ServerRefused => "Refused by the server:", "服务器拒绝了该值：";
    HelpCount => "A whole number, at least 1.", "整数，至少为 1。";
    HelpCount0 => "A whole number, 0 or more.", "整数，0 或以上。";
    HelpCallee => "A whole number from 1 to 64 while the rule is on.", "规则启用时为 1 至 64 的整数。";
    HelpCps => "New calls per second, above 0 (0.5: one every two seconds).", "每秒新呼叫数，大于 0（0.5 表示每两秒一次）。";
    HelpCallingHours => "Local windows HH:MM-HH:MM, comma-separated (09:00-12:00,13:30-20:00); empty: at any time.", "本地时段 HH:MM-HH:MM，以逗号分隔（09:00-12:00,13:30-20:00）；留空：全天。";
    HelpTimeZone => "An IANA time zone, such as Asia/Shanghai.", "IANA 时区，例如 Asia/Shanghai。";
    HelpCallSecs => "Seconds, at least 1 and at most a week (604800).", "秒数，至少 1，至多一周（604800）。";
    HelpThrottleShare => "The share of a cap a throttled trunk or caller ID keeps: above 0, at most 1.", "被限流的中继或主叫号码保留的并发上限比例：大于 0，至多 1。";
    HelpWindow => "The period the calls are counted over.", "统计呼叫次数的时间窗口。";
    FrequencyPerCaller => "Calls from one caller ID (rule over_frequent_number)", "单个主叫号码的呼叫频次（规则 over_frequent_number）";
    FrequencyPerCallee => "Calls to one number (rule over_frequent_callee)", "对同一号码的呼叫频次（规则 over_frequent_callee）";
    CallsPerWindow => "Calls per window", "每个窗口的呼叫数";
    CallsPerDay => "Calls per day", "每天的呼叫数";
    WindowLabel => "Window", "时间窗口";
    CallerIdLabel => "Caller ID", "主叫号码";
    CallerIdHelp => "A caller ID: its own charts; empty: the trunks'.", "主叫号码：显示该号码的图表；留空：显示中继的图表。";
    AnomaliesOfPeriod => "Anomalies of this period", "该时段的异常";
    ChartsOfTrunks => "Charts of the trunks", "中继图表";
    ChartsOfCaller => "Charts of caller ID {number}", "主叫号码 {number} 的图表";
    BackToTrunks => "back to the trunks", "返回中继图表";
    PerCallerTitle => "Per caller ID over the period", "按主叫号码统计（整个时段）";
    ChartsLabel => "Charts", "图表";
    AnomaliesPageTitle => "Anomalies", "异常";
    AnomaliesLegend => "Which anomalies", "筛选异常";
    AnomaliesHelp => "Days in UTC; empty: the last 24 hours. A caller ID or called number shows the anomalies about it.", "日期按 UTC 计；留空为最近 24 小时。填写主叫或被叫号码可查看与其相关的异常。";
    AnomalyKind => "Kind", "类型";
    NoAnomalies => "No anomaly matches.", "没有符合条件的异常。";
    AnomaliesCaption => "Anomalies, newest first, with their evidence", "异常及其证据（最新在前）";
    SampleLabel => "Sample / window", "样本 / 窗口";
    WindowSecs => "{secs} s", "{secs} 秒";
    EvidenceCalls => "Calls that show it", "相关通话";
    ItsCalls => "its calls ({count})", "查看通话（{count}）";
    OnTrunk => "(trunk {trunk})", "（中继 {trunk}）";
    StepNone => "none (a step was in force already)", "无（已有措施在执行）";
    OrderConflict => "The order was refused: the trunks changed meanwhile. Reload the page and try again.", "指令被拒绝：中继配置已变更，请刷新页面后重试。";
}

impl T {
    /// The text with each `{name}` replaced by its value (values are not translated here).
    pub fn fill(self, lang: Lang, values: &[(&str, &str)]) -> String {
        let mut out = self.text(lang).to_string();
        for (name, value) in values {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }
}

/// The placeholders a text names, in order.
#[cfg(test)]
fn placeholders(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = text
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect();
    out.sort_unstable();
    out
}

/// Whether a text holds Chinese characters.
#[cfg(test)]
pub(crate) fn has_cjk(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Technical names written the same in both languages.
    const SAME_IN_BOTH: &[T] = &[T::PaiLabel];

    #[test]
    fn every_label_is_in_both_languages() {
        for &key in T::ALL {
            let (en, zh) = (key.text(Lang::En), key.text(Lang::Zh));
            assert!(!en.trim().is_empty(), "{key:?}: no English");
            assert!(!zh.trim().is_empty(), "{key:?}: no Chinese");
            assert_eq!(
                placeholders(en),
                placeholders(zh),
                "{key:?}: the two texts name other placeholders"
            );
            assert!(!has_cjk(en), "{key:?}: Chinese in the English text");
            if !SAME_IN_BOTH.contains(&key) {
                assert!(
                    has_cjk(zh),
                    "{key:?}: the Chinese text is not translated: {zh}"
                );
            }
        }
    }

    #[test]
    fn fill_replaces_every_placeholder() {
        let s = T::SignedInAs.fill(Lang::Zh, &[("name", "alice"), ("role", "合规专员")]);
        assert_eq!(s, "已登录：alice（合规专员）");
        for &key in T::ALL {
            let text = key.text(Lang::En);
            let values: Vec<(&str, &str)> =
                placeholders(text).into_iter().map(|p| (p, "x")).collect();
            for lang in Lang::ALL {
                assert!(!key.fill(lang, &values).contains('{'), "{key:?}");
            }
        }
    }

    #[test]
    fn the_language_comes_from_the_cookie_then_the_browser() {
        for (value, lang) in [
            ("zh-CN,zh;q=0.9,en;q=0.8", Lang::Zh),
            ("en-US,en;q=0.9,zh-CN;q=0.8", Lang::En),
            ("fr-FR, zh-TW;q=0.5", Lang::Zh),
            ("fr-FR", Lang::En),
            ("en;q=0.2, zh;q=0.7", Lang::Zh),
            ("zh;q=0, en", Lang::En),
            ("", Lang::En),
            ("*", Lang::En),
        ] {
            assert_eq!(Lang::of_accept_language(value), lang, "{value}");
        }
        let mut h = HeaderMap::new();
        h.insert("accept-language", "zh-CN".parse().unwrap());
        assert_eq!(Lang::of_request(&h), Lang::Zh);
        h.insert("cookie", "tg_lang=en".parse().unwrap());
        assert_eq!(Lang::of_request(&h), Lang::En);
        h.insert("cookie", "tg_lang=xx".parse().unwrap());
        assert_eq!(
            Lang::of_request(&h),
            Lang::Zh,
            "an unknown choice is ignored"
        );
    }
}
