"""The registry's breadth, derived from transformers itself.

Every model type that one of transformers' Auto mappings (``MODEL_FOR_*_MAPPING_NAMES``) knows is
a registry entry; its tasks and head classes come from those mappings, its category from the
highest-ranked task family it has. Deriving needs transformers (~2 s to import), so the result is
snapshotted into ``auto_mappings.json`` (generated, committed): loading the registry stays cheap,
and ``drift()`` compares the snapshot with the installed transformers so an upgrade names every
type or head the registry does not account for.

    python -m ipfs_accelerate.registry.derive            # rewrite the snapshot
    python -m ipfs_accelerate.registry.derive --check    # exit 1 naming what drifted
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

SNAPSHOT = "auto_mappings.json"

# Auto mapping (MODEL_FOR_<key>_MAPPING_NAMES; "" is MODEL_MAPPING_NAMES) -> (task, category).
# A category of None means "the type's other tasks decide". Order = rank: a type's category is
# that of its first mapping here, and its default task the first one that has a skill.
MAPPINGS: dict[str, tuple[str, str | None]] = {
    "IMAGE_TEXT_TO_TEXT": ("image-text-to-text", "multimodal"),
    "MULTIMODAL_LM": ("multimodal-lm", "multimodal"),
    "VISION_2_SEQ": ("image-to-text", "multimodal"),
    "ZERO_SHOT_IMAGE_CLASSIFICATION": ("zero-shot-image-classification", "multimodal"),
    "ZERO_SHOT_OBJECT_DETECTION": ("zero-shot-object-detection", "multimodal"),
    "VISUAL_QUESTION_ANSWERING": ("visual-question-answering", "multimodal"),
    "DOCUMENT_QUESTION_ANSWERING": ("document-question-answering", "multimodal"),
    "RETRIEVAL": ("retrieval", "multimodal"),
    "TIME_SERIES_PREDICTION": ("time-series-forecasting", "specialized"),
    "TIME_SERIES_CLASSIFICATION": ("time-series-classification", "specialized"),
    "TIME_SERIES_REGRESSION": ("time-series-regression", "specialized"),
    "DECISION": ("decision-transformer", "specialized"),
    "TABLE_QUESTION_ANSWERING": ("table-question-answering", "specialized"),
    "CTC": ("automatic-speech-recognition", "audio"),
    "SPEECH_SEQ_2_SEQ": ("speech-seq2seq", "audio"),
    "RNNT": ("speech-rnnt", "audio"),
    "TDT": ("speech-tdt", "audio"),
    "AUDIO_CLASSIFICATION": ("audio-classification", "audio"),
    "AUDIO_FRAME_CLASSIFICATION": ("audio-frame-classification", "audio"),
    "AUDIO_XVECTOR": ("audio-xvector", "audio"),
    "TEXT_TO_SPECTROGRAM": ("text-to-spectrogram", "audio"),
    "TEXT_TO_WAVEFORM": ("text-to-audio", "audio"),
    "IMAGE_CLASSIFICATION": ("image-classification", "vision"),
    "OBJECT_DETECTION": ("object-detection", "vision"),
    "SEMANTIC_SEGMENTATION": ("semantic-segmentation", "vision"),
    "UNIVERSAL_SEGMENTATION": ("universal-segmentation", "vision"),
    "INSTANCE_SEGMENTATION": ("instance-segmentation", "vision"),
    "IMAGE_SEGMENTATION": ("image-segmentation", "vision"),
    "MASK_GENERATION": ("mask-generation", "vision"),
    "DEPTH_ESTIMATION": ("depth-estimation", "vision"),
    "NORMAL_ESTIMATION": ("normal-estimation", "vision"),
    "POINTMAP_ESTIMATION": ("pointmap-estimation", "vision"),
    "KEYPOINT_DETECTION": ("keypoint-detection", "vision"),
    "KEYPOINT_MATCHING": ("keypoint-matching", "vision"),
    "POSE_ESTIMATION": ("pose-estimation", "vision"),
    "IMAGE_MATTING": ("image-matting", "vision"),
    "IMAGE_TO_IMAGE": ("image-to-image", "vision"),
    "VIDEO_CLASSIFICATION": ("video-classification", "vision"),
    "MASKED_IMAGE_MODELING": ("masked-image-modeling", "vision"),
    "CAUSAL_IMAGE_MODELING": ("causal-image-modeling", "vision"),
    "TABLE_RECOGNITION": ("table-recognition", "vision"),
    "TEXT_RECOGNITION": ("text-recognition", "vision"),
    "BACKBONE": ("backbone", "vision"),
    "IMAGE": ("image-feature-extraction", "vision"),
    "CAUSAL_LM": ("text-generation", "language"),
    "MASKED_LM": ("fill-mask", "language"),
    "SEQ_TO_SEQ_CAUSAL_LM": ("text2text-generation", "language"),
    "SEQUENCE_CLASSIFICATION": ("text-classification", "language"),
    "TOKEN_CLASSIFICATION": ("token-classification", "language"),
    "QUESTION_ANSWERING": ("question-answering", "language"),
    "MULTIPLE_CHOICE": ("multiple-choice", "language"),
    "NEXT_SENTENCE_PREDICTION": ("next-sentence-prediction", "language"),
    "TEXT_ENCODING": ("text-encoding", "language"),
    "PRETRAINING": ("pretraining", None),
    "": ("feature-extraction", None),
}


def _mapping_attr(key: str) -> str:
    return f"MODEL_FOR_{key}_MAPPING_NAMES" if key else "MODEL_MAPPING_NAMES"


_AUDIO_INPUTS = ("input_values", "input_features", "audio_mel")
_VISION_INPUTS = ("pixel_values", "pixel_values_videos")


def _category_from_forward(heads: dict[str, list[str]]) -> str | None:
    """A base model whose forward takes no token ids is fed by what it does take: audio
    (waveform / mel features) or vision (pixels); a text skill could never feed it."""
    import inspect

    import transformers

    try:
        cls = getattr(transformers, next(iter(heads.values()))[0], None)
        params = inspect.signature(cls.forward).parameters if cls is not None else {}
    except (TypeError, ValueError, ImportError):  # ImportError: a class behind a missing optional backend
        return None
    if "input_ids" in params:
        return None
    if any(p in params for p in _AUDIO_INPUTS):
        return "audio"
    if any(p in params for p in _VISION_INPUTS):
        return "vision"
    return None


def _category_from_config(model_type: str) -> str:
    """Types that only have a base model: guess the family from what their config holds."""
    from transformers import CONFIG_MAPPING

    try:
        fields = CONFIG_MAPPING[model_type]().to_dict()
    except Exception:  # noqa: BLE001 - a config that cannot default-construct is data, not a crash
        return "language"
    if any(k in fields for k in ("vision_config", "image_token_id", "image_token_index")) and any(
        k in fields for k in ("text_config", "vocab_size")
    ):
        return "multimodal"
    if any(k in fields for k in ("prediction_length", "context_length")):
        return "specialized"
    if any(k in fields for k in ("num_mel_bins", "conv_dim", "sampling_rate", "feature_size")):
        return "audio"
    if any(k in fields for k in ("image_size", "num_channels", "patch_size")):
        return "vision"
    return "language"


def derive() -> dict[str, Any]:
    """The installed transformers' view: {version, types: {type: {category, heads: {task: [class]}}}}."""
    import transformers
    from transformers.models.auto import modeling_auto

    known = {n for n in dir(modeling_auto) if n.startswith("MODEL") and n.endswith("_MAPPING_NAMES")}
    unmapped = sorted(known - {_mapping_attr(k) for k in MAPPINGS})
    types: dict[str, dict[str, Any]] = {}
    for key, (task, _) in MAPPINGS.items():
        for model_type, head in getattr(modeling_auto, _mapping_attr(key), {}).items():
            heads = [head] if isinstance(head, str) else list(head)
            types.setdefault(model_type, {"heads": {}})["heads"][task] = heads
    rank = {task: (i, cat) for i, (task, cat) in enumerate(MAPPINGS.values())}
    for model_type, entry in types.items():
        cats = sorted((rank[t][0], rank[t][1]) for t in entry["heads"] if rank[t][1])
        entry["category"] = cats[0][1] if cats else (_category_from_forward(entry["heads"]) or _category_from_config(model_type))
        entry["heads"] = dict(sorted(entry["heads"].items(), key=lambda kv: rank[kv[0]][0]))
    return {
        "generated": "by `python -m ipfs_accelerate.registry.derive` from transformers' Auto mappings; do not edit",
        "transformers": transformers.__version__,
        "unmapped_auto_tables": unmapped,
        "types": dict(sorted(types.items())),
    }


