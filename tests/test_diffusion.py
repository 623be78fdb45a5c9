"""Diffusion cases: the table, the loop against diffusers' own pipelines, OpenVINO parity,
determinism across processes, the generated files and the plugin path to results."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ipfs_accelerate.diffusion import generate, pipeline, spec
from ipfs_accelerate.diffusion.build import build, tokenizer
from ipfs_accelerate.diffusion.case import DiffusionCase
from ipfs_accelerate.generate import engine
from ipfs_accelerate.harness.case import Settings
from ipfs_accelerate.registry.errors import UnknownNameError

ROOT = Path(__file__).resolve().parents[1]
needs_ov = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed")
PIPELINES = ["stable-diffusion", "stable-diffusion-xl"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ---- the table ---------------------------------------------------------------------------------
def test_table_lists_four_cases_with_tasks() -> None:
    assert spec.names() == ["stable-diffusion", "stable-diffusion-xl", "unet-2d-condition", "autoencoder-kl"]
    assert [spec.get(n).task for n in spec.names()] == ["text-to-image", "text-to-image", "noise-prediction", "image-reconstruction"]
    assert spec.get("stable-diffusion-xl").text_encoders == ("sdxl_text", "sdxl_text_2")


def test_unknown_case_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="stable-diffusion"):
        spec.get("stable-difusion")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ('unet = "sd_unet"', 'unet = "sd_unett"'),
        ('kind = "pipeline"\nstyle = "sd"', 'kind = "pipeline"\nstyle = "sd3"'),
        ('text_encoders = ["sd_text"]', 'text_encoders = ["sd_text", "sd_text"]'),
    ],
    ids=["unknown-component", "unknown-style", "encoder-count"],
)
def test_bad_table_names_the_case(patch: str, message: str) -> None:
    text = (ROOT / "src/ipfs_accelerate/diffusion/pipelines.toml").read_text(encoding="utf-8")
    assert patch in text
    with pytest.raises(spec.DiffusionSpecError, match="'stable-diffusion'"):
        spec.parse(text.replace(patch, message, 1))


def test_tokenizer_is_trained_offline_with_bos_eos_pad() -> None:
    tok = tokenizer()
    ids = tok(["a photo of an astronaut"], padding="max_length", max_length=16, truncation=True)["input_ids"][0]
    assert len(ids) == 16 and ids[0] == 0 and ids[ids.index(2) + 1 :] == [1] * (15 - ids.index(2))
    assert 3 not in ids  # every word of the prompt is in the trained vocabulary
    assert tokenizer()(["a photo of an astronaut"])["input_ids"] == tok(["a photo of an astronaut"])["input_ids"]


# ---- the loop is diffusers' loop -------------------------------------------------------------
@pytest.mark.parametrize("name", PIPELINES)
def test_loop_matches_diffusers_pipeline(name: str) -> None:
    """Our backend-neutral loop with CPU sub-models gives diffusers' own pipeline's image, bit for
    bit, from the same modules, tokenizer, scheduler config, latents and generator."""
    import diffusers
    import torch

    from ipfs_accelerate.hardware.backends import get_backend

    built = build(spec.get(name))
    s, m = built.spec, built.modules
    cpu = get_backend("cpu")
    ours = pipeline.run(built, {r: cpu.prepare(p.module, p.example, p.outputs) for r, p in built.parts.items()})
    common = dict(vae=m[s.vae], text_encoder=m[s.text_encoders[0]], tokenizer=built.tokenizer, unet=m[s.unet], scheduler=pipeline.scheduler(built))
    if s.style == "sd":
        pipe = diffusers.StableDiffusionPipeline(**common, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    else:
        pipe = diffusers.StableDiffusionXLPipeline(**common, text_encoder_2=m[s.text_encoders[1]], tokenizer_2=built.tokenizer, force_zeros_for_empty_prompt=False)
    pipe.set_progress_bar_config(disable=True)
    size = s.latent_size * built.vae_scale
    latents = pipeline.initial_latents(built, torch.Generator("cpu").manual_seed(s.seed))
    theirs = pipe(
        s.prompt, negative_prompt=s.negative_prompt, num_inference_steps=s.steps, guidance_scale=s.guidance_scale,
        height=size, width=size, latents=latents, generator=torch.Generator("cpu").manual_seed(s.seed), output_type="np",
    ).images
    assert theirs.shape == ours.arrays["image"].shape == (1, size, size, 3)
    np.testing.assert_array_equal(theirs, ours.arrays["image"])
    assert float(theirs.std()) > 0.05  # a real picture, not a constant


# ---- OpenVINO parity -------------------------------------------------------------------------
@needs_ov
@pytest.mark.parametrize("name", PIPELINES)
def test_openvino_pipeline_parity(name: str) -> None:
    result = DiffusionCase(name, "openvino").run()
    assert result.status == "passed", result.reason
    assert result.category == "multimodal" and result.precision == "fp32"
    par = result.parity
    assert par is not None and par.ok
    rows = {o.name: o for o in par.outputs}
    assert set(rows) == {"prompt_embeds", "latents", "image"}
    for row in rows.values():
        assert row.cosine >= 0.99999 and row.max_abs <= 1e-4 and not row.flat
    roles = ["text_encoder", "unet", "vae_decoder"] if name == "stable-diffusion" else ["text_encoder", "text_encoder_2", "unet", "vae_decoder"]
    assert [c.split(":")[0] for c in result.conversion.split(", ")] == roles
    assert result.variants and result.variants[0].precision.startswith("default(")


@needs_ov
def test_bf16_openvino_fails_the_f32_parity_tolerance() -> None:
    """The tolerance is not a rubber stamp: OpenVINO's default precision (bf16 on this CPU) drifts
    through three denoising steps far beyond the f32 parity bound."""
    case = DiffusionCase("stable-diffusion", "openvino", precision="default")
    case.tolerance = lambda: (1e-4, 1e-3, 0.99999, "")  # judge bf16 by the f32 bound
    par = case.check_parity()
    latents = next(o for o in par.outputs if o.name == "latents")
    assert not par.ok and not latents.ok and latents.max_abs > 1e-2


# ---- determinism -------------------------------------------------------------------------------
def test_fingerprints_identical_across_processes() -> None:
    """Two fresh processes print the same SHA-256 of ids, embeddings, latents and image bytes,
    and it equals this process's."""
    from ipfs_accelerate.diffusion.cli import digest

    cmd = [sys.executable, "-m", "ipfs_accelerate.diffusion", "fingerprint", *PIPELINES]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()) for _ in range(2)]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-2000:]
        outs.append(dict(line.split() for line in stdout.strip().splitlines()))
    assert outs[0] == outs[1]
    assert set(outs[0]) == set(PIPELINES)
    assert outs[0]["stable-diffusion"] == digest("stable-diffusion")
    assert outs[0]["stable-diffusion"] != outs[0]["stable-diffusion-xl"]


