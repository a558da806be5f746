"""Draw the book's figures into ``book/src/figures/`` as theme-neutral SVGs.

    python scripts/make_figures.py               # (re)draw every figure
    python scripts/make_figures.py mask shapes   # only these
    python scripts/make_figures.py --out DIR     # somewhere else (the tests compare)
    python scripts/make_figures.py --list        # names, and which ones need MAX
    python scripts/make_figures.py chapters      # the chapters' measured numbers, from book/data

Every figure has a transparent background and mid-grey text and lines, so it reads on
mdBook's light and dark themes alike. The SVGs are deterministic for a given matplotlib
version (fixed hash salt, no date), so ``tests/test_book.py`` can redraw them and compare.
Figures whose numbers come from the course's own code (the causal mask) compute them with
the reference solutions and MAX, never by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "book" / "src" / "figures"

# Colours chosen to read on white and on near-black backgrounds alike.
GREY = "#8a8a8a"
BLUE = "#4f8fd6"
ORANGE = "#e0883a"
GREEN = "#4aa564"
LIGHT_BLUE = "#a9c8ec"
PURPLE = "#9a6fd0"
FONT = "DejaVu Sans"


def _setup():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.hashsalt": "gpt2-max-course",
            "svg.fonttype": "none",  # keep text as text: sharp, searchable, small
            "font.family": "sans-serif",
            "font.sans-serif": [FONT, "Arial", "Helvetica"],
            "font.size": 11,
            "text.color": GREY,
            "axes.edgecolor": GREY,
            "axes.labelcolor": GREY,
            "xtick.color": GREY,
            "ytick.color": GREY,
            "axes.facecolor": "none",
            "figure.facecolor": "none",
            "savefig.facecolor": "none",
            "savefig.transparent": True,
            "path.simplify": False,
        }
    )
    return plt


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight", pad_inches=0.05)
    import matplotlib.pyplot as plt

    plt.close(fig)


# --------------------------------------------------------------------------- causal mask


def _mask_values(seq_len: int, past_len: int):
    """The mask as the reference solution computes it, with MAX on the CPU."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from gpt2 import runtime

    target = runtime.pick_device("cpu")
    from solutions.solution_02 import causal_mask

    mask = causal_mask(seq_len, past_len, dtype=target.dtype, device=target.device)
    return runtime.to_numpy(mask)


def _draw_mask(ax, mask, past_len: int, title: str) -> None:
    import numpy as np
    from matplotlib.patches import Rectangle

    rows, cols = mask.shape
    for i in range(rows):
        for j in range(cols):
            visible = mask[i, j] == 0
            past = j < past_len
            face = (BLUE if past else GREEN) if visible else "none"
            ax.add_patch(
                Rectangle(
                    (j, i),
                    1,
                    1,
                    facecolor=face,
                    edgecolor=GREY,
                    linewidth=1.0,
                    alpha=0.85 if visible else 1.0,
                )
            )
            label = "0" if visible else "−∞"
            ax.text(
                j + 0.5,
                i + 0.5,
                label,
                ha="center",
                va="center",
                fontsize=10,
                color="white" if visible else GREY,
            )
    if past_len:
        ax.plot([past_len, past_len], [-0.15, rows + 0.15], color=ORANGE, linewidth=2.2)
        ax.text(
            past_len / 2,
            rows + 0.55,
            "cached (past)",
            ha="center",
            va="center",
            fontsize=9,
            color=BLUE,
        )
        ax.text(
            past_len + (cols - past_len) / 2,
            rows + 0.55,
            "new",
            ha="center",
            va="center",
            fontsize=9,
            color=GREEN,
        )
    ax.set_xlim(0, cols)
    ax.set_ylim(rows + (1.9 if past_len else 1.0), 0)
    ax.set_xticks(np.arange(cols) + 0.5, [str(j) for j in range(cols)])
    ax.set_yticks(np.arange(rows) + 0.5, [str(i) for i in range(rows)])
    ax.tick_params(length=0)
    ax.xaxis.set_ticks_position("top")
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("key j (the tokens looked at)", labelpad=6)
    ax.xaxis.set_label_position("top")
    ax.set_ylabel("query i (new token)")
    ax.text(
        cols / 2,
        rows + (1.35 if past_len else 0.6),
        title,
        ha="center",
        va="center",
        fontsize=11,
        family="monospace",
    )


def fig_mask(out: Path) -> None:
    plt = _setup()
    a = _mask_values(6, 0)
    b = _mask_values(3, 4)
    cell = 0.42  # inches per cell, the same in both panels
    left_margin, gap, top, bottom = 0.75, 1.0, 0.8, 0.9
    width = left_margin + 6 * cell + gap + 7 * cell + 0.2
    height = top + 6 * cell + bottom
    fig = plt.figure(figsize=(width, height))

    def axes(x0, rows, cols, below):
        # Each axes spans its cells plus room below for the labels drawn in data units.
        h = (rows + below) * cell
        return fig.add_axes(
            [x0 / width, (height - top - h) / height, cols * cell / width, h / height]
        )

    _draw_mask(axes(left_margin, 6, 6, 1.0), a, 0, "causal_mask(6, past_len=0)")
    _draw_mask(axes(left_margin + 6 * cell + gap, 3, 7, 1.9), b, 4, "causal_mask(3, past_len=4)")
    _save(fig, out / "causal_mask.svg")


# --------------------------------------------------------------------------- architecture


def _box(ax, x, y, w, h, text, color, *, step=None, fontsize=10.5):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor=color,
            edgecolor=color,
            alpha=0.22,
            linewidth=0,
        )
    )
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor="none",
            edgecolor=color,
            linewidth=1.6,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=GREY)
    if step is not None:
        ax.text(
            x + w / 2 + 0.12,
            y,
            f"step {step:02d}",
            ha="left",
            va="center",
            fontsize=8.5,
            color=color,
            style="italic",
        )


def _arrow(ax, x0, y0, x1, y1, color=GREY):
    ax.annotate(
        "",
        xy=(x1, y1),
        xytext=(x0, y0),
        arrowprops=dict(
            arrowstyle="-|>", color=color, linewidth=1.4, shrinkA=0, shrinkB=0, mutation_scale=12
        ),
    )


def _plus(ax, x, y):
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), 0.17, facecolor="none", edgecolor=GREY, linewidth=1.4))
    ax.text(x, y - 0.01, "+", ha="center", va="center", fontsize=12, color=GREY)


