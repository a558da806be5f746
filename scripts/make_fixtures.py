"""Write the tiny GPT-2 checkpoints the tests use, so no test ever downloads anything.

    python scripts/make_fixtures.py

makes two directories under ``checks/data/``:

* ``tiny-gpt2/``: a seeded HuggingFace ``GPT2LMHeadModel`` (float32, 2 layers, 32 wide)
  saved the way the hub saves ``openai-community/gpt2``: ``config.json`` and a
  ``model.safetensors`` whose keys have no ``transformer.`` prefix, no ``lm_head.weight``
  (it is tied to ``wte``) and the legacy ``h.N.attn.bias`` mask buffers. Next to it, a
  small byte-level BPE tokenizer trained here on a few sentences (``tokenizer.json``,
  ``vocab.json``, ``merges.txt``), the same kind of tokenizer as GPT-2's.
* ``tiny-gpt2-prefixed/``: the same weights in the other layout found in the wild: every
  key under ``transformer.``, an explicit ``lm_head.weight``, and the old
  ``attn.masked_bias`` scalars as well.

The weights are drawn wider than HuggingFace's default (std 0.02) so that the tiny model's
next-token distributions are far from uniform: greedy decoding then has clear winners, and
a test comparing two implementations token by token does not hinge on rounding.

Running the script again gives the same files, byte for byte.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "checks" / "data"

SEED = 1234
N_POSITIONS = 64
# A few sentences to learn the BPE merges from. Any text works; this one is our own.
TRAINING_TEXT = """\
The tiny model reads a few words and guesses the next one.
It learns nothing here: its weights are random, drawn from a seeded generator.
Still, the tokenizer splits text the way GPT-2 does, into bytes and merged pieces.
The quick tokens jump over the lazy bytes, and the bytes merge into tokens again.
A language model predicts the next token, then the next, then the next.
"""
EXTRA_TOKENS = 44  # merges learned beyond the 256 byte tokens and <|endoftext|>
EOS = "<|endoftext|>"


def train_tokenizer(out: Path) -> int:
    """Train a byte-level BPE tokenizer (GPT-2's kind) and save it; returns its size."""
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer(add_prefix_space=False)
    tokenizer.train_from_iterator(
        TRAINING_TEXT.splitlines(),
        vocab_size=256 + 1 + EXTRA_TOKENS,
        min_frequency=2,
        special_tokens=[EOS],
        show_progress=False,
    )
    tokenizer.save(str(out / "tokenizer.json"))
    tokenizer.save_model(str(out))  # vocab.json and merges.txt, GPT2Tokenizer's format
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "GPT2Tokenizer",
                "model_max_length": N_POSITIONS,
                "bos_token": EOS,
                "eos_token": EOS,
                "unk_token": EOS,
                "add_prefix_space": False,
            },
            indent=2,
        )
        + "\n"
    )
    return tokenizer.get_vocab_size()


def make_model(vocab_size: int, eos_id: int):
    """A seeded HF GPT-2 with wide, non-uniform weights (see the module docstring)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=N_POSITIONS,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(SEED)
    model = GPT2LMHeadModel(config).eval()
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "lm_head.weight":
                continue  # the same tensor as transformer.wte.weight
            noise = torch.randn(p.shape, generator=generator)
            if p.ndim == 1 and name.endswith("weight"):  # layer-norm gains around 1
                p.copy_(1.0 + 0.2 * noise)
            elif p.ndim == 1:  # biases
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.5 * noise)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    return config, model


def hub_state(model, n_positions: int) -> dict[str, np.ndarray]:
    """The keys and buffers of the hub's gpt2 ``model.safetensors``."""
    state = {}
    for name, tensor in model.transformer.state_dict().items():
        if name.endswith(".attn.bias") or name.endswith(".attn.masked_bias"):
            continue
        state[name] = tensor.detach().numpy().astype(np.float32)
    # The hub's file still carries each block's lower-triangular mask, shaped [1, 1, n, n].
    mask = np.tril(np.ones((n_positions, n_positions), dtype=np.float32))[None, None]
    for i in range(model.config.n_layer):
        state[f"h.{i}.attn.bias"] = mask
    return state


def prefixed_state(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The other common layout: ``transformer.`` prefixes and an explicit lm_head."""
    out = {f"transformer.{k}": v for k, v in state.items()}
    for k in list(state):
        if k.endswith(".attn.bias"):
            out[f"transformer.{k[: -len('bias')]}masked_bias"] = np.array(-1e4, dtype=np.float32)
    out["lm_head.weight"] = state["wte.weight"].copy()
    return out


def write_checkpoint(out: Path, config, state: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    config.to_json_file(str(out / "config.json"))
    ordered = {k: np.ascontiguousarray(state[k]) for k in sorted(state)}
    save_file(ordered, str(out / "model.safetensors"), metadata={"format": "pt"})


def greedy_margins(model, prompts: list[list[int]], steps: int = 24) -> float:
    """The smallest gap between the best and second-best logit along greedy decoding."""
    import torch

    smallest = float("inf")
    with torch.no_grad():
        for prompt in prompts:
            ids = list(prompt)
            for _ in range(steps):
                logits = model(torch.tensor([ids])).logits[0, -1]
                top = torch.topk(logits, 2).values
                smallest = min(smallest, float(top[0] - top[1]))
                ids.append(int(logits.argmax()))
    return smallest


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    plain = FIXTURES / "tiny-gpt2"
    prefixed = FIXTURES / "tiny-gpt2-prefixed"
    for d in (plain, prefixed):
        shutil.rmtree(d, ignore_errors=True)
    plain.mkdir(parents=True)

    vocab_size = train_tokenizer(plain)
    eos_id = json.loads((plain / "vocab.json").read_text())[EOS]
    config, model = make_model(vocab_size, eos_id)
    state = hub_state(model, config.n_positions)
    write_checkpoint(plain, config, state)
    write_checkpoint(prefixed, config, prefixed_state(state))

    # Sanity: HuggingFace reads both layouts back to the model we saved.
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(str(plain))
    prompt = tokenizer("The tiny model")["input_ids"]
    with tempfile.TemporaryDirectory():
        for d in (plain, prefixed):
            again = GPT2LMHeadModel.from_pretrained(str(d)).eval()
            with torch.no_grad():
                a = again(torch.tensor([prompt])).logits
                b = model(torch.tensor([prompt])).logits
            assert torch.allclose(a, b), f"{d} does not load back to the same model"
    margin = greedy_margins(model, [prompt, [1, 2, 3], [eos_id]])

    for d in (plain, prefixed):
        files = ", ".join(f"{p.name} {p.stat().st_size // 1024} KB" for p in sorted(d.iterdir()))
        print(f"{d.relative_to(ROOT)}: {files}")
    print(
        f"vocab {vocab_size}, eos id {eos_id}, prompt {prompt}, smallest greedy margin {margin:.3f}"
    )


if __name__ == "__main__":
    main()
