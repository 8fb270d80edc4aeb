"""Shared test data for the supervisor/trainer reports (issue 6): a results database built
from the sample calls with the reference-text transcriber (real audio paths, teams, names),
plus synthetic talk metrics so scorecards and alerts have something to show."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from qa_inspect.batch.inputs import read_input
from qa_inspect.batch.pipeline import PackSet, score_transcript
from qa_inspect.rules import load_pack
from qa_inspect.store import open_store

# per-call customer sentiment at the end (-1..1) the enrichment stage would write;
# zh_media_threat ends very negative (an alert), zh_polite_inquiry ends happy (a best example)
SENTIMENT_END = {"zh_media_threat": -0.8, "zh_billing_12315": -0.3, "zh_polite_inquiry": 0.7,
                 "zh_long_hold": 0.4, "zh_plan_change_verify": 0.5, "zh_network_fault": 0.2}


def build_db(root: Path, samples: Path, db: Path) -> Path:
    """Score the reference transcripts (no audio decoding and no enrichment models: fast, and
    independent of those stages), then attach each call's manifest row (audio path, agent
    name, team) and the synthetic sentiment/speech-rate metrics above."""
    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")])
    meta = {it.call.call_id: it.call for it in read_input(samples / "manifest.csv")}
    with open_store(db) as store:
        for it in read_input(samples / "transcripts.jsonl"):
            r = score_transcript(it, it.transcript, packs.for_language(it.call.language), cfg_hash="fixture")
            m = dict(r.metrics)
            cid = r.call.call_id
            if cid in SENTIMENT_END:
                m["customer_sentiment_end"] = SENTIMENT_END[cid]
                m["customer_sentiment_min"] = min(SENTIMENT_END[cid], 0.0) - 0.1
            m.setdefault("speech_rate_agent", 240.0 + len(cid))
            # enrichment keeps its metrics with the transcript too (what re-scoring reads)
            tr = replace(r.transcript, metrics={**r.transcript.metrics,
                                                **{k: v for k, v in m.items() if k not in r.metrics}})
            store.put_result(replace(r, call=meta[cid], metrics=m, transcript=tr))
    return db
