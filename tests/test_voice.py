"""The numpy voice encoder (qa_inspect.speech.voice) against resemblyzer, torch and librosa
themselves: same weights, same mel spectrogram, same embeddings, same speaker turns. torch and
librosa are the reference here only; the package never imports them."""
import pickle
import subprocess
import sys

import numpy as np
import pytest

from qa_inspect.errors import ModelMissingError
from qa_inspect.speech import speakers, voice
from qa_inspect.speech.decode import decode


@pytest.fixture(scope="module")
def reference():
    """resemblyzer's own encoder (torch) and audio functions (librosa)."""
    speakers._import_webrtcvad()  # resemblyzer.audio imports webrtcvad, which wants pkg_resources
    torch = pytest.importorskip("torch")
    resemblyzer = pytest.importorskip("resemblyzer")
    torch.set_num_threads(1)
    return torch, resemblyzer, resemblyzer.VoiceEncoder(device="cpu", verbose=False)


@pytest.fixture(scope="module")
def mono_mix(samples):
    return decode(samples / "audio" / "en_complaint_escalation.flac").mono  # two voices mixed to mono


def test_checkpoint_reader_refuses_anything_but_tensors(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    legacy = (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True})  # torch's legacy magic, protocol, system info
    header = b"".join(pickle.dumps(o, protocol=2) for o in legacy)
    for data in (pickle.dumps(Evil(), protocol=4), header + pickle.dumps({"model_state": Evil()}, protocol=2)):
        path.write_bytes(data)
        with pytest.raises(voice.WeightsError, match=r"evil.pt: .*print, which a weights reader does not load"):
            voice.read_torch_checkpoint(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(voice.WeightsError, match="evil.pt: not a readable torch checkpoint"):
        voice.read_torch_checkpoint(path)


@pytest.mark.parametrize("zip_format", [True, False])
def test_checkpoint_reader_reads_both_torch_formats(tmp_path, reference, zip_format):
    torch = reference[0]
    flat = torch.arange(24, dtype=torch.float32)
    state = {"w": flat[4:16].view(3, 4), "t": flat[:12].view(3, 4).t(), "i": torch.tensor([1, -2], dtype=torch.int64),
             "nested": [torch.ones(2, dtype=torch.float64)], "step": 7}
    path = tmp_path / "x.pt"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    got = voice.read_torch_checkpoint(path)
    assert got["step"] == 7
    for k in ("w", "t", "i"):
        assert got[k].dtype == state[k].numpy().dtype and np.array_equal(got[k], state[k].numpy()), k
    assert np.array_equal(got["nested"][0], np.ones(2))


def test_resemblyzer_weights_read_without_torch_equal_torch_load(reference):
    torch = reference[0]
    path = voice.resemblyzer_weights_path()
    ours = voice.read_torch_checkpoint(path)["model_state"]
    theirs = torch.load(path, map_location="cpu")["model_state"]
    assert sorted(ours) == sorted(theirs)
    for k, v in theirs.items():
        assert np.array_equal(ours[k], v.numpy()), k


def test_missing_resemblyzer_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(voice.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelMissingError, match="pip install resemblyzer"):
        voice.resemblyzer_weights_path()


@pytest.mark.filterwarnings("ignore:n_fft=400 is too large")  # librosa, on the 100-sample input
def test_mel_spectrogram_equals_resemblyzers(reference, mono_mix):
    _torch, resemblyzer, _enc = reference
    import librosa

    assert np.array_equal(voice.mel_filters(), librosa.filters.mel(sr=16000, n_fft=400, n_mels=40))
    x = mono_mix.astype(np.float32)
    wav = resemblyzer.normalize_volume(x, -30, increase_only=True)
    assert np.array_equal(voice.normalize_volume(x, -30), wav)
    quiet = x * 0.001  # raised by normalize_volume; loud audio is left as it is
    assert np.array_equal(voice.normalize_volume(quiet, -30), resemblyzer.normalize_volume(quiet, -30, increase_only=True))
    assert np.array_equal(voice.normalize_volume(x * 30, -30), x * 30)
    for y in (wav, wav[:16000 * 3 + 77], wav[:100]):  # frame count and the zero-padded edges
        ref = resemblyzer.wav_to_mel_spectrogram(y)
        ours = voice.mel_spectrogram(y, block=97)  # blocks that do not divide the frame count
        assert ours.shape == ref.shape and ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6 * ref.max())


