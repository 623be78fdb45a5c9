"""Audio tasks: speech recognition (CTC and encoder-decoder), audio classification, audio
encoders, and neural codecs.

Inputs come from the model family's real feature extractor, built locally with tiny settings,
applied to `assets.waveform` (row i of a batch is waveform i, so batch rows can be checked
against single runs). The registry picks the extractor with ``inputs.features`` and the clip
length with ``inputs.samples``.

- CTC recognition is one forward; its greedy path (argmax per frame) is returned as tokens, so
  backends must agree on the transcription ids exactly, not just on logits within tolerance.
- Encoder-decoder recognition (Whisper, Speech2Text, Moonshine) is a greedy loop of full
  forwards with `skills.generation`'s logits rules, i.e. `generate(max_new_tokens=N,
  min_new_tokens=N)` (EOS masked, fixed length); no KV cache, so any backend with a dynamic
  decoder length runs the same loop. The tests check the tokens equal `model.generate`'s.
- Codecs (EnCodec, Mimi, DAC) run their forward, which is encode -> quantize to integer codes ->
  decode; the codes must match exactly and the reconstruction must cover the input clip.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from ..hardware.backends import Arrays, Prepared
from ..harness import assets
from ..registry import TaskSpec
from .base import Outputs, Skill, accepted
from .generation import LogitsRules

RATE = 16000


def _waves(batch: int, samples: int) -> list[np.ndarray]:
    return [assets.waveform(samples, i, rate=RATE) for i in range(batch)]


def _wav2vec2(built: Any, task: TaskSpec, batch: int) -> Arrays:
    """Raw 16 kHz waveform, zero-mean/unit-variance per clip (wav2vec2/HuBERT/WavLM/SEW...)."""
    from transformers import Wav2Vec2FeatureExtractor

    normalize = bool(task.inputs.get("normalize", True))
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=RATE, do_normalize=normalize)
    samples = int(task.inputs.get("samples", 1600))
    return dict(fe(_waves(batch, samples), sampling_rate=RATE, return_tensors="np"))


def _whisper(built: Any, task: TaskSpec, batch: int) -> Arrays:
    """Log-mel features; the window is 2 x max_source_positions frames, which Whisper requires."""
    from transformers import WhisperFeatureExtractor

    cfg = built.config
    frames = 2 * cfg.max_source_positions
    fe = WhisperFeatureExtractor(feature_size=cfg.num_mel_bins, sampling_rate=RATE, hop_length=160)
    fe.n_samples = frames * fe.hop_length
    fe.nb_max_frames = frames
    samples = int(task.inputs.get("samples", fe.n_samples))
    return dict(fe(_waves(batch, samples), sampling_rate=RATE, return_tensors="np"))


def _speech_to_text(built: Any, task: TaskSpec, batch: int) -> Arrays:
    """Kaldi-style filter banks with utterance mean/variance normalisation (numpy path)."""
    from transformers import Speech2TextFeatureExtractor

    bins = built.config.input_feat_per_channel
    fe = Speech2TextFeatureExtractor(feature_size=bins, num_mel_bins=bins, sampling_rate=RATE)
    samples = int(task.inputs.get("samples", 8000))
    out = fe(_waves(batch, samples), sampling_rate=RATE, return_tensors="np", return_attention_mask=True)
    return {"input_features": out["input_features"], "attention_mask": out["attention_mask"].astype(np.int64)}


def _ast(built: Any, task: TaskSpec, batch: int) -> Arrays:
    """Kaldi-style filter banks padded/truncated to the model's max_length frames."""
    from transformers import ASTFeatureExtractor

    cfg = built.config
    fe = ASTFeatureExtractor(num_mel_bins=cfg.num_mel_bins, max_length=cfg.max_length, sampling_rate=RATE)
    samples = int(task.inputs.get("samples", 4000))
    return dict(fe(_waves(batch, samples), sampling_rate=RATE, return_tensors="np"))


