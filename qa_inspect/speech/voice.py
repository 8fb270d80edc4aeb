"""resemblyzer's voice embeddings in numpy: the same vectors without importing torch or librosa.

Mono-call diarization (``speakers.py``) embeds speech windows with resemblyzer's ``VoiceEncoder``
(a 3-layer LSTM over a 40-band mel spectrogram). Through resemblyzer that costs a pipeline worker
``import torch`` (+176 MiB, 2.4 s) and librosa's first ``melspectrogram`` (+173 MiB, 2.9 s of
numba JIT) for a network of 1.4 M weights (issue 18: ≤ 1 GB per worker, fast small batches).
Here the same computation runs in numpy:

- ``load_weights`` reads the ``pretrained.pt`` shipped inside the resemblyzer package (found
  without importing it: its ``__init__`` imports torch) with a restricted unpickler that builds
  numpy arrays and accepts only the few names a tensor checkpoint uses;
- ``mel_spectrogram`` is ``resemblyzer.audio.wav_to_mel_spectrogram`` (librosa's
  ``melspectrogram``: n_fft 400, hop 160, 40 Slaney mel bands, power 2, periodic Hann window,
  centred frames zero-padded as librosa ≥ 0.10 does) and ``normalize_volume`` its namesake;
- ``VoiceEncoder`` is ``resemblyzer.VoiceEncoder.forward``: the LSTM (PyTorch's gate equations)
  in float32, its final hidden state → Linear → ReLU → L2 normalisation.

``tests/test_voice.py`` checks all three against resemblyzer, torch and librosa themselves.
"""
from __future__ import annotations

import importlib.util
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qa_inspect.errors import ModelMissingError, QAError

SR = 16000
N_FFT = 400     # 25 ms
HOP = 160       # 10 ms
N_MELS = 40
INT16_MAX = 2 ** 15 - 1
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch's pre-1.6 (non-zip) checkpoint format
_LEGACY_PROTOCOL = 1001


class WeightsError(QAError):
    """A weights file is not a torch checkpoint this reader accepts."""


# ---------------------------------------------------------------------------------------------
# torch checkpoints without torch

_STORAGE_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
                   "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
                   "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?"}


@dataclass
class _Storage:
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None or len(data) < self.storage.numel:
            raise WeightsError("a tensor's storage is missing from the weights file")
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, dtype=data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or min(self.stride, default=0) < 0 or last >= len(data):
            raise WeightsError("a tensor lies outside its storage in the weights file")
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.size,
                                               strides=tuple(s * data.itemsize for s in self.stride))
        return view.copy()


def _rebuild_tensor(storage, offset, size, stride, *_grad_hooks_metadata):
    """Stands in for ``torch._utils._rebuild_tensor(_v2)``: requires_grad and hooks do not matter here."""
    if not isinstance(storage, _Storage):
        raise WeightsError("a tensor without a storage in the weights file")
    return _Tensor(storage, int(offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


class _Unpickler(pickle.Unpickler):
    """Unpickles a checkpoint's tensors, dicts and numbers and nothing else: any other global
    (a class, a function to call) is refused, so the file cannot run code."""

    def __init__(self, file, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return np.dtype(_STORAGE_DTYPES[name])
        raise WeightsError(f"the weights file refers to {module}.{name}, which a weights reader does not load")

    def persistent_load(self, pid: Any) -> _Storage:
        # ('storage', dtype, key, location, numel[, view metadata (legacy format only)])
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], np.dtype)):
            raise WeightsError(f"unexpected object reference in the weights file: {pid!r:.80}")
        if len(pid) == 6 and pid[5] is not None:
            raise WeightsError("storage views in the weights file are not supported")
        key = str(pid[2])
        if key not in self._storages:
            self._storages[key] = _Storage(pid[1], int(pid[4]))
        return self._storages[key]