def test_embeddings_equal_resemblyzers(reference, mono_mix):
    torch, resemblyzer, ref_enc = reference
    mel = resemblyzer.wav_to_mel_spectrogram(resemblyzer.normalize_volume(mono_mix.astype(np.float32), -30,
                                                                          increase_only=True))
    enc = speakers.encoder()
    for length, step in ((120, 25), (160, 200), (47, 300)):  # full windows, resemblyzer's 1.6 s partials, a short one
        batch = np.stack([mel[a:a + length] for a in range(0, len(mel) - length, step)])
        with torch.no_grad():
            ref = ref_enc(torch.from_numpy(batch)).numpy()
        ours = enc(batch)
        cos = np.sum(ours * ref, axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
        assert len(batch) >= 5 and cos.min() > 1 - 1e-4, (length, cos.min())
        np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_diarize_gives_the_same_turns_as_with_resemblyzer(reference, mono_mix, monkeypatch):
    torch, resemblyzer, ref_enc = reference
    ours = speakers.diarize_detail(mono_mix)

    def torch_embed(x, windows, threads=0):  # the torch + librosa implementation this replaced
        mel = resemblyzer.wav_to_mel_spectrogram(resemblyzer.normalize_volume(x.astype(np.float32), -30,
                                                                              increase_only=True))
        out = np.zeros((len(windows), 256), dtype=np.float32)
        by_len: dict[int, list[tuple[int, int]]] = {}
        for i, (_k, s, e) in enumerate(windows):
            a, b = int(round(s / 0.01)), min(int(round(e / 0.01)), len(mel))
            by_len.setdefault(b - a, []).append((i, a))
        for length, items in by_len.items():
            with torch.no_grad():
                emb = ref_enc(torch.from_numpy(np.stack([mel[a:a + length] for _i, a in items]))).numpy()
            out[[i for i, _a in items]] = emb
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    monkeypatch.setattr(speakers, "embed_windows", torch_embed)
    theirs = speakers.diarize_detail(mono_mix)
    assert len(ours[0]) >= 4 and len({s.speaker for s in ours[0]}) == 2
    assert ours[0] == theirs[0]
    assert ours[1] == pytest.approx(theirs[1], abs=1e-4)  # silhouette


def test_diarizing_imports_neither_torch_nor_librosa(root):
    code = f"""
import sys
from qa_inspect.speech.decode import decode
from qa_inspect.speech.speakers import diarize
assert len(diarize(decode({str(root / 'samples' / 'audio' / 'en_billing_inquiry.flac')!r}).mono)) > 1
print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}})))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    loaded = set(out.stdout.split())
    assert "qa_inspect" in loaded
    assert loaded.isdisjoint({"torch", "librosa", "numba", "resemblyzer"}), sorted(loaded)


def test_encoder_runs_in_batches_of_bounded_size(mono_mix):
    enc = speakers.encoder()
    mel = voice.mel_spectrogram(voice.normalize_volume(mono_mix.astype(np.float32)))
    batch = np.stack([mel[a:a + 120] for a in range(0, 20 * 50, 50)])
    whole = enc(batch)
    small = voice.VoiceEncoder(voice.read_torch_checkpoint(voice.resemblyzer_weights_path())["model_state"])
    small.batch = 7
    np.testing.assert_allclose(small(batch), whole, atol=1e-6)