def _seamless(built: Any, task: TaskSpec, batch: int) -> Arrays:
    """Stacked filter banks (2 frames per step, 160 values) as used by Wav2Vec2-BERT."""
    from transformers import SeamlessM4TFeatureExtractor

    fe = SeamlessM4TFeatureExtractor(feature_size=80, num_mel_bins=80, sampling_rate=RATE, stride=2)
    samples = int(task.inputs.get("samples", 8000))
    out = fe(_waves(batch, samples), sampling_rate=RATE, return_tensors="np", return_attention_mask=True)
    return {"input_features": out["input_features"], "attention_mask": out["attention_mask"].astype(np.int64)}


def _encodec(built: Any, task: TaskSpec, batch: int) -> Arrays:
    """(batch, channels, samples) waveform plus padding mask, at the codec's sampling rate."""
    from transformers import EncodecFeatureExtractor

    cfg = built.config
    fe = EncodecFeatureExtractor(feature_size=cfg.audio_channels, sampling_rate=cfg.sampling_rate)
    samples = int(task.inputs.get("samples", 2400))
    waves = [assets.waveform(samples, i, rate=cfg.sampling_rate) for i in range(batch)]
    if cfg.audio_channels == 2:
        waves = [np.stack([w, w[::-1]], axis=0) for w in waves]
    out = fe(waves, sampling_rate=cfg.sampling_rate, return_tensors="np")
    return {"input_values": out["input_values"], "padding_mask": out["padding_mask"].astype(np.int64)}


def _dac(built: Any, task: TaskSpec, batch: int) -> Arrays:
    """(batch, 1, samples) waveform padded to a multiple of the codec's hop length."""
    from transformers import DacFeatureExtractor

    cfg = built.config
    fe = DacFeatureExtractor(feature_size=1, sampling_rate=cfg.sampling_rate, hop_length=cfg.hop_length)
    samples = int(task.inputs.get("samples", 2048))
    waves = [assets.waveform(samples, i, rate=cfg.sampling_rate) for i in range(batch)]
    return {"input_values": fe(waves, sampling_rate=cfg.sampling_rate, return_tensors="np")["input_values"]}


_MEL_FIELDS = ("num_mel_bins", "input_feat_per_channel", "n_mels", "mel_bins", "feature_size", "input_feat_size")
_MASKS = ("attention_mask", "input_features_mask", "audio_mel_mask", "padding_mask")


def _audio_cfg(built: Any) -> Any:
    return getattr(built.config, "audio_config", None) or getattr(built.config, "encoder_config", None) or built.config


def _mel(built: Any, task: TaskSpec, batch: int) -> Arrays:
    """Log-mel features for encoders that take ``input_features`` (or Gemma-3n's ``audio_mel``)
    but name no feature extractor: Whisper's (the common front end of these families) with the
    config's mel bins, over 2 x max_source_positions frames where the encoder fixes its length,
    else 200 (a multiple of the usual 2/4/8x subsampling and of Qwen3-ASR's 100-frame windows)."""
    from transformers import WhisperFeatureExtractor

    cfg = _audio_cfg(built)
    bins = next((int(v) for f in _MEL_FIELDS if isinstance(v := getattr(cfg, f, None), int) and v > 1), None)
    bins = int(task.inputs.get("mel_bins", bins or 80))  # a config that names no mel width: its extractor's
    frames = 2 * int(getattr(cfg, "max_source_positions", 0) or 0) or int(task.inputs.get("frames", 200))
    fe = WhisperFeatureExtractor(feature_size=bins, sampling_rate=RATE, hop_length=160)
    fe.n_samples = frames * fe.hop_length
    fe.nb_max_frames = frames
    feats = fe(_waves(batch, fe.n_samples), sampling_rate=RATE, return_tensors="np")["input_features"]
    stack = getattr(cfg, "num_stacked_frames", None)
    if isinstance(stack, int) and stack > 1:
        # low-frame-rate encoders (Fun-ASR) read `stack` consecutive frames as one feature vector
        steps = feats.shape[-1] // stack
        frames = np.swapaxes(feats[..., : steps * stack], 1, 2).reshape(batch, steps, stack * bins)
        feats = np.ascontiguousarray(np.swapaxes(frames, 1, 2))
    return {"input_features": feats.astype(np.float32)}