def test_expected_results_detect_a_changed_image(tmp_path: Path) -> None:
    settings = Settings(expected_dir=tmp_path, update_expected=True)
    assert DiffusionCase("autoencoder-kl", "cpu", settings=settings).check_expected()[0] == "updated"
    path = tmp_path / "autoencoder-kl.image-reconstruction.json"
    case = DiffusionCase("autoencoder-kl", "cpu", settings=dataclasses.replace(settings, update_expected=False))
    assert case.check_expected() == ("match", "")
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["outputs"]["reconstruction"]["mean"] += 0.01
    path.write_text(json.dumps(doc), encoding="utf-8")
    status, diff = case.check_expected()
    assert status == "mismatch" and "reconstruction" in diff and "mean" in diff


def test_standalone_batch_rows_match_single_runs() -> None:
    for name in ("unet-2d-condition", "autoencoder-kl"):
        check = DiffusionCase(name, "cpu").check_batch()
        assert check is not None and check.ok and check.batch_size == 2 and not check.flat_outputs


# ---- generated files and the plugin path -----------------------------------------------------
def test_generated_files_are_current_and_byte_stable() -> None:
    first, second = generate.targets(), generate.targets()
    assert [t.content for t in first] == [t.content for t in second]
    for t in first:
        assert engine.inspect(ROOT / "test" / t.relpath, t.content) == "current", f"regenerate {t.relpath}"
        assert engine.verify(t.content) == "generated"
        assert t.relpath.name.startswith("test_diffusion_")


