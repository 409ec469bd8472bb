"""Export a T5 rewriter folder to ONNX (encoder, uncached decoder step, cached decoder) and verify it.

torch.onnx's TorchScript exporter (dynamo=False) is used: the dynamo exporter needs onnxscript,
which is not a project dependency, and optimum's exporter pins older transformers releases.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.artifacts import REWRITER_ONNX_FORMAT_VERSION as FORMAT_VERSION
from evdsearch.atomic import write_json_atomic
from evdsearch.engine.rewriters.onnx_seq2seq import (
    DECODER_FILE,
    ENCODER_FILE,
    FORMAT,
    META_FILE,
    ONNX_DIR,
    OnnxSeq2SeqRewriter,
    weights_digest,
)
from evdsearch.errors import NotFound

OPSET = 17


@dataclass
class Agreement:
    """How closely the ONNX export matches torch on some prompts."""

    prompts: int  # prompts compared
    same_tokens: bool  # greedy generations identical
    max_abs_logit_diff: float  # over every decoding step of the torch generation
    torch_texts: list[str]  # what torch generated
    onnx_texts: list[str]  # what onnxruntime generated


def _wrappers(model: Any) -> tuple[Any, Any]:
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    class DecoderStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, decoder_input_ids: Any, encoder_hidden_states: Any, encoder_attention_mask: Any) -> Any:
            out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=encoder_hidden_states),
                             attention_mask=encoder_attention_mask, decoder_input_ids=decoder_input_ids,
                             use_cache=False)
            return out.logits[:, -1, :]

    return Encoder().eval(), DecoderStep().eval()


def export_rewriter(folder: str | Path, opset: int = OPSET) -> Path:
    """Write FOLDER/onnx/{encoder,decoder}.onnx + export.json; returns the onnx folder."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise NotFound(f"{folder} is not a rewriter folder (no config.json); train one with `evdsearch train rewriter`")
    model = AutoModelForSeq2SeqLM.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
    cfg = model.config
    encoder, decoder = _wrappers(model)
    out = folder / ONNX_DIR
    out.mkdir(exist_ok=True)
    ids = torch.tensor([[5, 6, 7, 1], [5, 6, 1, 0]])
    mask = (ids != cfg.pad_token_id).long()
    mask[:, 0] = 1
    dec = torch.tensor([[cfg.decoder_start_token_id, 5, 6], [cfg.decoder_start_token_id, 7, 8]])
    # Tracer warnings flag shape-dependent Python branches; check_agreement verifies the graphs instead.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hidden = encoder(ids, mask)
        torch.onnx.export(encoder, (ids, mask), str(out / ENCODER_FILE), dynamo=False, opset_version=opset,
                          input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "src"}, "attention_mask": {0: "batch", 1: "src"},
                                        "hidden": {0: "batch", 1: "src"}})
        torch.onnx.export(decoder, (dec, hidden, mask), str(out / DECODER_FILE), dynamo=False, opset_version=opset,
                          input_names=["decoder_input_ids", "encoder_hidden_states", "encoder_attention_mask"],
                          output_names=["logits"],
                          dynamic_axes={"decoder_input_ids": {0: "batch", 1: "tgt"},
                                        "encoder_hidden_states": {0: "batch", 1: "src"},
                                        "encoder_attention_mask": {0: "batch", 1: "src"}, "logits": {0: "batch"}})
    from evdsearch.training.export.t5_cached import export_cached

    shapes = export_cached(model, out, opset)  # the cached decoder (format 2) beside the uncached one
    max_new = getattr(model.generation_config, "max_new_tokens", None) or 64
    write_json_atomic(out / META_FILE, {
        "format": FORMAT, "format_version": FORMAT_VERSION, "opset": opset, "max_new_tokens": int(max_new), **shapes,
        "decoder_start_token_id": cfg.decoder_start_token_id, "eos_token_id": cfg.eos_token_id,
        "pad_token_id": cfg.pad_token_id, "weights_sha256": weights_digest(folder)})
    return out


def check_agreement(folder: str | Path, prompts: list[str], max_new_tokens: int | None = None) -> Agreement:
    """Greedy-generate with torch and with onnxruntime (CPU); compare tokens and every step's logits."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    folder = Path(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder, local_files_only=True).eval()
    runner = OnnxSeq2SeqRewriter(folder, device="cpu")
    steps = max_new_tokens or runner.max_new_tokens
    batch = tokenizer(prompts, return_tensors="pt", padding=True, truncation=True, max_length=512)
    with torch.no_grad():
        gen = model.generate(**batch, max_new_tokens=steps, do_sample=False, num_beams=1,
                             output_logits=True, return_dict_in_generate=True)
    onnx_ids = runner.generate_ids(prompts, steps)
    torch_ids = gen.sequences.numpy()
    width = max(torch_ids.shape[1], onnx_ids.shape[1])
    pad = runner.meta["pad_token_id"]
    same = np.array_equal(_pad_to(torch_ids, width, pad), _pad_to(onnx_ids, width, pad))
    hidden = runner.encoder.run(None, {"input_ids": batch.input_ids.numpy(),
                                       "attention_mask": batch.attention_mask.numpy()})[0]
    diff = 0.0
    for t, scores in enumerate(gen.logits):  # onnx logits for torch's own prefix at every step
        onnx_logits = runner.next_logits(torch_ids[:, : t + 1], hidden, batch.attention_mask.numpy())
        diff = max(diff, float(np.abs(onnx_logits - scores.numpy()).max()))
    decode = tokenizer.batch_decode
    return Agreement(len(prompts), bool(same), diff, decode(torch_ids, skip_special_tokens=True),
                     decode(onnx_ids, skip_special_tokens=True))


def _pad_to(ids: np.ndarray, width: int, pad: int) -> np.ndarray:
    return np.pad(ids, ((0, 0), (0, width - ids.shape[1])), constant_values=pad)

