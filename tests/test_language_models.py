"""Language skills and registry entries: the greedy loop is transformers' greedy search, task
outputs have the shapes their heads imply, entries build the architecture they name, and the
language patches change nothing but convertibility."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from model_kit import tiny_build

from ipfs_accelerate import registry
from ipfs_accelerate.hardware.backends import get_backend
from ipfs_accelerate.harness import build
from ipfs_accelerate.harness.case import Case
from ipfs_accelerate.skills.base import Outputs, get_skill
from ipfs_accelerate.skills.text import MASK_POSITION

LANGUAGE = [m.name for m in registry.list_models(category="language") if not m.derived]  # hand-written tables


# ---- (1) our greedy loop == transformers' generate ---------------------------------------------


@pytest.mark.parametrize(
    ("model", "task"),
    [
        ("gpt2", None),
        ("llama", None),
        ("mamba", None),  # patched closed-form scan
        ("bert", "text-generation"),  # BertLMHeadModel with is_decoder=True
        ("t5", None),
        ("bart", None),  # forced EOS at the last step
        ("blenderbot", None),  # encoder n-gram bans
    ],
)
def test_greedy_loop_matches_generate(model: str, task: str | None) -> None:
    _, task_spec, built = tiny_build(model, task)
    skill = get_skill(task_spec.skill)
    inputs = skill.inputs(built, task_spec, 2)
    prepared = get_backend("cpu").prepare(built.model, inputs, [])
    ours = skill.run(prepared, inputs, built, task_spec).tokens
    n = skill.new_tokens(task_spec)
    assert ours is not None and ours.shape == (2, n)

    feed = {k: torch.from_numpy(v) for k, v in inputs.items() if k != "decoder_input_ids"}
    with torch.no_grad():
        ref = built.model.generate(**feed, do_sample=False, max_new_tokens=n, min_new_tokens=n)
    ref = ref.numpy()
    if "decoder_input_ids" in inputs:
        assert (ref[:, 0] == inputs["decoder_input_ids"][:, 0]).all(), "decoder start token differs"
        new = ref[:, 1:]
    else:
        new = ref[:, inputs["input_ids"].shape[1] :]
    np.testing.assert_array_equal(ours, new)
    assert len(np.unique(ours)) > 1, "degenerate generation proves little"


def test_greedy_loop_masks_eos_like_min_new_tokens() -> None:
    """Force EOS to be every step's argmax: the loop must still emit N non-EOS tokens."""
    _, task_spec, built = tiny_build("gpt2")
    skill = get_skill(task_spec.skill)
    eos = built.config.eos_token_id
    inputs = skill.inputs(built, task_spec, 1)
    cpu = get_backend("cpu").prepare(built.model, inputs, [])

    def eos_loving(feed):
        out = cpu(feed)
        out["logits"][..., eos] = 1e6
        return out

    tokens = skill.run(eos_loving, inputs, built, task_spec).tokens
    assert tokens is not None and eos not in tokens
    np.testing.assert_array_equal(tokens, skill.run(cpu, inputs, built, task_spec).tokens)


# ---- (2) task outputs have their heads' shapes -------------------------------------------------


@pytest.mark.parametrize(
    ("model", "task", "shapes"),
    [
        ("bert", "fill-mask", {"logits": (1, 16, 1000)}),
        ("roberta", "question-answering", {"start_logits": (1, 16), "end_logits": (1, 16)}),
        ("distilbert", "text-classification", {"logits": (1, 2)}),
        ("llama", "text-classification", {"logits": (1, 2)}),
        ("bart", "text-classification", {"logits": (1, 3)}),  # 3 labels (MNLI) by default; pools at EOS
        ("deberta-v2", "token-classification", {"logits": (1, 16, 2)}),
        ("t5", "feature-extraction", {"last_hidden_state": (1, 16, 32)}),  # encoder only
        ("pegasus", "feature-extraction", {"last_hidden_state": (1, 16, 32)}),  # needs decoder ids
    ],
)
def test_task_output_shapes(model: str, task: str, shapes: dict[str, tuple]) -> None:
    case = Case(model, "cpu", task=task)
    out = case.check_single()
    assert {k: out.arrays[k].shape for k in shapes} == shapes
    for name in shapes:
        assert float(np.std(out.arrays[name])) > 1e-3, f"{name} is flat"
    if task == "fill-mask":
        assert (case.single_inputs["input_ids"][:, MASK_POSITION] == case.built.tokenizer.mask_token_id).all()


