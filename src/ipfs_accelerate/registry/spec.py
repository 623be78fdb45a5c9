"""Typed view of the model registry (`models.toml`).

A model is a row of data, not a module: its transformers ``model_type``, category, tasks (each with a
head class and an input recipe), tiny-config overrides, and per-backend known incompatibilities that
carry the reason they were observed. Nothing here imports torch, so generators stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CATEGORIES = ("language", "vision", "audio", "multimodal", "specialized")
HARDWARE = ("cpu", "cuda", "openvino")

# task (pipeline tag) -> skill family module under ipfs_accelerate.skills
TASK_SKILLS: dict[str, str] = {
    "feature-extraction": "text",
    "fill-mask": "text",
    "text-classification": "text",
    "token-classification": "text",
    "question-answering": "text",
    "multiple-choice": "text",
    "text-generation": "generation",
    "text2text-generation": "generation",
    "summarization": "generation",
    "translation": "generation",
    "image-classification": "vision",
    "image-feature-extraction": "vision",
    "object-detection": "vision",
    "image-segmentation": "vision",
    "semantic-segmentation": "vision",
    "mask-generation": "vision",
    "depth-estimation": "depth",
    "automatic-speech-recognition": "audio",
    "audio-classification": "audio",
    "audio-feature-extraction": "audio",
    "audio-codec": "audio",
    "text-to-audio": "audio",
    "zero-shot-image-classification": "multimodal",
    "image-to-text": "multimodal",
    "image-text-to-text": "multimodal",
    "visual-question-answering": "multimodal",
    "document-question-answering": "multimodal",
    "time-series-forecasting": "timeseries",
    # task families named by derive.MAPPINGS that an existing skill already feeds
    "text-encoding": "text",
    "next-sentence-prediction": "text",
    "pretraining": "text",
    "masked-image-modeling": "vision",
    "video-classification": "vision",
    "speech-seq2seq": "audio",
    "keypoint-detection": "vision",
    "keypoint-matching": "vision",
    "image-matting": "vision",
    "pose-estimation": "vision",
    "table-recognition": "vision",
    "text-recognition": "vision",
    "image-to-image": "vision",
    "backbone": "vision",
    "universal-segmentation": "vision",
    "instance-segmentation": "vision",
}
UNSUPPORTED_SKILL = "unsupported"  # tasks with no input recipe yet: run, fail, strict xfail


@dataclass(frozen=True)
class Tolerance:
    """Parity tolerance override for one backend (or ``backend:precision``), with its reason."""

    atol: float
    rtol: float
    reason: str
    min_cosine: float | None = None


@dataclass(frozen=True)
class TaskSpec:
    """How to run one task of a model: which head class, which skill, which inputs."""

    task: str
    head: str
    skill: str
    inputs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # per-task config overrides (e.g. is_decoder)
    known_incompatible: dict[str, str] = field(default_factory=dict)  # per-head, on top of the model's


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry. ``name`` is the transformers ``model_type``."""

    name: str
    category: str
    task: str
    tasks: dict[str, TaskSpec]
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    config_class: str | None = None
    shrink: bool = True
    init_std: float | None = None
    requires: tuple[str, ...] = ()
    known_incompatible: dict[str, str] = field(default_factory=dict)
    tolerances: dict[str, Tolerance] = field(default_factory=dict)
    pretrained: str | None = None
    patches: tuple[str, ...] = ()
    derived: bool = False  # True: tasks/category come from transformers' Auto mappings (derive.py)

    @property
    def default(self) -> TaskSpec:
        return self.tasks[self.task]

    def task_spec(self, task: str | None = None) -> TaskSpec:
        """Return the spec of ``task`` (default task if None); unknown task -> UnknownNameError."""
        from .errors import UnknownNameError

        task = task or self.task
        if task not in self.tasks:
            raise UnknownNameError("task", task, list(self.tasks), context=f"model {self.name!r}")
        return self.tasks[task]