def fig_architecture(out: Path) -> None:
    plt = _setup()
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(6.6, 9.4))
    ax.set_xlim(0, 7.4)
    ax.set_ylim(-0.2, 13.4)
    ax.axis("off")
    cx = 3.0

    # Bottom to top, as the data flows.
    ax.text(cx, 0.05, "token ids  [batch, seq]", ha="center", va="center", fontsize=10.5)
    _arrow(ax, cx, 0.3, cx, 0.75)
    _box(ax, cx - 1.05, 1.15, 1.7, 0.6, "wte (tokens)", BLUE, fontsize=10)
    _box(ax, cx + 1.05, 1.15, 1.7, 0.6, "wpe (positions)", BLUE, fontsize=10)
    ax.text(cx - 1.05, 0.62, "step 05", ha="center", fontsize=8.5, color=BLUE, style="italic")
    ax.text(cx + 1.05, 0.62, "step 06", ha="center", fontsize=8.5, color=BLUE, style="italic")
    _arrow(ax, cx - 1.05, 1.47, cx - 0.2, 1.93)
    _arrow(ax, cx + 1.05, 1.47, cx + 0.2, 1.93)
    _plus(ax, cx, 2.1)
    _arrow(ax, cx, 2.27, cx, 2.95)

    # One transformer block, drawn once, repeated n_layer times.
    top, bottom = 9.05, 2.95
    ax.add_patch(
        FancyBboxPatch(
            (0.45, bottom),
            5.1,
            top - bottom,
            boxstyle="round,pad=0.05,rounding_size=0.2",
            facecolor="none",
            edgecolor=GREY,
            linewidth=1.2,
            linestyle=(0, (4, 3)),
        )
    )
    ax.text(
        5.7, (top + bottom) / 2 + 0.35, "× n_layer", ha="left", va="center", fontsize=12, color=GREY
    )
    ax.text(
        5.7,
        (top + bottom) / 2 - 0.1,
        "(12 in GPT-2)",
        ha="left",
        va="center",
        fontsize=9,
        color=GREY,
    )
    ax.text(
        5.7,
        (top + bottom) / 2 - 0.55,
        "block: step 08",
        ha="left",
        va="center",
        fontsize=8.5,
        color=GREY,
        style="italic",
    )

    # residual stream line
    res_x = 1.0
    ax.plot([cx, cx], [2.95, 3.35], color=GREY, linewidth=1.4)
    ax.plot([res_x, cx], [3.35, 3.35], color=GREY, linewidth=1.4)
    ax.plot([res_x, res_x], [3.35, 5.95], color=GREY, linewidth=1.4)
    _arrow(ax, res_x, 5.95, cx - 0.19, 5.95)
    _arrow(ax, cx, 3.35, cx, 3.75)
    _box(ax, cx, 4.05, 2.6, 0.6, "ln_1  LayerNorm", PURPLE, step=3)
    _arrow(ax, cx, 4.35, cx, 4.75)
    _box(ax, cx, 5.1, 2.6, 0.66, "attn  causal\nself-attention", ORANGE, step=7, fontsize=10)
    _arrow(ax, cx, 5.43, cx, 5.78)
    _plus(ax, cx, 5.95)
    ax.text(res_x - 0.12, 4.6, "residual", rotation=90, ha="right", va="center", fontsize=8.5)

    ax.plot([cx, cx], [6.12, 6.5], color=GREY, linewidth=1.4)
    ax.plot([res_x, cx], [6.5, 6.5], color=GREY, linewidth=1.4)
    ax.plot([res_x, res_x], [6.5, 8.65], color=GREY, linewidth=1.4)
    _arrow(ax, res_x, 8.65, cx - 0.19, 8.65)
    _arrow(ax, cx, 6.5, cx, 6.8)
    _box(ax, cx, 7.1, 2.6, 0.6, "ln_2  LayerNorm", PURPLE, step=3)
    _arrow(ax, cx, 7.4, cx, 7.75)
    _box(ax, cx, 8.05, 2.6, 0.6, "mlp  c_fc → GELU → c_proj", GREEN, step=4, fontsize=9.5)
    _arrow(ax, cx, 8.35, cx, 8.48)
    _plus(ax, cx, 8.65)
    ax.text(res_x - 0.12, 7.55, "residual", rotation=90, ha="right", va="center", fontsize=8.5)

    _arrow(ax, cx, 8.82, cx, 9.55)
    _box(ax, cx, 9.85, 2.6, 0.6, "ln_f  LayerNorm", PURPLE, step=9)
    _arrow(ax, cx, 10.15, cx, 10.6)
    _box(ax, cx, 10.9, 2.6, 0.6, "lm_head  (= wteᵀ)", BLUE, step=10)
    _arrow(ax, cx, 11.2, cx, 11.65)
    ax.text(cx, 11.95, "logits  [batch, seq, vocab_size]", ha="center", va="center", fontsize=10.5)
    ax.text(
        cx,
        12.45,
        "one score per vocabulary entry for the token that comes next",
        ha="center",
        va="center",
        fontsize=9,
    )
    _arrow(ax, cx, 12.7, cx, 13.05)
    ax.text(
        cx, 13.25, "generation: steps 12–13", ha="center", va="center", fontsize=9, style="italic"
    )
    _save(fig, out / "gpt2_architecture.svg")


# --------------------------------------------------------------------------- shapes


def fig_shapes(out: Path) -> None:
    plt = _setup()
    fig, ax = plt.subplots(figsize=(8.6, 6.4))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 11.2)
    ax.axis("off")

    rows = [
        ("input_ids", "[batch, seq]", "int64 token ids", BLUE),
        ("wte(ids) + wpe(positions)", "[batch, seq, 768]", "one 768-vector per token", BLUE),
        ("inside attention: q, k, v", "[batch, 12, seq, 64]", "12 heads × 64 dims = 768", ORANGE),
        (
            "attention scores q·kᵀ",
            "[batch, 12, seq, seq]",
            "+ causal mask, softmax per row",
            ORANGE,
        ),
        ("heads merged, c_proj", "[batch, seq, 768]", "added to the residual stream", ORANGE),
        ("inside the MLP: c_fc, GELU", "[batch, seq, 3072]", "4 × 768, per token", GREEN),
        ("after c_proj", "[batch, seq, 768]", "added to the residual stream", GREEN),
        ("ln_f, lm_head", "[batch, seq, 50257]", "a score for every token of the vocabulary", BLUE),
    ]
    y = 10.4
    step = 1.32
    for index, (name, shape, note, color) in enumerate(rows):
        ax.text(0.1, y, name, ha="left", va="center", fontsize=10.5)
        ax.text(
            4.75,
            y,
            shape,
            ha="center",
            va="center",
            fontsize=11,
            family="monospace",
            color=color,
            fontweight="bold",
        )
        ax.text(6.85, y, note, ha="left", va="center", fontsize=9)
        if index < len(rows) - 1:
            _arrow(ax, 4.75, y - 0.3, 4.75, y - step + 0.3)
        y -= step
    ax.add_patch(
        plt.Rectangle(
            (0.0, 1.86),
            9.9,
            6.62,
            facecolor="none",
            edgecolor=GREY,
            linewidth=1.0,
            linestyle=(0, (4, 3)),
        )
    )
    ax.text(
        9.85,
        1.8,
        "repeated in each of the 12 blocks",
        ha="right",
        va="top",
        fontsize=8.5,
        style="italic",
    )
    _save(fig, out / "shapes.svg")


# --------------------------------------------------------------------------- attention


