"""The workspace's words: Simplified Chinese by default, English by a user setting."""
from __future__ import annotations

from typing import Callable

ZH = {
    "app": "质检复核工作台", "login": "登录", "logout": "退出", "username": "用户名", "password": "密码",
    "login_failed": "用户名或密码错误", "too_many": "登录失败次数过多，请 5 分钟后再试",
    "queue": "待复核队列", "my_queue": "分配给我的待复核", "all_calls": "全部通话", "appeals": "申诉处理",
    "my_calls": "我的通话", "filters": "筛选", "apply": "筛选", "reset": "重置",
    "date_from": "开始日期", "date_to": "结束日期", "team": "班组", "agent": "坐席", "score_min": "最低分",
    "score_max": "最高分", "grade": "等级", "fatal": "一票否决", "rule": "命中规则", "reviewed": "复核状态",
    "search": "全文检索", "any": "全部", "yes": "是", "no": "否", "reviewed_yes": "已复核", "reviewed_no": "未复核",
    "call": "通话", "time": "时间", "score": "分数", "hits": "检出项", "none": "无", "total": "共 {n} 条",
    "prev_page": "上一页", "next_page": "下一页", "empty": "没有符合条件的通话",
    "items": "质检项", "only_hits": "只看检出", "hit": "命中", "not_hit": "未命中", "na": "不适用",
    "points": "分值", "transcript": "转写文本", "score_panel": "评分", "machine": "机器评分",
    "manual": "人工评分", "final": "最终得分", "source": "来源", "src_machine": "机器", "src_manual": "复核",
    "src_appeal": "申诉", "confirm": "确认", "false_positive": "误报", "missed": "漏检",
    "reason": "原因", "comment": "复核意见", "comment_fatal": "推翻一票否决项须填写复核意见",
    "submit": "提交并下一条", "saved": "已保存", "conflict": "他人已先保存，请刷新后查看",
    "history": "复核记录", "no_history": "暂无记录", "speed": "倍速", "agent_role": "坐席", "customer_role": "客户",
    "unknown_role": "未知", "appeal": "申诉", "appeal_items": "勾选要申诉的检出项", "appeal_reason": "申诉理由",
    "appeal_submit": "提交申诉", "appeal_open": "申诉中", "appeal_upheld": "申诉成立", "appeal_rejected": "申诉驳回",
    "decide": "处理", "uphold": "申诉成立", "reject": "驳回", "decision_comment": "处理意见",
    "new_score": "改判分数（可空，自动重算）", "no_appeals": "暂无待处理申诉", "keys": "快捷键：空格 播放/暂停，"
    "j/k 下/上一个检出，c 确认，x 误报，n 下一条", "language": "界面语言", "save": "保存",
    "evidence": "证据", "version": "版本", "audio_missing": "此通话没有录音", "reviewer": "质检员",
    "action_review": "复核", "action_appeal": "申诉", "action_appeal_decision": "申诉处理", "action_assign": "分配",
    "error": "出错了", "back": "返回", "role_reviewer": "质检员", "role_supervisor": "班组长", "role_agent": "坐席",
    "role_admin": "管理员", "redacted_note": "个人号码已脱敏", "duration": "时长", "next_call": "下一条", "level": "第 {n} 级", "action_appeal_level1": "申诉一级处理",
    "level2": "二级复核（须另一位主管）",
    "calibration": "规则校准", "calibration_intro": "机器结论与质检员复核结论的一致程度（全部复核：工作台保存与导入的复核表）。"
    "精确率低的规则误报多，召回率低的规则漏检多；修改规则后用下载的复核标注在 rules eval 中验证。",
    "no_reviews": "暂无复核结论", "reviewed_calls": "已复核通话", "verdicts": "复核结论", "weeks": "周数",
    "kappa_machine": "机器与质检员一致性 (kappa)", "kappa_inter": "质检员之间一致性 (kappa)",
    "score_gap": "机器分与人工分平均差", "reviews_n": "复核数", "tp": "确认命中", "fp": "误报", "fn": "漏检",
    "tn": "确认未命中", "precision": "精确率", "recall": "召回率", "fp_week": "每周误报", "fix_first": "优先修正",
    "labels_download": "下载复核标注（JSONL，供 rules eval / rules learn 使用）", "since": "起始日期（可空）",
    "download": "下载", "on_calls": "（{n} 通通话）",
}

