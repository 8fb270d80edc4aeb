"""The pipeline over real sample audio (decoded, hashed) with the reference-text transcriber."""
from qa_inspect.speech.fakes import ReferenceTranscriber
from qa_inspect.batch.inputs import read_input
from qa_inspect.batch.pipeline import PackSet, run_batch
from qa_inspect.rules import load_pack
from qa_inspect.store import open_store


def test_batch_with_fake_transcriber_resumes_without_double_counting(root, samples, tmp_path):
    packs = PackSet([load_pack(root / "rules/telecom_zh.yaml"), load_pack(root / "rules/telecom_en.yaml")])
    items = read_input(samples / "manifest.csv")
    fake = ReferenceTranscriber(samples / "transcripts.jsonl")
    with open_store(tmp_path / "q.db") as store:
        s1 = run_batch(items, packs, store, lambda: fake, "fake-asr")
        assert (s1.ok, s1.errors) == (13, 1)
        assert fake.calls == 13
        assert s1.error_reasons and "cannot decode audio" in next(iter(s1.error_reasons))
        # second run: every ok call is skipped, nothing re-transcribed, one row per call
        s2 = run_batch(items, packs, store, lambda: fake, "fake-asr")
        assert (s2.skipped, s2.ok, fake.calls) == (13, 0, 13)
        assert store.count() == 14
        # a rule change re-scores from the stored transcripts without transcribing again
        s3 = run_batch(items, PackSet([load_pack(root / "rules/telecom_en.yaml")]), store,
                       lambda: fake, "fake-asr")
        # the English calls already ran under telecom_en: unchanged config, skipped
        assert (s3.ok, s3.skipped, fake.calls) == (11, 2, 13)
        by_id = {r.call.call_id: r for r in store.results()}
    assert by_id["en_complaint_escalation"].pack_id == "telecom_en"
    assert by_id["corrupt_call"].status == "error"