def snapshot_path() -> Path:
    return Path(str(resources.files(__package__).joinpath(SNAPSHOT)))


def load_snapshot() -> dict[str, Any]:
    return json.loads(snapshot_path().read_text(encoding="utf-8"))


def drift(snapshot: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """What the installed transformers has that the registry snapshot does not account for (and
    what the snapshot has that transformers dropped): one line per type or (type, task) head."""
    lines = []
    have, now = snapshot["types"], live["types"]
    for t in sorted(set(now) - set(have)):
        lines.append(f"new model type {t!r} ({now[t]['category']}; tasks {', '.join(now[t]['heads'])}) is not in the registry")
    for t in sorted(set(have) - set(now)):
        lines.append(f"model type {t!r} is in the registry but transformers {live['transformers']} no longer maps it")
    for t in sorted(set(have) & set(now)):
        for task, heads in now[t]["heads"].items():
            old = have[t]["heads"].get(task)
            if old != heads:
                what = "new head" if old is None else f"changed head (was {', '.join(old)})"
                lines.append(f"{what} for {t!r}: {task} -> {', '.join(heads)}")
        for task in sorted(set(have[t]["heads"]) - set(now[t]["heads"])):
            lines.append(f"head {t!r} {task} is in the registry but no longer in transformers")
    for table in sorted(set(live.get("unmapped_auto_tables", [])) - set(snapshot.get("unmapped_auto_tables", []))):
        lines.append(f"new Auto mapping {table} has no task in registry.derive.MAPPINGS")
    return lines


def configure(parser: argparse.ArgumentParser) -> None:
    """`ipfs-accelerate registry-drift [--write]`: the drift check as a CLI subcommand."""
    parser.add_argument("--check", action="store_true", default=True, help=argparse.SUPPRESS)
    parser.add_argument("--write", dest="check", action="store_false", help="rewrite the snapshot instead of checking it")


def _entry(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ipfs_accelerate.registry.derive", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming every type/head not accounted for")
    return main(parser.parse_args(argv))


def main(args: argparse.Namespace) -> int:
    live = derive()
    if args.check:
        lines = drift(load_snapshot(), live)
        for line in lines:
            print(f"drift: {line}")
        print(f"drift: {len(lines)} difference(s) against transformers {live['transformers']}" if lines else f"drift: none ({len(live['types'])} types)")
        return 1 if lines else 0
    from ..results._io import write_atomic

    write_atomic(snapshot_path(), json.dumps(live, indent=1, sort_keys=False) + "\n")
    print(f"wrote {snapshot_path().name}: {len(live['types'])} types")
    return 0


if __name__ == "__main__":
    sys.exit(_entry())