EN = {
    "app": "QC review workspace", "login": "Log in", "logout": "Log out", "username": "User name",
    "password": "Password", "login_failed": "Wrong user name or password",
    "too_many": "Too many failed logins; try again in 5 minutes", "queue": "Review queue",
    "my_queue": "Assigned to me", "all_calls": "All calls", "appeals": "Appeals", "my_calls": "My calls",
    "filters": "Filters", "apply": "Filter", "reset": "Reset", "date_from": "From", "date_to": "To",
    "team": "Team", "agent": "Agent", "score_min": "Min score", "score_max": "Max score", "grade": "Grade",
    "fatal": "Fatal", "rule": "Rule hit", "reviewed": "Review", "search": "Text search", "any": "Any",
    "yes": "Yes", "no": "No", "reviewed_yes": "Reviewed", "reviewed_no": "Not reviewed", "call": "Call",
    "time": "Time", "score": "Score", "hits": "Hits", "none": "none", "total": "{n} calls",
    "prev_page": "Previous", "next_page": "Next", "empty": "No calls match", "items": "Items",
    "only_hits": "Detected only", "hit": "Hit", "not_hit": "Not hit", "na": "n/a", "points": "Points",
    "transcript": "Transcript", "score_panel": "Score", "machine": "Machine", "manual": "Manual",
    "final": "Final", "source": "Source", "src_machine": "machine", "src_manual": "review",
    "src_appeal": "appeal", "confirm": "Confirm", "false_positive": "False hit", "missed": "Missed",
    "reason": "Reason", "comment": "Comment", "comment_fatal": "Overturning a fatal item needs a comment",
    "submit": "Submit & next", "saved": "Saved", "conflict": "Someone else saved first; reload",
    "history": "Review history", "no_history": "No history yet", "speed": "Speed", "agent_role": "Agent",
    "customer_role": "Customer", "unknown_role": "Unknown", "appeal": "Appeal",
    "appeal_items": "Tick the items to appeal", "appeal_reason": "Reason", "appeal_submit": "Submit appeal",
    "appeal_open": "Appeal open", "appeal_upheld": "Upheld", "appeal_rejected": "Rejected", "decide": "Decide",
    "uphold": "Uphold", "reject": "Reject", "decision_comment": "Comment",
    "new_score": "New score (blank: recomputed)", "no_appeals": "No open appeals",
    "keys": "Keys: space play/pause, j/k next/previous hit, c confirm, x false hit, n next call",
    "language": "Language", "save": "Save", "evidence": "Evidence", "version": "Version",
    "audio_missing": "No recording for this call", "reviewer": "Reviewer", "action_review": "review",
    "action_appeal": "appeal", "action_appeal_decision": "appeal decision", "action_assign": "assign",
    "error": "Error", "back": "Back", "role_reviewer": "Reviewer", "role_supervisor": "Supervisor",
    "role_agent": "Agent", "role_admin": "Admin", "redacted_note": "Personal numbers redacted",
    "duration": "Duration", "next_call": "Next call", "level": "Level {n}", "action_appeal_level1": "appeal level 1",
    "level2": "Second level (another supervisor)",
    "calibration": "Rule calibration", "calibration_intro": "How far the machine agrees with the reviewers "
    "(every review: saved here or imported from worksheets). Low precision: false hits; low recall: misses. "
    "After changing a rule, check it with the downloaded review labels in rules eval.",
    "no_reviews": "No reviewer verdicts yet", "reviewed_calls": "Reviewed calls", "verdicts": "Verdicts",
    "weeks": "Weeks", "kappa_machine": "Machine vs reviewers (kappa)", "kappa_inter": "Between reviewers (kappa)",
    "score_gap": "Machine vs manual score, mean difference", "reviews_n": "Reviewed", "tp": "Confirmed hits",
    "fp": "False hits", "fn": "Missed", "tn": "Confirmed passes", "precision": "Precision", "recall": "Recall",
    "fp_week": "False hits / week", "fix_first": "Fix first",
    "labels_download": "Download review labels (JSONL, for rules eval / rules learn)", "since": "Since (optional)",
    "download": "Download", "on_calls": " ({n} calls)",
}

_LANGS = {"zh": ZH, "en": EN}


def translator(lang: str) -> Callable[..., str]:
    table = _LANGS.get(lang, ZH)

    def t(key: str, **kw: object) -> str:
        s = table.get(key) or ZH.get(key) or key
        return s.format(**kw) if kw else s

    t.lang = "zh-CN" if table is ZH else "en"  # type: ignore[attr-defined]
    t.table = table  # type: ignore[attr-defined]
    return t