def _attention_weights(seq_len: int = 12):
    """Every head's attention weights, [n_head, seq, seq], from the step 07 reference.

    The module is the reference attention with the step 07 check's config and seeded
    weights; its values are replaced by an identity matrix given as a second input, so
    ``attend`` (the reference's own scale, mask and softmax) returns the weights themselves.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import numpy as np
    from max.dtype import DType
    from max.experimental import functional as F

    from checks import engine, seeded
    from checks.spec import Case
    from gpt2 import runtime
    from solutions.solution_01 import GPT2Config
    from solutions.solution_07 import GPT2MultiHeadAttention

    SPEC = engine.spec(7)

    class AttentionWeights(GPT2MultiHeadAttention):
        def forward(self, hidden_states, identity):
            n_embd = self.n_head * self.head_dim
            q, k, _v = F.split(self.c_attn(hidden_states), [n_embd] * 3, axis=-1)
            return self.attend(self.split_heads(q), self.split_heads(k), identity)

    target = runtime.pick_device("cpu")
    config = GPT2Config(**SPEC.module.config)
    with runtime.building(target):
        module = SPEC.module.build(AttentionWeights, config)
    weights = seeded.weights(seeded.shapes(module), seed=1000 + 7)
    case = Case(("batch", "seq", "n_embd"), {"batch": 1, "seq": seq_len})
    x = seeded.inputs(case, config, np.random.default_rng(7))
    identity = np.broadcast_to(
        np.eye(seq_len, dtype=np.float32), (1, config.n_head, seq_len, seq_len)
    )
    types = [
        runtime.tensor_type(target, DType.float32, [1, seq_len, config.n_embd]),
        runtime.tensor_type(target, DType.float32, [1, config.n_head, seq_len, seq_len]),
    ]
    compiled = runtime.compile_module(module, types, weights, target)
    out = compiled(
        runtime.to_tensor(x, target), runtime.to_tensor(np.ascontiguousarray(identity), target)
    )
    return runtime.to_numpy(out)[0]


def fig_attention(out: Path) -> None:
    import numpy as np
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Rectangle

    weights = _attention_weights(12)
    plt = _setup()
    n_head, seq, _ = weights.shape
    fig, axes = plt.subplots(1, n_head, figsize=(2.45 * n_head, 2.9))
    base = to_rgba(BLUE)
    for h, ax in enumerate(axes):
        w = weights[h]
        for i in range(seq):
            for j in range(seq):
                if j > i:
                    face, edge = "none", "none"
                else:
                    face = (*base[:3], 0.06 + 0.94 * float(w[i, j]))
                    edge = GREY
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor=face, edgecolor=edge, linewidth=0.3))
        ax.set_xlim(-0.2, seq + 0.2)
        ax.set_ylim(seq + 0.2, -0.2)
        ax.set_aspect("equal")
        ax.set_xticks([0.5, seq - 0.5], ["0", str(seq - 1)])
        ax.set_yticks([0.5, seq - 0.5], ["0", str(seq - 1)])
        ax.tick_params(length=0, labelsize=8)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title(f"head {h}", fontsize=10)
        ax.set_xlabel("key", fontsize=9, labelpad=1)
        if h == 0:
            ax.set_ylabel("query", fontsize=9, labelpad=1)
        assert np.allclose(w.sum(axis=-1), 1.0, atol=1e-4)  # each row is a distribution
    fig.subplots_adjust(wspace=0.12)
    _save(fig, out / "attention_pattern.svg")


# --------------------------------------------------------------------------- tokens/s

BENCHMARK = ROOT / "book" / "data" / "generate-cpu.json"  # written by benchmarks/generate.py


RUNNER_LABELS = {  # benchmarks/generate.py's runner names → what the book calls them
    "HuggingFace generate (PyTorch)": "HuggingFace generate (PyTorch)",
    "ours: generate (step 12)": "step 12: generate (no cache)",
    "ours: generate_cached (step 13)": "step 13: generate_cached (KV cache)",
    "ours: gpt2.fast, one token per run": "gpt2.fast, one token per run: fixed cache",
    "ours: fast decode (gpt2.fast)": "gpt2.fast: fixed cache, Q6_K guesses checked in float32",
}


def fig_tokens_per_second(out: Path) -> None:
    """Generation speed from ``benchmarks/generate.py --json``: one group of bars per length."""
    import json

    result = json.loads(BENCHMARK.read_text())
    colors = {
        "HuggingFace": GREY,
        "step 12": ORANGE,
        "step 13": GREEN,
        "one token per run": LIGHT_BLUE,
        "gpt2.fast": BLUE,
    }
    rows, labels, bar_colors, values = [], [], [], []
    y = 0.0
    group_ticks = []
    for n in result["lengths"]:
        rates = result["runs"][str(n)]["tokens_per_second"]
        names = [k for k in RUNNER_LABELS if k in rates]
        group_ticks.append((y + (len(names) - 1) / 2, f"{n} new"))
        for name in names:
            rows.append(y)
            labels.append(RUNNER_LABELS[name])
            bar_colors.append(next(c for key, c in colors.items() if key in RUNNER_LABELS[name]))
            values.append(rates[name])
            y += 1
        y += 0.8
    plt = _setup()
    fig, ax = plt.subplots(figsize=(7.4, 0.34 * len(rows) + 1.2))
    top = max(values)
    for row, value, color in zip(rows, values, bar_colors, strict=True):
        ax.barh(row, value, color=color, alpha=0.85, height=0.75)
        ax.text(value + top * 0.015, row, f"{value:.1f}", va="center", ha="left", fontsize=9)
    ax.set_yticks([t for t, _ in group_ticks], [label for _, label in group_ticks])
    ax.tick_params(axis="y", length=0)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.15)
    ax.set_xlabel(
        f"new tokens per second after a {result['prompt_tokens']}-token prompt "
        "(greedy, float32, CPU)"
    )
    seen = {}
    for label, color in zip(labels, bar_colors, strict=True):
        seen.setdefault(label, color)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.85) for c in seen.values()]
    ax.legend(handles, list(seen), loc="lower right", fontsize=8.5, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    _save(fig, out / "tokens_per_second.svg")


def speed_table(result: dict) -> str:
    """README's table of generation speed, from ``benchmarks/generate.py --json``."""
    lengths = result["lengths"]
    hf = "HuggingFace generate (PyTorch)"
    head = "| new tokens | " + " | ".join(str(n) for n in lengths) + " |"
    lines = [head, "|---|" + "---:|" * len(lengths)]
    for name, label in RUNNER_LABELS.items():
        cells = []
        for n in lengths:
            rates = result["runs"][str(n)]["tokens_per_second"]
            if name not in rates:
                cells.append("–")
                continue
            ratio = "" if name == hf else f" ({rates[name] / rates[hf]:.2f}×)"
            cells.append(f"{rates[name]:.1f}{ratio}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    steps = result["decode_step_ms"]
    near, far = sorted(steps, key=int)
    floor = result["floor"]
    lines.append("")
    lines.append(
        f"Tokens per second, prompt {result['prompt_tokens']} tokens, greedy, the same ids "
        f"everywhere. One decode step: step 13 {steps[near]['step 13']:.1f} ms with {near} "
        f"cached positions, {steps[far]['step 13']:.1f} ms with {far}; gpt2.fast "
        f"{steps[near]['fast']:.1f} and {steps[far]['fast']:.1f} ms. The floor, "
        f"{floor['matrices']} one-row products with NumPy: {floor['one_row_products_ms']:.1f} ms "
        f"({floor['tokens_per_second']:.1f} tokens/s). Peak memory of our process "
        f"{result['peak_memory_mb']:.0f} MB (HuggingFace's, a process of its own: "
        f"{result['peak_memory_mb_huggingface']:.0f} MB)."
    )
    fast = "ours: fast decode (gpt2.fast)"
    kept = {n: result["runs"][str(n)]["guesses_kept"] for n in lengths}
    lines[-1] += (
        f" gpt2.fast's drafter: {steps[near]['fast drafter']:.1f} ms a step; float32 kept "
        + ", ".join(
            f"{k['kept']} of {k['guessed']} guesses at {n} ({runs} run{'s' * (runs > 1)})"
            for n, k in kept.items()
            for runs in [len(result["runs"][str(n)]["seconds"][fast])]
        )
        + f". At {lengths[0]} tokens gpt2.fast makes "
        f"{result['runs'][str(lengths[0])]['tokens_per_second'][fast] / floor['tokens_per_second']:.0%}"
        " of the floor's tokens/s."
    )
    return "\n".join(lines)


README = ROOT / "README.md"
TABLE_START = "<!-- speed table: python scripts/make_figures.py speed -->"
TABLE_END = "<!-- end of speed table -->"


def readme_with_table(text: str, result: dict) -> str:
    start, end = text.index(TABLE_START), text.index(TABLE_END)
    return text[: start + len(TABLE_START)] + "\n" + speed_table(result) + "\n" + text[end:]


def write_readme_table() -> None:
    import json

    result = json.loads(BENCHMARK.read_text())
    README.write_text(readme_with_table(README.read_text(), result))


def fig_speed(out: Path) -> None:
    """The chart, and README's table when drawing into the book (not into a test's folder)."""
    fig_tokens_per_second(out)
    if out == FIGURES:
        write_readme_table()


# --------------------------------------------------------------------------- chapters
#
# A chapter quotes a measured number only inside a generated region:
#
#     <!-- numbers: NAME -->
#     …what CHAPTER_NUMBERS[NAME] renders from book/data/*.json…
#     <!-- /numbers -->
#
# ``python scripts/make_figures.py chapters`` rewrites every region; tests/test_book.py
# fails when one differs from what this renders, and when a chapter states a measured
# number outside them. Each region's sentences are computed from one recorded run, so the
# prose cannot say "faster" where the data says slower.

DATA = ROOT / "book" / "data"
DECODE_OPS = DATA / "decode-ops-cpu.json"  # benchmarks/decode_ops.py --json
SERVE_LOAD = DATA / "serve-load-cpu.json"  # benchmarks/serve_load.py --json
REGION = re.compile(r"(<!-- numbers: ([\w-]+) -->\n)(.*?)(<!-- /numbers -->)", re.S)

HF = "HuggingFace generate (PyTorch)"
STEP12 = "ours: generate (step 12)"
STEP13 = "ours: generate_cached (step 13)"
ONE_BY_ONE = "ours: gpt2.fast, one token per run"
FAST = "ours: fast decode (gpt2.fast)"
OWNER = {
    HF: "HuggingFace's",
    STEP12: "step 12's",
    STEP13: "step 13's",
    ONE_BY_ONE: "`gpt2.fast`'s (one token per run)",
    FAST: "`gpt2.fast`'s",
}


def _ms(x: float) -> str:
    """Milliseconds with the digits a busy machine can stand behind."""
    return f"{x:.2f}" if x < 1 else f"{x:.1f}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _of(k: int, n: int) -> str:
    """ "all four", "three of the four"."""
    words = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    total = words[n] if n < len(words) else str(n)
    if k == n:
        return f"all {total}" if n > 2 else "both" if n == 2 else "the one"
    return f"{'none' if k == 0 else words[k] if k < len(words) else k} of the {total}"


def _rate(g: dict, n: int, runner: str) -> float:
    return g["runs"][str(n)]["tokens_per_second"][runner]


def _decode(d: dict, what: str, how: str) -> float:
    return next(r["ms"] for r in d["rows"] if r["what"] == what and r["how"] == how)


ONE_ROW = [  # decode_ops.py's "what" → the chapter's row label
    ("3072×768 (mlp.c_fc)", "`mlp.c_fc`, 3072 × 768"),
    ("768×3072 (mlp.c_proj)", "`mlp.c_proj`, 768 × 3072"),
    ("2304×768 (attn.c_attn)", "`attn.c_attn`, 2304 × 768"),
    ("50257×768 (lm_head)", "`lm_head`, 50257 × 768"),
]
ONE_ROW_HOW = [  # decode_ops.py's "how" → the chapter's column head
    ("NumPy x @ Wᵀ", "NumPy `x @ Wᵀ`"),
    ("MAX x @ Wᵀ", "MAX `x @ Wᵀ` (as `Linear`)"),
    ("MAX (W @ xᵀ)ᵀ", "MAX `(W @ xᵀ)ᵀ`"),
    ("MAX (W * x).sum(-1)", "MAX `(W * x).sum(-1)`"),
]


def numbers_generate_run(g: dict, d: dict) -> str:
    """Step 13: what generate.py measured, the chart, and what the chart shows."""
    lengths = g["lengths"]
    first, last = lengths[0], lengths[-1]
    same = all(all(g["runs"][str(n)]["same_ids_as_hf"].values()) for n in lengths)
    repeated = [n for n in lengths if len(g["runs"][str(n)]["seconds"][STEP13]) > 1]
    runs = ", ".join(
        f"{n} tokens the median of {len(g['runs'][str(n)]['seconds'][STEP13])} runs"
        for n in repeated
    )
    alt = "; ".join(
        f"{label} "
        + ", ".join(
            f"{_rate(g, n, name):.1f}"
            for n in lengths
            if name in g["runs"][str(n)]["tokens_per_second"]
        )
        + (
            ""
            if all(name in g["runs"][str(n)]["tokens_per_second"] for n in lengths)
            else f" at {first}"
        )
        for name, label in [
            (HF, "HuggingFace"),
            (STEP13, "step 13"),
            (ONE_BY_ONE, "gpt2.fast one token per run"),
            (FAST, "gpt2.fast"),
            (STEP12, "step 12"),
        ]
    )
    spread = {
        name: max(times) / min(times)
        for name, times in g["runs"][str(first)]["seconds"].items()
        if len(times) > 1
    }
    widest = max(spread, key=spread.get)
    gain = _rate(g, first, STEP13) / _rate(g, first, STEP12)
    behind = _rate(g, last, STEP13) < _rate(g, last, HF)
    return (
        "`benchmarks/generate.py` runs HuggingFace's `generate` (PyTorch, in a process of its\n"
        "own), your step 13, your step 12 and `gpt2.fast` (below, with and without its guesses)"
        " on\nthe same random GPT-2 small weights, greedy, at "
        f"{_and([str(n) for n in lengths])} new tokens after a\n{g['prompt_tokens']}-token "
        "prompt, and checks that all of them choose the same ids "
        f"({'in this run they did' if same else 'in this run they did not'}). The run the book "
        "quotes "
        f"(`python benchmarks/generate.py --json\nbook/data/generate-cpu.json`, on a "
        f"{g['cpu_count']}-core CPU; {runs}, the others one run each):\n\n"
        f"![Tokens per second at {_and([str(n) for n in lengths])} new tokens: {alt}]"
        "(figures/tokens_per_second.svg)\n\n"
        f"At {first} tokens the cache gives {gain:.1f}× over step 12, not more, because step 12 "
        "is better off\nthan it looks: a CPU multiplies a weight matrix by "
        f"{g['prompt_tokens']} to {g['prompt_tokens'] + first} tokens at once almost as fast "
        "as by\none, since either way it must read the whole matrix from memory. Step 12's cost "
        "per token grows\nwith the text, though (it reads the whole text again for every "
        f"token), so the benchmark runs it\nat {first} tokens only. Step 13's grows too, more "
        f"slowly: {_rate(g, first, STEP13):.1f} tokens/s over {first} tokens,\n"
        f"{_rate(g, last, STEP13):.1f} over {last}"
        + (
            f", where it falls behind HuggingFace's {_rate(g, last, HF):.1f}"
            if behind
            else f", still ahead of HuggingFace's {_rate(g, last, HF):.1f}"
        )
        + ". The sections below find out why, and what `gpt2.fast` does about it. (The "
        f"machine is shared: at {first} tokens, {OWNER[widest]} slowest run took "
        f"{spread[widest]:.1f}× as long as its quickest. Compare within one run, not across "
        "runs.)\n"
    )


def numbers_one_row(g: dict, d: dict) -> str:
    """Step 13: one row times one matrix, four ways (decode_ops.py)."""
    table = ["| one row times | " + " | ".join(h for _, h in ONE_ROW_HOW) + " |"]
    table.append("|---|" + "---:|" * len(ONE_ROW_HOW))
    for what, label in ONE_ROW:
        cells = [_ms(_decode(d, what, how)) for how, _ in ONE_ROW_HOW]
        table.append(f"| {label} | " + " | ".join(cells) + " |")
    spread = max(
        max(r["ms"] - r["q1_ms"], r["q3_ms"] - r["ms"]) / r["ms"]
        for r in d["rows"]
        if r["what"] in dict(ONE_ROW)
    )
    left = sum(_decode(d, w, "MAX (W @ xᵀ)ᵀ") < _decode(d, w, "MAX x @ Wᵀ") for w, _ in ONE_ROW)
    summed = sum(
        _decode(d, w, "MAX (W * x).sum(-1)")
        < min(_decode(d, w, "MAX (W @ xᵀ)ᵀ"), _decode(d, w, "MAX x @ Wᵀ"))
        for w, _ in ONE_ROW
    )
    return (
        f"Medians in milliseconds of {d['repeats']} calls, from one run "
        "(`python benchmarks/decode_ops.py --json\nbook/data/decode-ops-cpu.json`, on a "
        f"{d['cpu_count']}-core CPU); the middle half of each row's calls lay within "
        f"{spread:.0%}\nof its median:\n\n"
        + "\n".join(table)
        + f"\n\nPutting the matrix on the left was quicker than `Linear`'s order for {_of(left, 4)}"
        "\nmatrices. The last column, a product per weight summed along each row of W, was "
        f"quicker\nthan both for {_of(summed, 4)}, but it only works for one row, and the "
        "prefill has many.\n"
    )


def numbers_all_matrices(g: dict, d: dict) -> str:
    """Step 13: a decode step's matrix products, all at once (decode_ops.py)."""
    numpy_wins = sum(
        _decode(d, w, "NumPy x @ Wᵀ")
        < min(_decode(d, w, how) for how, _ in ONE_ROW_HOW if how.startswith("MAX"))
        for w, _ in ONE_ROW
    )
    what = next(r["what"] for r in d["rows"] if r["what"].startswith("all "))
    hows = ["NumPy x @ Wᵀ", "MAX x @ Wᵀ", "MAX (W @ xᵀ)ᵀ"]
    heads = [h for how, h in ONE_ROW_HOW if how in hows]
    d_products = _decode(d, what, "MAX (W @ xᵀ)ᵀ")
    d_step = _decode(d, "decode step, P = 16", "step 13")
    near = min(g["decode_step_ms"], key=int)
    floor, step = g["floor"]["one_row_products_ms"], g["decode_step_ms"][near]["step 13"]
    share = (
        f"so the products are {floor / step:.0%} of a step, and LayerNorm, GELU, attention and "
        "the call itself share the rest"
        if floor < step
        else "so in that run the products alone took longer than a whole step"
    )
    return (
        f"MAX's quickest order beat NumPy for {_of(4 - numpy_wins, 4)} matrices in this run. "
        "Adding them all up: one row times all 49 weight matrices of GPT-2 small, "
        "494 MB of float32, and nothing else (the same run):\n\n"
        f"| all 49 matrices × one row | {' | '.join(heads)} |\n|---|---:|---:|---:|\n"
        "| milliseconds | "
        + " | ".join(_ms(_decode(d, what, how)) for how in hows)
        + " |\n\n"
        + (
            f"In the same run a whole decode step of step 13 with 16 cached positions took "
            f"{_ms(d_step)} ms, so the products in step 13's order, `(W @ xᵀ)ᵀ`, are "
            f"{d_products / d_step:.0%} of it. "
            if d_products < d_step
            else "Each graph was timed on its own on a busy machine, and in this run the "
            f"products alone ({_ms(d_products)} ms) took longer than a whole decode step "
            f"({_ms(d_step)} ms). "
        )
        + "`benchmarks/generate.py` times both in one "
        f"process: in its run the {g['floor']['matrices']} products with NumPy took "
        f"{_ms(floor)} ms and one decode step of step 13 with {near} cached positions "
        f"{_ms(step)} ms, {share}.\n"
    )


def numbers_cache_bound(g: dict, d: dict) -> str:
    """Step 13: why the cache gives what it gives over step 12 (generate.py)."""
    first = g["lengths"][0]
    step12 = 1000 / _rate(g, first, STEP12)
    near = min(g["decode_step_ms"], key=int)
    one_step = g["decode_step_ms"][near]["step 13"]
    gain = _rate(g, first, STEP13) / _rate(g, first, STEP12)
    return (
        f"This is why the cache gave {gain:.1f}× and not more over {first} tokens in "
        f"generate.py's run: step 12\nneeded {_ms(step12)} ms a token there, and one decode "
        f"step of step 13 with only {near} cached positions\ntook {_ms(one_step)} ms, so no "
        f"cache could have made that run more than {step12 / one_step:.1f}× faster.\n"
    )


def numbers_growth(g: dict, d: dict) -> str:
    """Step 13: why step 13 slows down as the text grows (generate.py, decode_ops.py)."""
    lengths = g["lengths"]
    pasts = [16, 80, 270]

    def row(kind: str, how: str, p: int) -> float:
        return _decode(d, f"{kind}, P = {p}", how)

    steps = [row("decode step", "step 13", p) for p in pasts]
    grown = steps[-1] - steps[0]
    append = "concat on the position axis"
    scores = "q @ Kᵀ"
    ops = 2 * (row("append one position", append, 270) - row("append one position", append, 16))
    ops += row("query against the keys", scores, 270) - row("query against the keys", scores, 16)
    table = ["| cached positions P | " + " | ".join(map(str, pasts)) + " |"]
    table.append("|---|" + "---:|" * len(pasts))
    for kind, how, label in [
        ("append one position", append, "append one position to the keys: `F.concat` on the "
         "position axis"),
        ("append one position", "concat on axis 0, same bytes", "the same bytes concatenated "
         "on axis 0"),
        ("query against the keys", scores, "scores: `q @ Kᵀ`"),
        ("query against the keys", "(K @ qᵀ)ᵀ", "scores: `(K @ qᵀ)ᵀ`"),
    ]:  # fmt: skip
        table.append(f"| {label} | " + " | ".join(_ms(row(kind, how, p)) for p in pasts) + " |")
    concat_ratio = row("append one position", append, 270) / row(
        "append one position", "concat on axis 0, same bytes", 270
    )
    score_ratios = [
        row("query against the keys", scores, p) / row("query against the keys", "(K @ qᵀ)ᵀ", p)
        for p in (pasts[0], pasts[-1])
    ]
    rates = [_rate(g, n, STEP13) for n in lengths]
    return (
        f"From {rates[0]:.1f} tokens/s over {lengths[0]} new tokens to "
        + _and([f"{r:.1f} over {n}" for r, n in zip(rates[1:], lengths[1:], strict=True)])
        + " in generate.py's run: the\ncost per token grows. In decode_ops.py's run one decode "
        "step took "
        + f"{_ms(steps[0])} ms with {pasts[0]} cached positions, "
        + _and([f"{_ms(x)} with {p}" for x, p in zip(steps[1:], pasts[1:], strict=True)])
        + ". Two operations grow with P too; the same run timed them alone, in all 12 layers "
        "together (milliseconds). From "
        f"P = {pasts[0]} to {pasts[-1]} they grew by {_ms(ops)} ms (the append counted twice, "
        f"for keys and values) while the step grew by {_ms(grown)} ms: "
        + (
            "the step did not grow in this run, so the operations' growth has nothing to "
            "explain here."
            if grown <= 0
            else f"{ops / grown:.0%} of the growth."
            if ops <= grown
            else "more than the step itself, timed alone on a busy machine, so read them for "
            "their trend, not their sum."
        )
        + "\n\n"
        + "\n".join(table)
        + "\n\nAppending copies the whole cache every step, twice (keys and values), and at P = "
        f"{pasts[-1]}\nMAX's concatenation along the position axis took {concat_ratio:.1f}× as "
        "long as the same bytes along\nthe outermost axis. Scoring against a transposed `K` "
        f"took {score_ratios[0]:.1f}× as long as the other\norder at P = {pasts[0]} and "
        f"{score_ratios[1]:.1f}× at {pasts[-1]}. HuggingFace's cache copies too (`torch.cat`), "
        f"and in\ngenerate.py's run it kept "
        + _and([f"{_rate(g, n, HF):.1f} tokens/s over {n}" for n in lengths[1:]])
        + ".\n"
    )


def numbers_copy_free(g: dict, d: dict) -> str:
    """Step 13: the copy-free rewrite of the decode step (decode_ops.py)."""
    pasts = [16, 80, 270]
    ours = [_decode(d, f"decode step, P = {p}", "step 13") for p in pasts]
    free = [_decode(d, f"decode step, P = {p}", "copy-free rewrite (same logits)") for p in pasts]
    return (
        "It gives the same logits (the script checks), and in its run its decode step took "
        + _and([f"{_ms(f)} ms at P = {p}" for f, p in zip(free, pasts, strict=True)])
        + ",\nagainst step 13's "
        + _and([_ms(o) for o in ours])
        + ": step 13 took "
        + _and([f"{o / f:.2f}× as long at {p}" for o, f, p in zip(ours, free, pasts, strict=True)])
        + ". Step 13 keeps the plainer code.\n"
    )


def numbers_fast(g: dict, d: dict) -> str:
    """Step 13: gpt2.fast against step 13 and HuggingFace (generate.py)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from gpt2.fast import capacity_for

    lengths = g["lengths"]
    first, last = lengths[0], lengths[-1]
    rows = [
        (HF, "HuggingFace `generate`"),
        (STEP13, "step 13"),
        (ONE_BY_ONE, "`gpt2.fast`, one token per run"),
        (FAST, "`gpt2.fast` (guesses checked)"),
    ]
    table = [
        f"| | {first} new tokens | " + " | ".join(map(str, lengths[1:])) + " |",
        "|---|" + "---:|" * len(lengths),
    ]
    for name, label in rows:
        table.append(
            f"| {label} | " + " | ".join(f"{_rate(g, n, name):.1f}" for n in lengths) + " |"
        )
    kept = []
    for n in lengths:
        k, runs = g["runs"][str(n)]["guesses_kept"], len(g["runs"][str(n)]["seconds"][FAST])
        kept.append(f"{k['kept']} of {k['guessed']}" + (f" ({runs} runs)" if runs > 1 else ""))
    table.append("| guesses float32 kept | " + " | ".join(kept) + " |")
    near, far = sorted(g["decode_step_ms"], key=int)
    steps = g["decode_step_ms"]
    n_positions = 1024
    cap_near = capacity_for(first + g["prompt_tokens"], n_positions)
    cap_far = capacity_for(int(far) + 1, n_positions)
    floor = g["floor"]
    share = {
        name: _rate(g, first, name) / floor["tokens_per_second"] for name in (ONE_BY_ONE, FAST)
    }
    held = [
        f"{g['runs'][str(n)]['guesses_kept']['kept'] / g['runs'][str(n)]['guesses_kept']['guessed']:.0%}"
        f" at {n}"
        for n in lengths
    ]
    return (
        "\n".join(table)
        + "\n\nTokens per second, the same ids everywhere. One decode step of `gpt2.fast` took "
        f"{_ms(steps[near]['fast'])} ms\nwith {near} cached positions (a {first}-token run's "
        f"capacity, {cap_near}) and {_ms(steps[far]['fast'])} ms with {far} (capacity "
        f"{cap_far}),\n{steps[far]['fast'] / steps[near]['fast']:.2f}×, where step 13 took "
        f"{_ms(steps[near]['step 13'])} and {_ms(steps[far]['step 13'])} ms "
        f"({steps[far]['step 13'] / steps[near]['step 13']:.1f}×): what is left of the growth "
        f"is\nreading a cache {cap_far // cap_near} times larger. A drafter step took "
        f"{_ms(steps[near]['fast drafter'])} ms. Multiplying one row\nby the "
        f"{floor['matrices']} weight matrices with NumPy took {_ms(floor['one_row_products_ms'])}"
        f" ms ({floor['tokens_per_second']:.1f} tokens/s, measured before\nMAX started its "
        f"threads): at {first} tokens one float32 token per run reaches "
        f"{share[ONE_BY_ONE]:.0%} of that,\nthe guesses {share[FAST]:.0%}, because one float32 "
        "pass settles several tokens while the drafter\nreads a fifth of the bytes. How often a "
        f"guess holds depends on the text ({_and(held)}\non these random weights; each miss "
        "costs the check that found it), and the cache's own reads\ngrow with the text: "
        f"`gpt2.fast` made {_rate(g, last, FAST) / _rate(g, last, HF):.2f}× HuggingFace's "
        f"tokens/s at {last} tokens. Our process\npeaked at {g['peak_memory_mb']:.0f} MB "
        "after all the runs (its three `gpt2.fast` graphs, step 12's and\nstep 13's); "
        f"HuggingFace's, a process of its own, at {g['peak_memory_mb_huggingface']:.0f} MB. "
        "Run it yourself with\n`python -m gpt2 --fast` (the next section).\n"
    )


def numbers_serve_load(g: dict, d: dict) -> str:
    """Step 14: the server under load (serve_load.py)."""
    import json

    s = json.loads(SERVE_LOAD.read_text())
    c, q = s["concurrent"], s["sequential"]
    arch, cores = s["machine"].split(", ")  # "x86_64, 2 cores"
    rows = [
        (f"{s['requests']} requests at once", c),
        ("the same, one at a time", q),
    ]
    table = ["| | tokens/s | latency p50 | latency p95 |", "|---|---:|---:|---:|"]
    for label, r in rows:
        table.append(
            f"| {label} | {r['tokens_per_s']:.0f} | {r['latency_p50_s']:.2f} s "
            f"| {r['latency_p95_s']:.2f} s |"
        )
    facts = [
        f"every request was answered with its {s['max_tokens']} tokens"
        if s["all_answered"]
        else f"some requests were not answered with their {s['max_tokens']} tokens",
        "the batched answers equal the one-at-a-time ones id for id"
        if s["same_ids"]
        else "the batched answers differ from the one-at-a-time ones",
        "the server was healthy after"
        if s["healthy_after"]
        else "the server was not healthy after",
    ]
    return (
        f"`python benchmarks/serve_load.py --json book/data/serve-load-cpu.json` starts the "
        f"server on the\ntiny GPT-2 ({s['device'].upper()}, loopback, `--max-batch-size "
        f"{s['max_batch_size']}`) and sends the same {s['requests']} requests\n(prompts of 4–19"
        f" tokens, {s['max_tokens']} new tokens each, greedy) all at once, then one at a time. "
        f"The run\nthe book quotes, on a {cores.split()[0]}-core {arch} machine:\n\n"
        + "\n".join(table)
        + f"\n\nIn that run {_and(facts)}. The server was ready\n{s['startup_s']:.0f} s after it "
        "was started (MAX's compiled graphs cached). Batching gave "
        f"{c['tokens_per_s'] / q['tokens_per_s']:.1f}× the\ntokens per second.\n"
    )


def numbers_readme_serving(g: dict, d: dict) -> str:
    """README's line on serving (serve_load.py), the run step 14's chapter quotes."""
    import json

    s = json.loads(SERVE_LOAD.read_text())
    c, q = s["concurrent"], s["sequential"]
    verdicts = [
        "every request answered" if s["all_answered"] else "NOT every request answered",
        "the same ids both ways" if s["same_ids"] else "DIFFERENT ids both ways",
        "the server healthy after" if s["healthy_after"] else "the server NOT healthy after",
    ]
    return (
        "- **Serving** (`python benchmarks/serve_load.py --json book/data/serve-load-cpu.json`, "
        f"MAX's server on the tiny GPT-2, {s['device'].upper()}): {s['requests']} requests at "
        f"once, {c['tokens_per_s']:.0f} tokens/s, latency p50 {c['latency_p50_s']:.2f} s; the "
        f"same {s['requests']} one at a time, {q['tokens_per_s']:.0f} tokens/s; "
        + "; ".join(verdicts)
        + ".\n"
    )


KERNELS = DATA / "kernels-cpu.json"  # benchmarks/kernels.py --json
KERNEL_LOOP = [  # kernels.py's edit-loop runs → the chapter's row label
    ("a_new_source", "a file Mojo and MAX have never seen"),
    ("b_unchanged", "the same file again, unchanged"),
    ("c_one_line_edit", "after a one-line edit"),
    ("d_empty_caches", "the very first check: MAX's cache and the checker's empty"),
]
KERNEL_HOW = [  # kernels.py's GELU runs → the chapter's column head
    ("numpy", "NumPy (float32)"),
    ("Mojo kernel", "your kernel (the reference)"),
    ("MAX gelu(tanh)", 'MAX\'s `gelu(x, approximate="tanh")`'),
]


def _seconds(x: float) -> str:
    return f"{x:.1f} s" if x < 10 else f"{x:.0f} s"


def _recorded_run(path: Path) -> tuple[dict, str]:
    """A benchmark's recorded run, and how to name the machine it ran on."""
    import json

    k = json.loads(path.read_text())
    arch, cores = k["machine"].split(", ")  # "x86_64, 2 cores"
    machine = f"a {cores.split()[0]}-core {arch} CPU"
    if "load_average_at_start" in k:  # not recorded by every benchmark
        machine += f", load average {k['load_average_at_start'][0]:.1f} at the start"
    return k, machine


def _edit_loop_table(step: int, loop: dict) -> tuple[list[str], str]:
    """A kernel step's recorded edit loop as a table, and whether every check passed."""
    table = [
        f"| `python -m checks {step} --file …` | wall time | compiling, as the check announced it |",
        "|---|---:|---:|",
    ]
    for key, label in KERNEL_LOOP:
        run = loop.get(key)
        if run is None:
            continue
        if not run["finished"]:
            table.append(f"| {label} | not done in {_seconds(run['timeout_s'])} | |")
            continue
        said = run["compile_reported_s"]
        table.append(
            f"| {label} | {_seconds(run['wall_s'])} "
            f"| {_seconds(said) if run['compile_reports'] else 'none announced'} |"
        )
    every = [loop[key] for key, _ in KERNEL_LOOP if key in loop and loop[key]["finished"]]
    verdict = (
        "every one of these checks passed"
        if all(run["passed"] for run in every)
        else "NOT every one of these checks passed"
    )
    return table, verdict


def numbers_kernel_compile(g: dict, d: dict) -> str:
    """Step 15: what a check of a kernel costs, compiling included (kernels.py)."""
    k, machine = _recorded_run(KERNELS)
    loop = k["edit_loop"]
    table, verdict = _edit_loop_table(15, loop)
    a, b, c = loop["a_new_source"], loop["b_unchanged"], loop["c_one_line_edit"]
    cold = loop.get("d_empty_caches")
    if cold is None:
        cold_text = "This run did not time a check with empty caches (`--cold`)."
    elif not cold["finished"]:
        cold_text = (
            f"With MAX's cache empty, the check did not finish within "
            f"{_seconds(cold['timeout_s'])}."
        )
    else:
        unattributed = cold["wall_s"] - cold["compile_reported_s"]
        cold_text = (
            f"With both caches empty, the first check on a machine took "
            f"{_seconds(cold['wall_s'])}, of which it announced "
            f"{_seconds(cold['compile_reported_s'])} as compiling: your kernel, then the "
            "MAX kernels the check runs around it (step 04's MLP, in the last case, among them)"
            + (
                f" ({_seconds(unattributed)} it did not attribute)"
                if unattributed > 0.1 * cold["wall_s"]
                else ""
            )
            + ". That happens once: the caches are kept."
        )
    return (
        "`python benchmarks/kernels.py --json book/data/kernels-cpu.json` runs the check as "
        f"you do, a new process each time, and times it from outside ({machine}; the "
        "checker's background warm-up off). Its file is the reference with √(2/π) written "
        "with a few more digits, random in each run: the same float32 numbers, but code no "
        "cache has seen. The check announces only compiles that last a few seconds.\n\n"
        + "\n".join(table)
        + f"\n\nIn that run {verdict}. A new file cost {_seconds(a['wall_s'])} and the same "
        f"file again {_seconds(b['wall_s'])}: the new one took "
        f"{a['wall_s'] / b['wall_s']:.1f}× as long. The unchanged file was not compiled "
        "again, yet the check still announced "
        f"{_seconds(b['compile_reported_s'])} under the same words: each check is a new "
        "process, in which MAX loads the package and finds the compiled kernel in its "
        f"cache. A one-line edit is a new file again ({_seconds(c['wall_s'])}). " + cold_text + "\n"
    )


def numbers_kernel_speed(g: dict, d: dict) -> str:
    """Step 15: the kernel's speed against MAX's own GELU and NumPy (kernels.py)."""
    k, machine = _recorded_run(KERNELS)
    rows = k["gelu"]["rows"]
    table = [
        "| rows of 3072 | " + " | ".join(head for _, head in KERNEL_HOW) + " |",
        "|---:|" + "---:|" * len(KERNEL_HOW),
    ]
    for row in rows:
        table.append(
            f"| {row['rows']} | "
            + " | ".join(f"{row[key]['us']:.0f}" for key, _ in KERNEL_HOW)
            + " |"
        )
    first, last = rows[0], rows[-1]
    mojo, own = "Mojo kernel", "MAX gelu(tanh)"
    spread = max(
        max(r[key]["q3_us"] - r[key]["us"], r[key]["us"] - r[key]["q1_us"]) / r[key]["us"]
        for r in rows
        for key, _ in KERNEL_HOW
    )
    errors = {key: max(r["max_abs_error_vs_float64"][key] for r in rows) for key in (mojo, own)}
    agree = "agreed" if k["gelu"]["all_agree"] else "did NOT agree"
    return (
        f"Microseconds per call, medians of {k['repeats']} calls after a warm-up, each GELU "
        "the only op of a graph compiled once (`max.graph.Graph`, an `InferenceSession` on "
        f"the CPU), from the same run ({machine}); the middle half of each cell's calls lay "
        f"within {spread:.0%} of its median:\n\n"
        + "\n".join(table)
        + f"\n\nFrom {first['rows']} row to {last['rows']} rows your kernel went from "
        f"{first[mojo]['us']:.0f} to {last[mojo]['us']:.0f} µs, and NumPy from "
        f"{first['numpy']['us']:.0f} to {last['numpy']['us']:.0f} µs. At {last['rows']} rows "
        f"the kernel took {last[mojo]['us'] / last[own]['us']:.2f}× MAX's time; at "
        f"{first['rows']} row, {first[mojo]['us'] / first[own]['us']:.1f}×. All three "
        f"{agree} with the formula computed in float64: the kernel's largest difference was "
        f"{errors[mojo]:.1e}, MAX's {errors[own]:.1e}." + _threads_floor(rows, mojo, own) + "\n"
    )


def _threads_floor(rows: list[dict], mojo: str, own: str) -> str:
    """What the kernel's and MAX's times say about handing rows to threads, if they say it."""
    first, middle, last = rows[0], rows[1], rows[-1]
    flat = last[own]["us"] < 1.5 * middle[own]["us"] and last[mojo]["us"] < 1.5 * first[mojo]["us"]
    if not (flat and first[own]["us"] * 5 < first[mojo]["us"]):
        return ""
    return (
        f" From {middle['rows']} rows to {last['rows']}, {last['rows'] // middle['rows']}× the "
        f"numbers, MAX's GELU went from {middle[own]['us']:.0f} to {last[own]['us']:.0f} µs: at "
        "these sizes both ops spend their time handing the rows to the worker threads and "
        "waiting for them, not computing. Your kernel pays that even for a single row, where "
        f"MAX's took {first[own]['us']:.0f} µs."
    )


ATTENTION = DATA / "decode-attention-cpu.json"  # benchmarks/decode_attention.py --json
COMPOSED, FUSED = "MAX composed ops", "Mojo kernel"


def numbers_attention_compile(g: dict, d: dict) -> str:
    """Step 16: what a check of the attention kernel costs, compiling included."""
    k, machine = _recorded_run(ATTENTION)
    loop = k["edit_loop"]
    table, verdict = _edit_loop_table(16, loop)
    a, b, c = loop["a_new_source"], loop["b_unchanged"], loop["c_one_line_edit"]
    return (
        "`python benchmarks/decode_attention.py --json book/data/decode-attention-cpu.json` "
        f"runs this step's check as you do, a new process each time ({machine}; the "
        "checker's background warm-up off). Its file is the reference with `1 / sqrt` "
        "written as `1.000000000… / sqrt`, random digits in each run (the same float32 "
        "numbers, code no cache has seen); the one-line edit writes `exp(w - top)` as "
        "`exp(-(top - w))`.\n\n"
        + "\n".join(table)
        + f"\n\nIn that run {verdict}. The first check of a new file took "
        f"{_seconds(a['wall_s'])}, the same file again {_seconds(b['wall_s'])}, and the "
        f"file after the one-line edit {_seconds(c['wall_s'])}: an edit is a new file, "
        "compiled again; an unchanged one never is.\n"
    )


def _ms_row(row: dict, digits: int) -> str:
    """A table row: cached positions (capacity), then each build's median (quartiles)."""
    cells = [
        f"{row[how]['ms']:.{digits}f} ms "
        f"({row[how]['q1_ms']:.{digits}f}–{row[how]['q3_ms']:.{digits}f})"
        for how in (COMPOSED, FUSED)
    ]
    return f"| {row['cached']} ({row['capacity']}) | " + " | ".join(cells) + " |"


def _faster(row: dict) -> str:
    change = row[FUSED]["tokens_per_s"] / row[COMPOSED]["tokens_per_s"] - 1
    return f"{abs(change):.0%} {'faster' if change > 0 else 'slower'}"


def numbers_attention_speed(g: dict, d: dict) -> str:
    """Step 16: gpt2.fast's one-token decode step with MAX's ops and with the kernel."""
    k, machine = _recorded_run(ATTENTION)
    table = [
        "| cached positions (capacity) | MAX's composed ops | your kernel (the reference) |",
        "|---|---:|---:|",
    ]
    table += [_ms_row(row, digits=1) for row in k["steps"]]
    for row in k["generation"]:
        cells = [f"{row[how]['tokens_per_s']:.1f} tokens/s" for how in (COMPOSED, FUSED)]
        table.append(
            f"| greedy, {row['new_tokens']} tokens after a prompt of {row['prompt_tokens']} | "
            + " | ".join(cells)
            + " |"
        )
    table += [
        "",
        "| attention alone, 12 layers: cached positions (capacity) | MAX's composed ops "
        "| your kernel |",
        "|---|---:|---:|",
    ]
    table += [_ms_row(row, digits=2) for row in k["attention_alone"]]
    alone = k["attention_alone"][-1]
    step_cost = k["steps"][-1][COMPOSED]["ms"]
    short, long = k["steps"][0], k["steps"][-1]
    ratio = long[COMPOSED]["ms"] / long[FUSED]["ms"]
    verdict = (
        f"the kernel's step took {1 / ratio:.2f}× the composed one's time"
        if ratio < 1
        else f"the composed step took {ratio:.2f}× the kernel's time"
    )
    same = all(row["same_ids"] for row in k["generation"])
    differs = max(row["max_abs_logit_difference"] for row in k["steps"])
    return (
        f"Milliseconds per decode step of GPT-2 small's shapes (random weights), medians "
        f"of {k['repeats']} steps with their quartiles, the two builds taken in turns; "
        f"then tokens per second of greedy decoding, one float32 token per run; then the "
        f"attention alone, all 12 layers' in one graph, each layer its own cache "
        f"({machine}):\n\n"
        + "\n".join(table)
        + f"\n\nAt {long['cached']} cached positions {verdict}; at {short['cached']}, "
        f"{short[FUSED]['ms']:.1f} ms against {short[COMPOSED]['ms']:.1f} ms."
        + (
            f" (The step after {long['cached']} positions measured no slower than after "
            f"{short['cached']}, which more reading cannot make true: on this shared machine "
            "a millisecond or two between rows is noise. Within a row the two builds ran "
            "in turns.)"
            if long[COMPOSED]["ms"] <= short[COMPOSED]["ms"]
            else ""
        )
        + " Both builds' "
        f"logits agreed to {differs:.0e}, and the two chose "
        + ("the same ids" if same else "DIFFERENT ids")
        + " in every generation. In greedy generation the kernel's build was "
        + _and(
            [
                _faster(row) + f" after {row['prompt_tokens']} prompt tokens"
                for row in k["generation"]
            ]
        )
        + " than the composed one. Alone, the attention of all 12 layers at "
        f"{alone['cached']} cached positions took {alone[COMPOSED]['ms']:.2f} ms with MAX's "
        f"ops and {alone[FUSED]['ms']:.2f} ms with the kernel, out of a "
        f"{step_cost:.1f} ms step: the rest is the weight matrices.\n"
    )


EAGER = DATA / "eager-cpu.json"  # benchmarks/eager.py --json


def numbers_eager_first_use(g: dict, d: dict) -> str:
    """Setup, checks and README: what an eager operation's first run costs."""
    e, machine = _recorded_run(EAGER)
    runs = e["first_use"]
    firsts = sorted(run["first_s"] for run in runs.values())
    slow = [name for name, run in runs.items() if run["first_s"] >= 1]
    second = max(run["second_s"] for run in runs.values())
    return (
        f"Measured by `python benchmarks/eager.py --json book/data/eager-cpu.json` ({machine}, "
        f"Python {e['python']}), five operations run eagerly on small tensors with MAX's cache "
        f"empty: the first run of {_and([f'`{n}`' for n in slow])} took "
        f"{_seconds(min(runs[n]['first_s'] for n in slow))} to "
        f"{_seconds(max(firsts))} (its kernel compiled for this machine)"
        + (
            f", the others under {_seconds(max(r['first_s'] for r in runs.values() if r['first_s'] < 1))}"
            if len(slow) < len(runs)
            else ""
        )
        + f"; every second run took under {second:.2f} s.\n"
    )


def numbers_eager_handler(g: dict, d: dict) -> str:
    """Troubleshooting: an eager addition with Python's default Ctrl-C handler and without."""
    e, machine = _recorded_run(EAGER)
    default, plain = e["default-handler"]["s"], e["plain-handler"]["s"]
    return (
        f"Measured by `python benchmarks/eager.py --json book/data/eager-cpu.json` ({machine}, "
        f"Python {e['python']}): one eager addition of two 4 × 4 tensors took {default:.3f} s "
        f"with the default handler and {plain:.4f} s with a plain one (medians of "
        f"{e['repeats']} runs), {default / plain:.0f}× as long.\n"
    )


COLD_START = DATA / "cold-start-cpu.json"  # benchmarks/cold_start.py --json


def numbers_cold_start(g: dict, d: dict) -> str:
    """README: a learner's first hour from an empty MAX cache (cold_start.py)."""
    c, machine = _recorded_run(COLD_START)
    checks = c["checks"]
    first = next(x for x in checks if x["step"] == "01")
    middle = [x["seconds"] for x in checks if x["step"] not in ("01", "13")]
    last = [f"{x['seconds']:.1f} s ({x['when']})" for x in checks if x["step"] == "13"]
    rejected = sum(x["rejected_for_time"] for x in checks)
    wrong = [x for x in checks if x["step"] != "01" and x["verdict"] != "PASSED"]
    steps = sorted({x["step"] for x in checks if x["step"] not in ("01", "13")})
    styled = [s for s in steps if s != "12"]  # written in cold_start.py's own style
    warmup = (
        f"the warm-up finished after {c['warmup_s'] / 60:.1f} minutes, using at most "
        f"{c['warmup_peak_mb'] / 1000:.1f} GB in all its processes"
        if c["warmup_s"] is not None
        else "the run did not wait for the warm-up"
    )
    return (
        f"What it costs from an empty MAX cache, measured by `python benchmarks/cold_start.py "
        f"--json book/data/cold-start-cpu.json` ({machine}, Python {c['python']}: a fresh "
        f"clone, the first check, {c['reading_s'] / 60:.0f} minutes of reading, then steps "
        f"{_and(styled)} written in a style of their own and steps 12 and 13 as the solutions "
        "have them, each checked, edited by one line and checked again): the first check "
        f"answered {first['verdict']} in {_seconds(first['seconds'])}; steps {steps[0]} to "
        f"{steps[-1]} answered in {min(middle):.1f}–{max(middle):.1f} s, first check or after "
        f"an edit; step 13 in {_and(last)}; "
        + (
            "no correct file was rejected for time"
            if not rejected
            else f"{rejected} checks were rejected for time"
        )
        + (f"; {len(wrong)} correct files did NOT pass" if wrong else "")
        + f"; and {warmup}.\n"
    )


NEWCOMER = DATA / "newcomer-cpu.json"  # benchmarks/newcomer.py --json
CHECK_LATENCY = DATA / "check-latency-cpu.json"  # benchmarks/check_latency.py --json


def numbers_newcomer(g: dict, d: dict) -> str:
    """README: the set-up line and the first check, from a fresh clone (newcomer.py)."""
    n, machine = _recorded_run(NEWCOMER)
    verdict = "answered" if n["first_check_answered"] else "did NOT answer"
    return (
        "A newcomer's first minutes, timed by `python benchmarks/newcomer.py --json "
        f"book/data/newcomer-cpu.json` (a fresh clone, an empty home and MAX cache, Python "
        f"{n['python']} with the {n['bundled_pip']} its `venv` bundles, {machine}): the pip "
        f"set-up line above took {n['setup_s']} s, most of it downloading, and the first "
        f"check, `{n['first_check']}`, {verdict} NOT STARTED {n['first_check_s']} s later.\n"
    )


def numbers_check_latency(g: dict, d: dict) -> str:
    """README: a warm check against the floor of starting Python and importing MAX."""
    import statistics

    c, machine = _recorded_run(CHECK_LATENCY)
    floor, check = statistics.median(c["floor_s"]), statistics.median(c["warm_check_s"])
    return (
        "- **A warm check is about a second.** `python benchmarks/check_latency.py --runs "
        f"{len(c['warm_check_s'])} --json book/data/check-latency-cpu.json` ({machine}, Python "
        f"{c['python']}): a warm `{c['check']}` takes {check:.2f} s (median), against "
        f"{floor:.2f} s for a bare `{c['floor']}`, the floor any check pays "
        f"({check / floor:.2f}×).\n"
    )


CHAPTER_NUMBERS: dict[str, Callable[[dict, dict], str]] = {
    "generate-run": numbers_generate_run,
    "one-row": numbers_one_row,
    "all-matrices": numbers_all_matrices,
    "cache-bound": numbers_cache_bound,
    "growth": numbers_growth,
    "copy-free": numbers_copy_free,
    "fast": numbers_fast,
    "serve-load": numbers_serve_load,
    "readme-serving": numbers_readme_serving,
    "kernel-compile": numbers_kernel_compile,
    "kernel-speed": numbers_kernel_speed,
    "attention-compile": numbers_attention_compile,
    "attention-speed": numbers_attention_speed,
    "eager-first-use": numbers_eager_first_use,
    "eager-handler": numbers_eager_handler,
    "cold-start": numbers_cold_start,
    "newcomer": numbers_newcomer,
    "check-latency": numbers_check_latency,
}


def _wrapped(text: str, width: int = 92) -> str:
    """Paragraphs filled to ``width``, as the chapters are; tables and images as they are."""
    import textwrap

    # A number and its unit stay on one line: joined by a stand-in for the space meanwhile.
    text = re.sub(r"(\d) (?=(?:ms|s|GB|MB|KB|minutes?|seconds?|tokens/s)(?![\w/]))", "\\1\0", text)
    blocks = []
    for block in text.strip("\n").split("\n\n"):
        if block.startswith(("|", "!")):
            blocks.append(block)
        elif block.startswith("- "):  # one list item
            blocks.append(
                textwrap.fill(
                    " ".join(block[2:].split()),
                    width=width,
                    initial_indent="- ",
                    subsequent_indent="  ",
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
        else:
            blocks.append(
                textwrap.fill(
                    " ".join(block.split()),
                    width=width,
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
    text = "\n\n".join(blocks).replace("\0", " ") + "\n"
    for line in text.splitlines()[1:]:  # a line markdown would read as a list or a heading
        if re.match(r"\s*(\d+[.)]|[-*+>#]) ", line):
            raise ValueError(f"a wrapped line starts like markdown syntax: {line!r}")
    return text


def chapter_with_numbers(text: str, g: dict, d: dict) -> str:
    """``text`` with every generated region rendered anew from the recorded runs."""

    def render(m: re.Match) -> str:
        name = m.group(2)
        if name not in CHAPTER_NUMBERS:
            raise KeyError(
                f"no renderer for <!-- numbers: {name} -->; known: {list(CHAPTER_NUMBERS)}"
            )
        return m.group(1) + _wrapped(CHAPTER_NUMBERS[name](g, d)) + m.group(4)

    return REGION.sub(render, text)


def recorded_runs() -> tuple[dict, dict]:
    import json

    return json.loads(BENCHMARK.read_text()), json.loads(DECODE_OPS.read_text())


def write_chapters() -> list[Path]:
    """Rewrite the generated regions of every chapter (and README) that has some; returns the
    pages changed."""
    g, d = recorded_runs()
    changed = []
    for page in [*sorted((ROOT / "book" / "src").glob("*.md")), README]:
        text = page.read_text()
        new = chapter_with_numbers(text, g, d)
        if new != text:
            page.write_text(new)
            changed.append(page)
    return changed


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Figure:
    name: str
    files: tuple[str, ...]
    draw: Callable[[Path], None]
    needs_max: bool  # computed with the course's own code through MAX (slower)


FIGURES_LIST = (
    Figure("mask", ("causal_mask.svg",), fig_mask, needs_max=True),
    Figure("architecture", ("gpt2_architecture.svg",), fig_architecture, needs_max=False),
    Figure("shapes", ("shapes.svg",), fig_shapes, needs_max=False),
    Figure("attention", ("attention_pattern.svg",), fig_attention, needs_max=True),
    # From a stored benchmark run (book/data/generate-cpu.json): refresh that file with
    # python benchmarks/generate.py --json book/data/generate-cpu.json, then redraw.
    Figure("speed", ("tokens_per_second.svg",), fig_speed, needs_max=False),
)


def by_name() -> dict[str, Figure]:
    return {f.name: f for f in FIGURES_LIST}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help="figures to draw, or chapters (default: all, and chapters)"
    )
    parser.add_argument("--out", type=Path, default=FIGURES, help="output folder")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    args = parser.parse_args(argv)
    figures = by_name()
    if args.list:
        for f in FIGURES_LIST:
            print(f"{f.name:14} {', '.join(f.files)}{'  (needs MAX)' if f.needs_max else ''}")
        print(f"{'chapters':14} the <!-- numbers: … --> regions of book/src/*.md")
        return 0
    unknown = [n for n in args.names if n not in figures and n != "chapters"]
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(unknown)}; known: {', '.join(figures)}")
    for name in args.names or [*figures, "chapters"]:
        if name == "chapters":
            changed = write_chapters()
            for page in changed:
                print(f"rewrote the measured numbers of {page.relative_to(ROOT)}")
            if not changed:
                print("every chapter's measured numbers are up to date")
            continue
        figure = figures[name]
        figure.draw(args.out)
        for file in figure.files:
            print(f"wrote {args.out / file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
