"""Deterministic, offline inputs: a tiny trained tokenizer, synthetic images and audio.

Nothing here downloads anything. The tokenizer is trained once per process with `tokenizers`
(byte-level BPE, ~0.1 s) on an embedded corpus, so ids are identical on every machine.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "<mask>", "<sep>", "<cls>"]
PAD, BOS, EOS, UNK, MASK, SEP, CLS = range(len(SPECIAL_TOKENS))
TOKENIZER_VOCAB = 512

CORPUS = [
    "The quick brown fox jumps over the lazy dog while the farmer watches from the porch.",
    "A tiny random model still has to compute the right numbers on every backend we ship.",
    "Hardware acceleration matters when an inference service answers thousands of requests.",
    "The compiler lowers each operator to a kernel that runs on the target device quickly.",
    "She bought fresh bread, ripe tomatoes and a bottle of olive oil at the market today.",
    "Transformers use attention to mix information across every position of a sequence.",
    "Weather forecasts predict rain in the northern valleys and sunshine along the coast.",
    "Engineers measure latency, throughput and memory before they promise anything to users.",
    "The orchestra played a quiet piece while snow fell softly on the old city square.",
    "Numbers must match within a tolerance, and identical inputs must give identical outputs.",
    "Cats sleep most of the day, but at night they explore every corner of the house.",
    "A parallel runner executes tests in isolated workers and reports what passed or broke.",
] * 4

# Fixed prompts used by the skills; each tokenizes to more than 16 tokens, so fixed-length inputs
# never need padding and batch rows can be compared with single runs exactly.
TEXTS = [
    "The quick brown fox jumps over the lazy dog while the farmer watches from the porch today.",
    "Engineers measure latency, throughput and memory before they promise anything to users.",
    "She bought fresh bread, ripe tomatoes and a bottle of olive oil at the market this morning.",
    "Weather forecasts predict rain in the northern valleys and sunshine along the coast again.",
]


@lru_cache(maxsize=1)
def tokenizer():
    """A `PreTrainedTokenizerFast` with byte-level BPE and ids 0..6 reserved for special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        mask_token="<mask>",
        sep_token="<sep>",
        cls_token="<cls>",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def token_ids(batch: int, length: int, *, offset: int = 0, tok=None) -> np.ndarray:
    """`batch` rows of exactly `length` real token ids (no padding), from the fixed prompts."""
    tok = tok or tokenizer()
    rows = []
    for i in range(batch):
        ids = tok(TEXTS[(i + offset) % len(TEXTS)])["input_ids"]
        if len(ids) < length:
            raise ValueError(f"prompt too short for length {length}")
        rows.append(ids[:length])
    return np.asarray(rows, dtype=np.int64)


def image(size: int | tuple[int, int], index: int = 0, channels: int = 3) -> np.ndarray:
    """A deterministic HxWxC uint8 image: gradients plus seeded noise (index varies the content)."""
    h, w = (size, size) if isinstance(size, int) else size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(1234 + index)
    planes = []
    for c in range(channels):
        phase = (index + 1) * (c + 1)
        plane = 127 + 60 * np.sin(xx / (3 + c) + phase) + 60 * np.cos(yy / (4 + index) - c)
        planes.append(plane + rng.normal(0, 8, size=(h, w)))
    return np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)


def waveform(samples: int, index: int = 0, rate: int = 16000) -> np.ndarray:
    """A deterministic float32 mono signal: a chirp plus a tone plus seeded noise."""
    t = np.arange(samples, dtype=np.float64) / rate
    rng = np.random.default_rng(99 + index)
    f0 = 220.0 * (index + 1)
    sig = 0.5 * np.sin(2 * np.pi * (f0 + 400 * t) * t) + 0.2 * np.sin(2 * np.pi * 3 * f0 * t)
    return (sig + rng.normal(0, 0.02, samples)).astype(np.float32)