def _arrays(obj: Any) -> Any:
    if isinstance(obj, _Tensor):
        return obj.array()
    if isinstance(obj, dict):
        return {k: _arrays(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_arrays(v) for v in obj)
    return obj


def _read_legacy(f) -> Any:
    """torch's legacy format: pickles of magic number, protocol, system info, the object, the
    storage keys; then each storage as int64 element count + raw little-endian data."""
    header = [_Unpickler(f, {}).load() for _ in range(3)]
    if header[0] != _LEGACY_MAGIC or header[1] != _LEGACY_PROTOCOL:
        raise WeightsError("not a torch checkpoint (magic number or protocol differ)")
    if not header[2].get("little_endian", True):
        raise WeightsError("big-endian torch checkpoints are not supported")
    storages: dict[str, _Storage] = {}
    obj = _Unpickler(f, storages).load()
    for key in _Unpickler(f, {}).load():
        st = storages.get(str(key))
        (n,) = struct.unpack("<q", f.read(8))
        buf = f.read(n * st.dtype.itemsize) if st is not None and n == st.numel else b""
        if st is None or len(buf) != n * st.dtype.itemsize:
            raise WeightsError("the weights file is truncated or its storages do not match")
        st.data = np.frombuffer(buf, dtype=st.dtype)
    return obj


def _read_zip(path: Path) -> Any:
    """torch ≥ 1.6's format: ``<name>/data.pkl`` and one raw file per storage, ``<name>/data/<key>``."""
    with zipfile.ZipFile(path) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise WeightsError("a zip file without one data.pkl is not a torch checkpoint")
        root = pkl[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        with z.open(pkl[0]) as f:
            obj = _Unpickler(f, storages).load()
        for key, st in storages.items():
            st.data = np.frombuffer(z.read(f"{root}data/{key}"), dtype=st.dtype)
    return obj


def read_torch_checkpoint(path: Path) -> Any:
    """A ``torch.save``d checkpoint of tensors in dicts/lists (either format), tensors as numpy arrays."""
    try:
        if zipfile.is_zipfile(path):
            return _arrays(_read_zip(path))
        with open(path, "rb") as f:
            return _arrays(_read_legacy(f))
    except WeightsError as e:
        raise WeightsError(e.message, source=str(path)) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            struct.error) as e:
        raise WeightsError(f"not a readable torch checkpoint ({type(e).__name__}: {e})", source=str(path)) from e


def resemblyzer_weights_path() -> Path:
    """``pretrained.pt`` of the installed resemblyzer package, found without importing it."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError("speaker embeddings need resemblyzer's weights: pip install resemblyzer")
    path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    if not path.is_file():
        raise ModelMissingError(f"resemblyzer's weights are missing ({path}): pip install --force-reinstall resemblyzer")
    return path


# ---------------------------------------------------------------------------------------------
# the encoder

class VoiceEncoder:
    """``resemblyzer.VoiceEncoder`` in numpy: ``encoder(mels)`` with mels (batch, frames, 40)
    float32 gives the (batch, 256) L2-normalised embeddings."""

    hidden = 256
    batch = 64  # windows per LSTM pass: bounds the (frames × batch × 1024) gate inputs (~31 MiB)

    def __init__(self, state: dict[str, np.ndarray], source: str = "") -> None:
        self.source = source
        h = self.hidden
        # PyTorch's gate rows are i, f, g, o; as i, f, o, g the three sigmoid gates are one slice.
        # sigmoid(z) = (tanh(z / 2) + 1) / 2: the i, f, o rows are halved here (exact in floating
        # point), so one tanh over all four gates serves both nonlinearities.
        order = np.r_[0:2 * h, 3 * h:4 * h, 2 * h:3 * h]
        scale = np.r_[np.full(3 * h, 0.5), np.ones(h)].astype(np.float32)[:, None]
        self._layers = []
        try:
            for k in range(3):
                w_ih = state[f"lstm.weight_ih_l{k}"][order] * scale
                w_hh = state[f"lstm.weight_hh_l{k}"][order] * scale
                bias = (state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"])[order] * scale[:, 0]
                self._layers.append((np.ascontiguousarray(w_ih.T, dtype=np.float32),
                                     np.ascontiguousarray(w_hh.T, dtype=np.float32), bias.astype(np.float32)))
            self._linear_w = np.ascontiguousarray(state["linear.weight"].T, dtype=np.float32)
            self._linear_b = state["linear.bias"].astype(np.float32)
        except KeyError as e:
            raise WeightsError(f"{source or 'the weights'}: no {e} (not resemblyzer's voice encoder)") from None
        if self._layers[0][0].shape != (N_MELS, 4 * h) or self._linear_w.shape != (h, h):
            raise WeightsError(f"{source or 'the weights'}: unexpected shapes (not resemblyzer's voice encoder)")

    @classmethod
    def resemblyzer(cls) -> "VoiceEncoder":
        path = resemblyzer_weights_path()
        ckpt = read_torch_checkpoint(path)
        if not isinstance(ckpt, dict) or "model_state" not in ckpt:
            raise WeightsError(f"{path}: no model_state (not resemblyzer's voice encoder)")
        return cls(ckpt["model_state"], str(path))

    def __call__(self, mels: np.ndarray) -> np.ndarray:
        mels = np.asarray(mels, dtype=np.float32)
        last = np.empty((len(mels), self.hidden), dtype=np.float32)
        for a in range(0, len(mels), self.batch):
            last[a:a + self.batch] = self._lstm(mels[a:a + self.batch])
        emb = last @ self._linear_w
        emb += self._linear_b
        np.maximum(emb, 0, out=emb)
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

    def _lstm(self, x: np.ndarray) -> np.ndarray:
        """The last layer's final hidden state (batch, 256) of the 3-layer LSTM over x (batch, T, 40)."""
        h4 = 4 * self.hidden
        b, t_len, _ = x.shape
        seq = np.ascontiguousarray(x.transpose(1, 0, 2))  # time-major: each step reads a contiguous block
        h = np.zeros((b, self.hidden), dtype=np.float32)
        for k, (w_ih, w_hh, bias) in enumerate(self._layers):
            # the input's share of every gate, for all steps at once: one GEMM per layer
            xin = (seq.reshape(t_len * b, -1) @ w_ih).reshape(t_len, b, h4)
            xin += bias
            last_layer = k == len(self._layers) - 1
            out = None if last_layer else np.empty((t_len, b, self.hidden), dtype=np.float32)
            h = np.zeros((b, self.hidden), dtype=np.float32)
            c = np.zeros((b, self.hidden), dtype=np.float32)
            gates = np.empty((b, h4), dtype=np.float32)
            ig = np.empty((b, self.hidden), dtype=np.float32)
            n = self.hidden
            for t in range(t_len):
                np.matmul(h, w_hh, out=gates)
                gates += xin[t]
                np.tanh(gates, out=gates)
                sig = gates[:, :3 * n]
                sig *= 0.5
                sig += 0.5
                c *= gates[:, n:2 * n]                                  # f * c
                np.multiply(gates[:, :n], gates[:, 3 * n:], out=ig)     # i * g
                c += ig
                h = h if out is None else out[t]
                np.tanh(c, out=h)
                h *= gates[:, 2 * n:3 * n]                              # o * tanh(c)
            if out is not None:
                seq = out
        return h


# ---------------------------------------------------------------------------------------------
# features

def normalize_volume(wav: np.ndarray, target_dbfs: float = -30) -> np.ndarray:
    """``resemblyzer.audio.normalize_volume(wav, target_dbfs, increase_only=True)``; silence is
    returned as it is (resemblyzer would turn it into NaN)."""
    rms = np.sqrt(np.mean((wav * INT16_MAX) ** 2))
    if not rms > 0:
        return wav
    change = target_dbfs - 20 * np.log10(rms / INT16_MAX)
    return wav if change < 0 else wav * (10 ** (change / 20))


_F_SP = 200.0 / 3                # Slaney's mel scale (librosa, htk=False): linear below 1 kHz,
_MIN_LOG_MEL = 1000.0 / _F_SP    # logarithmic above; the constants as librosa writes them
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(f: float) -> float:
    return _MIN_LOG_MEL + np.log(f / 1000.0) / _LOGSTEP if f >= 1000.0 else f / _F_SP


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    hz = _F_SP * m
    log_part = m >= _MIN_LOG_MEL
    hz[log_part] = 1000.0 * np.exp(_LOGSTEP * (m[log_part] - _MIN_LOG_MEL))
    return hz


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """(40, 201) float32: ``librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)`` (Slaney
    scale and area normalisation), by the same formula."""
    fft_freqs = np.fft.rfftfreq(N_FFT, 1.0 / SR)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SR / 2), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((N_MELS, len(fft_freqs)), dtype=np.float32)
    for i in range(N_MELS):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2:N_MELS + 2] - mel_f[:N_MELS]))[:, None]
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    # scipy.signal.get_window("hann", 400) (periodic), computed as scipy does
    fac = np.linspace(-np.pi, np.pi, N_FFT + 1)[:N_FFT]
    return 0.5 + 0.5 * np.cos(fac)


def mel_spectrogram(wav: np.ndarray, block: int = 2048) -> np.ndarray:
    """(frames, 40) float32 power mel spectrogram = ``resemblyzer.audio.wav_to_mel_spectrogram``:
    frame i centred on sample 160·i (zero padding at the ends), 1 + len // 160 frames. Computed in
    blocks of frames so a long call never holds all its windowed frames at once."""
    y = np.pad(np.asarray(wav, dtype=np.float32), N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP]
    basis_t = mel_filters().T
    out = np.empty((len(frames), N_MELS), dtype=np.float32)
    for a in range(0, len(frames), block):
        # as librosa: float64 FFT of the windowed frames, stored as complex64, |.|² in float32
        spec = np.fft.rfft(frames[a:a + block] * _window(), axis=-1).astype(np.complex64)
        power = np.abs(spec) ** 2
        np.matmul(power, basis_t, out=out[a:a + block])
    return out