def test_generate_check_reports_an_edited_file(tmp_path: Path) -> None:
    from ipfs_accelerate.diffusion.cli import configure, main

    parser = __import__("argparse").ArgumentParser()
    configure(parser)
    assert main(parser.parse_args(["generate", "--output-dir", str(tmp_path)]), out=open(os.devnull, "w")) == 0  # noqa: SIM115
    target = tmp_path / "skills" / "test_diffusion_stable_diffusion.py"
    target.write_text(target.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    assert main(parser.parse_args(["generate", "--output-dir", str(tmp_path), "--check"]), out=open(os.devnull, "w")) == 1  # noqa: SIM115


def test_results_flow_through_the_pytest_plugin(tmp_path: Path) -> None:
    """A generated file under plain pytest writes its CaseResult through --ipfs-results, with the
    category the runner and reports group by."""
    results = tmp_path / "results.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "test/skills/test_diffusion_unet_2d_condition.py"),
         "--hardware", "cpu", "--ipfs-results", str(results), "-k", "test_metrics or test_expected_results"],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout
    lines = [json.loads(x) for x in results.read_text(encoding="utf-8").splitlines()]
    assert [(r["model"], r["task"], r["category"], r["hardware"], r["status"], r["expected"]) for r in lines] == [
        ("unet-2d-condition", "noise-prediction", "multimodal", "cpu", "passed", "match")
    ]


def test_cli_lists_cases_and_rejects_unknown_names() -> None:
    import argparse
    import io

    from ipfs_accelerate.diffusion.cli import configure, main

    parser = argparse.ArgumentParser()
    configure(parser)
    out, err = io.StringIO(), io.StringIO()
    assert main(parser.parse_args(["list"]), out=out, err=err) == 0
    assert [line.split("\t")[:2] for line in out.getvalue().splitlines()][0] == ["stable-diffusion", "text-to-image"]
    assert main(parser.parse_args(["fingerprint", "stable-difusion"]), out=out, err=err) == 2
    assert "unknown diffusion case 'stable-difusion'" in err.getvalue() and "stable-diffusion" in err.getvalue()


def test_runner_selects_diffusion_files_for_all_and_multimodal_only() -> None:
    from ipfs_accelerate.runner.selection import resolve

    ours = {f"test_diffusion_{n.replace('-', '_')}.py" for n in spec.names()}

    def picked(**kw) -> set[str]:
        return {p.name for p in resolve(ROOT / "test", type_="model", **kw).files} & ours

    assert picked() == ours
    assert picked(category="multimodal") == ours
    assert picked(category="vision") == set()
    assert picked(models=["bert"]) == set()


def test_case_tolerance_override_from_the_table() -> None:
    text = (ROOT / "src/ipfs_accelerate/diffusion/pipelines.toml").read_text(encoding="utf-8")
    text += '\n[cases.autoencoder-kl.tolerance.openvino]\natol = 2e-3\nrtol = 0.0\nmin_cosine = 0.9999\nreason = "wider on purpose"\n'
    case = DiffusionCase("autoencoder-kl", "openvino")
    assert case.tolerance()[:3] == (1e-4, 1e-3, 0.99999)
    case.spec = spec.parse(text).cases["autoencoder-kl"]
    assert case.tolerance() == (2e-3, 0.0, 0.9999, "wider on purpose")
    assert DiffusionCase("autoencoder-kl", "cpu").tolerance()[:3] == (0.0, 0.0, 1.0)