def test_shape_check_can_fail() -> None:
    case = Case("bert", "cpu", task="question-answering")
    out = case.check_single()
    broken = Outputs(arrays={**out.arrays, "start_logits": out.arrays["start_logits"][:, :-1]})
    with pytest.raises(AssertionError, match="start_logits"):
        case.skill.check(broken, case.built, case.task, 1, case.single_inputs)
    with pytest.raises(AssertionError, match="missing"):
        case.skill.check(Outputs(arrays={}), case.built, case.task, 1, case.single_inputs)


def test_encoder_decoder_classification_input_ends_with_eos() -> None:
    """BART/T5 classification heads pool at EOS and raise without one."""
    for model in ("bart", "t5"):
        case = Case(model, "cpu", task="text-classification")
        ids = case.batch_inputs["input_ids"]
        assert (ids[:, -1] == case.built.config.eos_token_id).all()
        assert (case.batch_inputs["decoder_input_ids"][:, 1:] == ids[:, :-1]).all()


# ---- (3) entries name real heads and build the architecture they name ---------------------------

_AUTO = {
    "fill-mask": "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    "feature-extraction": "MODEL_MAPPING_NAMES",
    "text-classification": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "token-classification": "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
    "question-answering": "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES",
    "text-generation": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "text2text-generation": "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
}
# deliberate departures from the Auto mapping, each with its reason
_NOT_AUTO = {
    ("t5", "feature-extraction"): "T5EncoderModel",  # T5Model demands decoder inputs
    ("mt5", "feature-extraction"): "MT5EncoderModel",
}


def test_registry_heads_are_transformers_heads_for_their_type() -> None:
    from transformers.models.auto import modeling_auto

    assert len(LANGUAGE) >= 32
    spec_named = "bert t5 llama gpt2 roberta albert bart distilbert gemma mistral mixtral falcon mamba phi qwen3 opt"
    assert set(spec_named.split()) <= set(LANGUAGE)
    for name in LANGUAGE:
        spec = registry.get(name)
        for task, ts in spec.tasks.items():
            want = _NOT_AUTO.get((name, task)) or getattr(modeling_auto, _AUTO[task]).get(name)
            assert ts.head == want, f"{name} {task}: {ts.head} is not transformers' {want}"
        for task, auto in _AUTO.items():
            head = getattr(modeling_auto, auto).get(name)
            # seq2seq "fill-mask" heads are the generation head (BART denoising): covered by text2text
            if head and task not in spec.tasks and not head.endswith("ForConditionalGeneration"):
                pytest.fail(f"{name} lacks task {task} ({head}) that transformers supports")


@pytest.mark.parametrize("model", ["deberta-v2", "xlm-roberta", "gpt_neo", "mixtral", "mamba", "marian"])
def test_built_model_is_its_architecture(model: str) -> None:
    import transformers

    spec, task_spec, built = tiny_build(model)
    assert built.model.config.model_type == model
    assert type(built.model) is getattr(transformers, task_spec.head)
    assert type(built.model).__module__ == f"transformers.models.{model.replace('-', '_')}.modeling_{model.replace('-', '_')}"
    assert 0 < built.params < 2_000_000


def test_wrong_config_class_is_rejected() -> None:
    spec = dataclasses.replace(registry.get("roberta"), config_class="BertConfig")
    with pytest.raises(AssertionError, match="bert"):
        build.tiny_config(spec)


def test_per_task_config_overrides_apply_to_that_task_only() -> None:
    spec = registry.get("bert")
    assert build.tiny_config(spec, spec.task_spec("text-generation")).is_decoder is True
    assert build.tiny_config(spec, spec.task_spec("fill-mask")).is_decoder is False


