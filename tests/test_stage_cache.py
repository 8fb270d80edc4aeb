"""Every stage's configuration is in the key of what it produces: a changed sentiment backend or
acoustic configuration re-enriches (and so re-scores) the stored calls without transcribing them
again, and changes nothing else."""
import dataclasses

from qa_inspect.batch.inputs import read_input
from qa_inspect.batch.pipeline import PackSet, run_batch
from qa_inspect.batch.score import asr_part, stage_key
from qa_inspect.enrich import EnrichConfig
from qa_inspect.enrich.acoustics import AcousticConfig
from qa_inspect.enrich.sentiment import SentimentConfig
from qa_inspect.rules import load_pack
from qa_inspect.speech import decode
from qa_inspect.speech.fakes import ReferenceTranscriber
from qa_inspect.store import open_store

IDS = ("zh_billing_12315", "zh_polite_inquiry", "en_complaint_escalation")


def _setup(root, samples):
    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")])
    items = [it for it in read_input(samples / "manifest.csv") if it.call.call_id in IDS]
    assert len(items) == len(IDS)
    return packs, items, ReferenceTranscriber(samples / "transcripts.jsonl")


def _stored(store, items, key):
    return {it.call.call_id: store.get_transcript(decode.file_hash(it.call.path), key) for it in items}


def test_enrichment_config_invalidates_the_enrichment_and_nothing_else(root, samples, tmp_path):
    packs, items, fake = _setup(root, samples)
    lexicon = EnrichConfig(sentiment=SentimentConfig(backend="lexicon"), acoustics=AcousticConfig())
    other_acoustics = dataclasses.replace(lexicon, acoustics=AcousticConfig(silence_min_s=2.0))
    assert len({lexicon.key(), other_acoustics.key(), EnrichConfig(
        sentiment=SentimentConfig(backend="combined"), acoustics=AcousticConfig()).key()}) == 3
    with open_store(tmp_path / "q.db") as store:
        s1 = run_batch(items, packs, store, lambda: fake, "fake-asr", enrich_cfg=lexicon)
        assert (s1.ok, fake.calls) == (3, 3)
        first = {r.call.call_id: r for r in store.results()}
        # the same configuration again: nothing to do
        s2 = run_batch(items, packs, store, lambda: fake, "fake-asr", enrich_cfg=lexicon)
        assert (s2.skipped, s2.ok, fake.calls) == (3, 0, 3)

        # another acoustic configuration: re-enriched and re-scored, not re-transcribed
        s3 = run_batch(items, packs, store, lambda: fake, "fake-asr", enrich_cfg=other_acoustics)
        assert (s3.skipped, s3.ok, fake.calls) == (0, 3, 3)
        second = {r.call.call_id: r for r in store.results()}
        for cid in IDS:
            assert second[cid].config_hash != first[cid].config_hash
            assert second[cid].transcript.metrics["enrichment"] == other_acoustics.key()
            assert first[cid].transcript.metrics["enrichment"] == lexicon.key()
        # both enrichments are kept next to the one raw transcript (switching back is free)
        k1, k2 = stage_key("fake-asr", lexicon), stage_key("fake-asr", other_acoustics)
        assert asr_part(k1) == asr_part(k2) == "fake-asr"
        raw = _stored(store, items, "fake-asr")
        assert all(t is not None and "enrichment" not in t.metrics for t in raw.values())
        assert all(t is not None for t in _stored(store, items, k1).values())
        assert all(t is not None for t in _stored(store, items, k2).values())
        s4 = run_batch(items, packs, store, lambda: fake, "fake-asr", enrich_cfg=lexicon)
        assert (s4.ok, fake.calls) == (3, 3)
        back = {r.call.call_id: r for r in store.results()}
        assert {c: back[c].config_hash for c in IDS} == {c: first[c].config_hash for c in IDS}


def test_sentiment_backend_changes_the_stored_sentiment(root, samples, tmp_path, monkeypatch):
    """The default configuration comes from the environment (QA_INSPECT_SENTIMENT): changing it
    re-enriches with the new backend; the ASR key and the rule packs are untouched."""
    packs, items, fake = _setup(root, samples)
    with open_store(tmp_path / "q.db") as store:
        monkeypatch.setenv("QA_INSPECT_SENTIMENT", "lexicon")
        run_batch(items, packs, store, lambda: fake, "fake-asr")
        before = {r.call.call_id: r for r in store.results()}
        # a scorer name stored per call tells which backend enriched it
        assert {r.transcript.metrics["sentiment_scorer"] for r in before.values()} == {"lexicon"}
        monkeypatch.setenv("QA_INSPECT_SENTIMENT", "combined")
        s2 = run_batch(items, packs, store, lambda: fake, "fake-asr")
        assert (s2.ok, s2.skipped, fake.calls) == (3, 0, 3)
        after = {r.call.call_id: r for r in store.results()}
    assert {r.transcript.metrics["sentiment_scorer"] for r in after.values()} != {"lexicon"}
    assert all(after[c].config_hash != before[c].config_hash for c in IDS)