def _by_signature(built: Any, task: TaskSpec, batch: int, cand: Arrays) -> Arrays:
    """Fill what the forward *requires* that the named recipe did not make (a type derived from
    the Auto mappings has no hand-picked recipe): log-mel ``input_features`` / ``audio_mel``,
    a raw ``input_values`` waveform, and required masks (all frames valid). The layout
    (features by time or time by features; codecs' channel axis) is the one the model accepts
    on one clip, found once per build."""
    import inspect

    params = inspect.signature(built.model.forward).parameters
    required = [n for n, p in params.items() if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    out = dict(cand)
    fed = any(n in out for n in ("input_values", "input_features", "audio_mel"))
    # (an optional input_features of a text-driven model is a conditioning prompt: see _text)
    wants_mel = any(n in required for n in ("input_features", "audio_mel")) or (
        not fed and "input_features" in params and "input_ids" not in params
    )
    if wants_mel and "input_features" not in out:  # (an optional input_features: "exactly one of features or embeds")
        out.update(_mel(built, task, batch))
    if "input_values" in required and "input_values" not in out:
        out.update(_wav2vec2(built, task, batch))
    if "audio_mel" in required:
        out["audio_mel"] = out.pop("input_features")
    if set(out) == set(cand) and not any(n in required for n in ("input_values", "input_features")):
        return cand  # the named recipe feeds what the forward needs, in the only layout it has
    out.update(_text(built, task, batch))  # a text-audio pair model (PE Audio) runs the probe with its text
    key = "audio-layout"
    if key not in built.extras:
        try:
            built.extras[key] = _probe_layout(built, out, required)
        except (RuntimeError, ValueError, IndexError):
            if "input_values" not in out:
                raise
            # a codec whose strided convs outgrow the clip (VibeVoice hops 1600 samples): 4x longer
            built.extras["audio-samples"] = 4 * int(task.inputs.get("samples", 1600))
            out["input_values"] = _longer(built, task, 1)
            built.extras[key] = _probe_layout(built, out, required)
    if "audio-samples" in built.extras and "input_values" in out:
        out["input_values"] = _longer(built, task, batch)
    out = _layout(out, built.extras[key])
    frames = {k: v.shape[-2] if built.extras[key] == "time-major" and k != "input_values" else v.shape[-1]
              for k, v in out.items() if k in ("input_features", "audio_mel", "input_values")}
    steps = frames.get("input_features", frames.get("audio_mel", frames.get("input_values", 0)))
    for mask in _MASKS:
        if mask in required or (mask == "input_features_mask" and mask in params):  # Gemma-3n's mel mask marks padding (True = masked): none here
            out[mask] = np.zeros((batch, steps), dtype=bool) if mask == "audio_mel_mask" else np.ones((batch, steps), dtype=np.int64)
    width = getattr(built.config, "model_in_channels", None)
    if "noise_sequence" in params and isinstance(width, int) and "input_features" in out:
        # UnivNet draws its excitation noise unseeded when none is given: a fixed one per clip
        frames_t = out["input_features"].shape[1]
        out["noise_sequence"] = np.stack(
            [np.random.default_rng(700 + i).normal(0, 1, (frames_t, width)) for i in range(batch)]
        ).astype(np.float32)
    return out


_LATENT_NAMES = ("latents", "hidden_states")  # what codec halves / vocoders name their input
_LATENT_WIDTHS = ("latent_dim", "vae_dim", "hidden_size", "codebook_dim")
_AUDIO_WIDTHS = ("audio_channels", "channels")


def _latent_rows(width: int, steps: int, batch: int, audio: bool) -> np.ndarray:
    """(batch, width, steps): waveforms for an audio-width input, else seeded N(0, 1) latents."""
    if audio:
        rows = [np.stack([assets.waveform(steps, i + c, rate=RATE) for c in range(width)]) for i in range(batch)]
    else:
        rows = [np.random.default_rng(800 + i).standard_normal((width, steps)) for i in range(batch)]
    return np.stack(rows).astype(np.float32)


def _latents(built: Any, task: TaskSpec, batch: int, fed: Arrays) -> Arrays:
    """A codec half fed what the other half makes (Mimi's / PocketTTS' decoders take continuous
    ``latents``, VibeVoice's tokenizer halves take ``hidden_states``: latents, or the waveform for
    its encoder). Which width (a latent width of the config, or its audio channels, then a clip of
    ``inputs.samples`` or 4x that), and channels-first or time-major, is what one row runs
    with, found once per build."""
    import inspect

    import torch

    params = inspect.signature(built.model.forward).parameters
    names = [n for n, p in params.items() if n in _LATENT_NAMES and p.default is p.empty and n not in fed]
    if not names:
        return {}
    name, key = names[0], "latent-shape"
    if key not in built.extras:
        cfg = built.config
        widths = [(int(v), False) for f in _LATENT_WIDTHS if isinstance(v := getattr(cfg, f, None), int) and v > 0]
        widths += [(int(v), True) for f in _AUDIO_WIDTHS if isinstance(v := getattr(cfg, f, None), int) and v > 0]
        samples = int(task.inputs.get("samples", 1600))
        tries = [(w, a, steps, layout) for w, a in dict.fromkeys(widths)
                 for steps in ((samples, 4 * samples) if a else (int(task.inputs.get("frames", 8)),))
                 for layout in ("channels", "time-major")]
        errors: list[Exception] = []
        for width, audio, steps, layout in tries:
            row = _latent_rows(width, steps, 1, audio)
            row = np.swapaxes(row, 1, 2) if layout == "time-major" else row
            try:
                with torch.no_grad():
                    built.model(**{name: torch.from_numpy(np.ascontiguousarray(row))})
            except (RuntimeError, ValueError, IndexError) as exc:
                errors.append(exc)
                continue
            built.extras[key] = (width, audio, steps, layout)
            break
        else:
            raise errors[0] if errors else ValueError(f"{name}: no latent width in the config")
    width, audio, steps, layout = built.extras[key]
    arr = _latent_rows(width, steps, batch, audio)
    return {name: np.ascontiguousarray(np.swapaxes(arr, 1, 2) if layout == "time-major" else arr)}


def _text(built: Any, task: TaskSpec, batch: int) -> Arrays:
    """Token ids for the audio models a text drives (TTS: VITS, FastSpeech2, CSM, Dia; text-
    conditioned music: MusicGen): fixed prompts cut to ``inputs.seq_len`` tokens (no padding,
    so batch rows equal single runs), as the text skill makes them."""
    import inspect

    if "input_ids" not in inspect.signature(built.model.forward).parameters:
        return {}
    ids = assets.token_ids(batch, int(task.inputs.get("seq_len", 16)), tok=built.tokenizer)
    vocab = getattr(getattr(built.config, "text_config", None) or built.config, "vocab_size", None)
    if isinstance(vocab, int) and 0 < vocab <= int(ids.max()):
        ids = ids % vocab  # phoneme / character vocabularies smaller than the tokenizer's
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def _longer(built: Any, task: TaskSpec, batch: int) -> np.ndarray:
    import dataclasses

    longer = dataclasses.replace(task, inputs={**task.inputs, "samples": built.extras["audio-samples"]})
    return _wav2vec2(built, longer, batch)["input_values"]


def _layout(arrays: Arrays, layout: str) -> Arrays:
    out = dict(arrays)
    for k in ("input_features", "audio_mel"):
        if k in out and layout == "time-major":
            out[k] = np.ascontiguousarray(np.swapaxes(out[k], 1, 2))
    if "input_values" in out and layout == "channel" and out["input_values"].ndim == 2:
        out["input_values"] = out["input_values"][:, None, :]
    return out


def _probe_layout(built: Any, arrays: Arrays, required: list[str]) -> str:
    """The first layout one clip runs with: as made, time-major features, or a channel axis."""
    import inspect

    import torch

    errors: list[Exception] = []
    for layout in ("as-made", "time-major", "channel"):
        feed = _layout({k: v[:1] for k, v in arrays.items()}, layout)
        steps = next(v.shape[-2] if layout == "time-major" and k != "input_values" else v.shape[-1]
                     for k, v in feed.items() if k in ("input_features", "audio_mel", "input_values"))
        for mask in _MASKS:
            if mask in required or (mask == "input_features_mask" and mask in inspect.signature(built.model.forward).parameters):
                feed[mask] = np.zeros((1, steps), dtype=bool) if mask == "audio_mel_mask" else np.ones((1, steps), dtype=np.int64)
        try:
            with torch.no_grad():
                built.model(**{k: torch.from_numpy(v) for k, v in feed.items()})
            return layout
        except (RuntimeError, ValueError, IndexError) as exc:
            errors.append(exc)
    raise errors[0]


def _clap(built: Any, task: TaskSpec, batch: int) -> Arrays:
    """CLAP's log-mel patches (repeat-padded to its 10 s window, 48 kHz) and its is_longer flags."""
    from transformers import ClapFeatureExtractor

    bins = built.config.audio_config.num_mel_bins
    fe = ClapFeatureExtractor(feature_size=bins, truncation="rand_trunc", padding="repeatpad")
    samples = int(task.inputs.get("samples", 48000))
    waves = [assets.waveform(samples, i, rate=fe.sampling_rate) for i in range(batch)]
    out = fe(waves, sampling_rate=fe.sampling_rate, return_tensors="np")
    return {"input_features": out["input_features"].astype(np.float32), "is_longer": out["is_longer"].astype(bool)}


def _clvp(built: Any, task: TaskSpec, batch: int) -> Arrays:
    """CLVP's conditioning log-mel spectrogram (22.05 kHz, the config's mel bins)."""
    from transformers import ClvpFeatureExtractor

    bins = built.config.decoder_config.feature_size
    fe = ClvpFeatureExtractor(feature_size=bins)
    samples = int(task.inputs.get("samples", 22050))
    waves = [assets.waveform(samples, i, rate=fe.sampling_rate) for i in range(batch)]
    out = fe(waves, sampling_rate=fe.sampling_rate, return_tensors="np")
    return {"input_features": out["input_features"].astype(np.float32)}


def _mel_deltas(built: Any, task: TaskSpec, batch: int) -> Arrays:
    """Granite Speech 5's front end (its extractor needs torchaudio, absent here): Whisper's
    log-mel (the same log10 / 8 dB floor / (x / 4 + 1) scaling), each frame concatenated with its
    delta (torchaudio's compute_deltas, window 3: (x[t+1] - x[t-1]) / 2, edges replicated) and
    consecutive frame pairs stacked: (batch, frames / 2, 4 x mel bins)."""
    feats = _mel(built, task, batch)["input_features"]  # (batch, bins, frames), frames even
    padded = np.pad(feats, ((0, 0), (0, 0), (1, 1)), mode="edge")
    deltas = (padded[..., 2:] - padded[..., :-2]) / 2.0
    frames = np.swapaxes(np.concatenate([feats, deltas], axis=1), 1, 2)  # (batch, frames, 2 x bins)
    stacked = frames.reshape(batch, frames.shape[1] // 2, 2 * frames.shape[2])
    return {"input_features": np.ascontiguousarray(stacked).astype(np.float32)}


FEATURES: dict[str, Callable[[Any, TaskSpec, int], Arrays]] = {
    "clap": _clap,
    "mel_deltas": _mel_deltas,
    "clvp": _clvp,
    "wav2vec2": _wav2vec2,
    "whisper": _whisper,
    "speech_to_text": _speech_to_text,
    "ast": _ast,
    "seamless": _seamless,
    "encodec": _encodec,
    "dac": _dac,
}


def is_ctc(task: TaskSpec) -> bool:
    return task.head.endswith("ForCTC")


def is_seq2seq_asr(task: TaskSpec) -> bool:
    return task.task in ("automatic-speech-recognition", "speech-seq2seq") and not is_ctc(task)


def decoder_start(built: Any) -> int:
    start = getattr(built.config, "decoder_start_token_id", None)
    gen_cfg = getattr(built.model, "generation_config", None)
    if start is None and gen_cfg is not None:
        start = gen_cfg.decoder_start_token_id
    return assets.BOS if start is None else int(start)


_DERIVED_RECIPE = "wav2vec2"  # what a derived audio entry gets unless its override names one
_PROMPTS = ("input_values", "input_features", "audio_mel", "padding_mask", "input_features_mask", "attention_mask")


def decoder_ids(built: Any, batch: int) -> np.ndarray:
    """One decoder step from the start token: (batch, 1), or one per codebook where the decoder
    reads several parallel code streams (its sub-config's ``num_codebooks``: MusicGen, as
    (batch, codebooks, 1); ``num_channels``: Dia, as (batch, 1, channels))."""
    cfg = built.config
    dec = getattr(cfg, "decoder", None) or getattr(cfg, "decoder_config", None)
    start = decoder_start(built)
    if isinstance(k := getattr(dec, "num_codebooks", None), int):
        return np.full((batch, k, 1), start, dtype=np.int64)
    if isinstance(k := getattr(dec, "num_channels", None), int):
        return np.full((batch, 1, k), start, dtype=np.int64)
    return np.full((batch, 1), start, dtype=np.int64)


class AudioSkill(Skill):
    def new_tokens(self, task: TaskSpec) -> int:
        return int(task.inputs.get("new_tokens", 8))

    def inputs(self, built: Any, task: TaskSpec, batch: int) -> Arrays:
        name = task.inputs.get("features")
        if name not in FEATURES:
            raise KeyError(f"audio task needs inputs.features, one of {sorted(FEATURES)}; got {name!r}")
        cand = {k: np.ascontiguousarray(v) for k, v in FEATURES[name](built, task, batch).items()}
        cand = accepted(built.model, cand)
        if not is_seq2seq_asr(task) and "decoder_input_ids" in inspect.signature(built.model.forward).parameters:
            # an encoder-decoder's base model / transducer: one decoder step from the start token
            cand["decoder_input_ids"] = decoder_ids(built, batch)
        cand = _by_signature(built, task, batch, cand)
        cand.update(_latents(built, task, batch, cand))
        if text := _text(built, task, batch):
            # a text-driven model (TTS, text-to-music): the text is the input; an optional audio
            # prompt (MusicGen's continuation, CSM's context) would need its own cut-offs. A
            # text-audio pair model (CLAP) names its audio recipe and keeps it.
            params = inspect.signature(built.model.forward).parameters
            if name == _DERIVED_RECIPE:
                cand = {k: v for k, v in cand.items() if k not in _PROMPTS or params[k].default is params[k].empty}
            cand.update(text)
        for key, value in cand.items():
            if value.dtype == np.float64:
                cand[key] = value.astype(np.float32)
        if is_seq2seq_asr(task):
            cand["decoder_input_ids"] = np.full((batch, 1), decoder_start(built), dtype=np.int64)
            # an explicit all-ones decoder mask keeps transformers' packed-sequence detection
            # (torch.diff, no TorchScript rule in OpenVINO) out of the traced graph; same outputs
            cand["decoder_attention_mask"] = np.ones((batch, 1), dtype=np.int64)
        return accepted(built.model, cand)

    def example(self, built: Any, task: TaskSpec) -> Arrays:
        """Trace with a decoder longer than one token, or length-1 shortcuts get baked in."""
        ex = self.inputs(built, task, 2)
        if "decoder_input_ids" in ex:
            ex["decoder_input_ids"] = np.concatenate([ex["decoder_input_ids"], ex["decoder_input_ids"] + 3], axis=1)
            if "decoder_attention_mask" in ex:
                ex["decoder_attention_mask"] = np.ones_like(ex["decoder_input_ids"])
        return ex

    def run(self, prepared: Prepared, inputs: Arrays, built: Any, task: TaskSpec) -> Outputs:
        if "decoder_input_ids" in inputs and is_seq2seq_asr(task):
            return self._greedy(prepared, inputs, built, task)
        out = prepared(inputs)
        codes = out.get("audio_codes")
        if codes is not None and codes.ndim == 4 and codes.shape[1] == inputs["input_values"].shape[0]:
            # EnCodec returns (chunks, batch, quantizers, frames): put batch first so rows compare
            out["audio_codes"] = np.ascontiguousarray(np.moveaxis(codes, 1, 0))
        states = out.get("last_hidden_state")
        batch = next(iter(inputs.values())).shape[0]
        if states is not None and states.ndim == 2 and states.shape[0] % batch == 0 and "input_features" in inputs:
            # packed encoders (Qwen3-ASR) concatenate every clip's frames; the clips here are all
            # the same length, so the packed rows split evenly back into (batch, frames, hidden)
            out["last_hidden_state"] = states.reshape(batch, -1, states.shape[-1])
        tokens = out["logits"].argmax(-1).astype(np.int64) if is_ctc(task) else None
        return Outputs(arrays=out, tokens=tokens)

    def _greedy(self, prepared: Prepared, inputs: Arrays, built: Any, task: TaskSpec) -> Outputs:
        rules = LogitsRules(built, inputs, self.new_tokens(task))
        feed = dict(inputs)
        first: Arrays | None = None
        steps = []
        for step in range(self.new_tokens(task)):
            out = prepared(feed)
            if first is None:
                first = out
            scores = rules(np.array(out["logits"][:, -1, :], dtype=np.float64), feed["decoder_input_ids"], step)
            nxt = scores.argmax(-1).astype(np.int64)[:, None]
            steps.append(nxt)
            feed["decoder_input_ids"] = np.concatenate([feed["decoder_input_ids"], nxt], axis=1)
            if "decoder_attention_mask" in feed:
                feed["decoder_attention_mask"] = np.ones_like(feed["decoder_input_ids"])
        assert first is not None
        return Outputs(arrays=first, tokens=np.concatenate(steps, axis=1))

    def expected(self, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> dict[str, tuple]:
        cfg = built.config
        if task.task in ("automatic-speech-recognition", "speech-seq2seq"):
            vocab = (cfg if hasattr(cfg, "vocab_size") else cfg.decoder).vocab_size  # SpeechEncoderDecoder: its decoder's
            if is_ctc(task):
                return {"logits": (batch, None, vocab), "tokens": (batch, None)}
            dec = inputs["decoder_input_ids"].shape[1]
            return {"logits": (batch, dec, vocab), "tokens": (batch, self.new_tokens(task))}
        if task.task == "audio-classification":
            return {"logits": (batch, cfg.num_labels)}
        if task.task in ("feature-extraction", "audio-feature-extraction"):
            return {"last_hidden_state": (batch, None, None)}
        return {}

    def check(self, outputs: Outputs, built: Any, task: TaskSpec, batch: int, inputs: Arrays) -> None:
        if self.check_unnamed_states(outputs, task, batch):  # vocoders / codec halves (UnivNet's waveforms)
            return
        super().check(outputs, built, task, batch, inputs)
        if task.task != "audio-codec":
            return
        codes, values = outputs.arrays.get("audio_codes"), outputs.arrays.get("audio_values")
        assert codes is not None and values is not None, f"codec outputs missing (have {sorted(outputs.arrays)})"
        assert codes.dtype.kind in "iu", f"audio_codes must be integer codes, got {codes.dtype}"
        assert codes.shape[0] == batch and values.shape[0] == batch, f"codes {codes.shape} / audio {values.shape} not batch-first"
        size = getattr(built.config, "codebook_size", None)
        assert size is None or (codes.min() >= 0 and codes.max() < size), f"codes outside [0, {size})"
        samples = inputs["input_values"].shape[-1]
        assert values.shape[-1] >= samples, f"reconstruction has {values.shape[-1]} samples, input {samples}"


SKILL = AudioSkill()