def test_sinusoidal_positions_are_not_randomised() -> None:
    _, _, built = tiny_build("pegasus")
    table = built.model.model.encoder.embed_positions.weight.detach()
    half = table.shape[1] // 2
    pos = torch.arange(table.shape[0], dtype=torch.float64)[:, None]
    freq = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) * 2 / table.shape[1])
    expected = torch.cat([torch.sin(pos * freq), torch.cos(pos * freq)], dim=1).float()
    torch.testing.assert_close(table, expected, atol=1e-5, rtol=0)


# ---- patches change convertibility, not numbers ---------------------------------------------------


@pytest.mark.parametrize(("model", "lengths"), [("mamba", (1, 5, 17)), ("mixtral", (3, 11))])
def test_patch_keeps_cpu_outputs(model: str, lengths: tuple[int, ...]) -> None:
    spec = registry.get(model)
    assert spec.patches
    _, _, plain = tiny_build(model, patches=())
    _, _, patched = tiny_build(model)
    for length in lengths:
        ids = torch.randint(7, 1000, (2, length), generator=torch.Generator().manual_seed(length))
        with torch.no_grad():
            a, b = plain.model(input_ids=ids).logits, patched.model(input_ids=ids).logits
        torch.testing.assert_close(b, a, atol=2e-5, rtol=1e-5)
        assert float(a.std()) > 0.1


@pytest.mark.parametrize("seq2seq", [False, True])
def test_logits_rules_equal_transformers_processors(seq2seq: bool) -> None:
    """Every rule the greedy loop applies, step by step, against transformers' own processors,
    on sequences built to repeat n-grams (so the bans really trigger)."""
    from types import SimpleNamespace

    from transformers import GenerationConfig
    from transformers.generation import logits_process as lp

    from ipfs_accelerate.skills.generation import LogitsRules

    vocab, n_new, eos = 12, 6, 2
    gen = GenerationConfig(
        eos_token_id=eos, forced_eos_token_id=3, forced_bos_token_id=5 if seq2seq else None, no_repeat_ngram_size=2,
        encoder_no_repeat_ngram_size=2 if seq2seq else 0,
    )
    built = SimpleNamespace(model=SimpleNamespace(generation_config=gen), config=SimpleNamespace(eos_token_id=eos))
    enc = np.array([[7, 8, 7, 8, 9], [4, 4, 4, 6, 6]])
    seq = np.array([[1], [1]]) if seq2seq else np.array([[7, 8, 7], [6, 6, 4]])
    inputs = {"input_ids": enc, "decoder_input_ids": seq} if seq2seq else {"input_ids": seq}
    rules = LogitsRules(built, inputs, n_new)
    procs = [lp.NoRepeatNGramLogitsProcessor(2), lp.MinNewTokensLengthLogitsProcessor(seq.shape[1], n_new, eos)]
    if seq2seq:
        procs += [lp.EncoderNoRepeatNGramLogitsProcessor(2, torch.from_numpy(enc)), lp.ForcedBOSTokenLogitsProcessor(5)]
    procs.append(lp.ForcedEOSTokenLogitsProcessor(seq.shape[1] + n_new, 3))
    rng = np.random.default_rng(0)
    banned_seen = 0
    for step in range(n_new):
        raw = rng.normal(size=(2, vocab))
        raw[:, 8] += 3.0  # make 8 (and so repeats) attractive
        ours = rules(raw.copy(), seq, step)
        ref = torch.from_numpy(raw.copy())
        for proc in procs:
            ref = proc(torch.from_numpy(seq), ref)
        np.testing.assert_array_equal(ours, ref.numpy())
        if 0 < step < n_new - 1:  # not a forced step: any -inf besides EOS is an n-gram ban
            banned_seen += int(np.isinf(np.delete(ours, eos, axis=1)).sum())
        seq = np.concatenate([seq, ours.argmax(-1)[:, None]], axis=1)
    assert banned_seen >= 2, "n-gram bans never triggered"
