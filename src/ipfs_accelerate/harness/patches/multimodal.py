"""Model patches for multimodal models (see patches/__init__.py)."""

from __future__ import annotations

import functools
from typing import Any


def llava_one_feature_tensor(model: Any, config: Any) -> Any:
    """Keep LLaVA's projected image features as one tensor instead of a per-image list.

    v5 ``LlavaModel.get_image_features`` turns the (images, tokens, dim) projector output into
    ``list(image_features)`` and ``forward`` concatenates it again before scattering it into the
    placeholder embeddings. Tracing unrolls ``list(tensor)`` over the batch, so the converted
    graph was baked to the example's batch of 2 (observed: OpenVINO logits of shape (0, 0, vocab)
    for one image). Here the projector returns (1, images*tokens, dim): the list has one item, the
    concatenation is the same (images*tokens, dim) tensor, and the scatter gets identical values.
    The returned ``image_outputs.pooler_output`` is a one-item list holding that tensor (one output
    at any batch size; ``generate`` can feed it back as it does the stock list).
    """
    projector = model.model.multi_modal_projector
    project = projector.forward

    @functools.wraps(project)
    def one_tensor(*args: Any, **kwargs: Any) -> Any:
        out = project(*args, **kwargs)
        return out.reshape(1, -1, out.shape[-1])

    projector.forward = one_tensor
    return model


def llama4_text_output_fields(model: Any, config: Any) -> Any:
    """Give the text model's output the ``image_outputs`` field Llama-4's wrapper reads.

    ``Llama4ForConditionalGeneration.forward`` (transformers 5.24) builds its return value with
    ``image_outputs=outputs.image_outputs``, where ``outputs`` is the text model's
    ``MoeCausalLMOutputWithPast``, which has no such field: every forward raises AttributeError
    after the logits are computed. Here the text model's output carries
    ``image_outputs = None`` (what the stock output class would hold), so the forward returns;
    no computation changes.
    """
    text = getattr(model, "language_model", None)
    if text is None:  # the text-only heads (Llama4ForCausalLM) return their own output
        return model
    forward = text.forward

    @functools.wraps(forward)
    def with_field(*args: Any, **kwargs: Any) -> Any:
        out = forward(*args, **kwargs)
        if not isinstance(out, tuple) and not hasattr(out, "image_outputs"):
            object.__setattr__(out, "image_outputs", None)
        return out

    text.forward = with_field
    return model


PATCHES: dict = {
    "llava_one_feature_tensor": llava_one_feature_tensor,
    "llama4_text_output_fields": llama4_text_output_fields,
}
