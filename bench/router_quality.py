"""Routing quality on MMLU: does the complexity score send the right prompts to the strong model?

    .venv/bin/python bench/router_quality.py [--data DIR] [--json] [--no-embedding]

Data: ../shared/data/routellm-mmlu (RouteLLM's per-prompt correctness of Mixtral-8x7B, the
weak model, and GPT-4-1106, the strong one, on 14,042 MMLU prompts; its contaminated prompts are
dropped). A router's score ranks prompts; sending the top share s to the strong model gives an
accuracy acc(s). Reported, on the TEST half only:

- PGR(s) = (acc(s) - acc_weak) / (acc_strong - acc_weak): the share of the quality gap recovered.
- APGR: the mean of PGR over s in [0, 1] (area under the PGR curve); a random router scores 0.5.
- CPT(x): the smallest share of strong calls that recovers x of the gap.
- accuracy and strong share at the router's own tier thresholds (0.35, 0.5, 0.65).

Routers: random; the shipped heuristic and embedding scorers and their combination (none of them
tuned on MMLU: weights and examples were written for chat messages); the heuristic's own signals
re-weighted by a least-squares fit on the DEV half; a kNN router calibrated on
the DEV half (score = similarity-weighted share of the k nearest DEV prompts the weak model got
wrong and the strong one right, minus the reverse: the expected gain of a strong call, in the
same embedding space); and the oracle, for scale. The split is a seeded 50/50 by
prompt hash; `--split subject` holds out whole subjects instead (a harder test for kNN).
Embeddings are cached under ~/.cache/switchboard-bench/ (about 2 minutes to compute on 2 cores).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routing import embedding
from routing.catalog import Catalog
from routing.complexity import EmbeddingScorer, HeuristicScorer
from routing.examples import DEFAULT_EXAMPLES

# the shared data folder lies beside the repository (SWITCHBOARD_DATA overrides)
DATA = (
    Path(os.environ.get("SWITCHBOARD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "routellm-mmlu"
)
CACHE = Path.home() / ".cache" / "switchboard-bench"
GRID = np.linspace(0.0, 1.0, 201)
THRESHOLDS = (0.35, 0.5, 0.65)


@dataclass
class Item:
    prompt: str
    subject: str
    weak: bool
    strong: bool


def load(data: Path) -> list[Item]:
    contaminated = set()
    cpath = data / "contaminated_prompts.jsonl"
    if cpath.exists():
        for line in cpath.read_text(encoding="utf-8").splitlines():
            if line.strip():
                contaminated.add(json.loads(line)["eval_prompt"])
    items = []
    csv.field_size_limit(10_000_000)
    for f in sorted(data.glob("mmlu_*.csv")):
        subject = f.stem.removeprefix("mmlu_")
        with f.open(newline="", encoding="utf-8") as fh:
            rows = csv.reader(fh)
            next(rows)
            for prompt, weak, strong in rows:
                if prompt in contaminated:
                    continue
                items.append(Item(prompt, subject, weak == "True", strong == "True"))
    return items


def split(items: list[Item], how: str, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    if how == "subject":
        subjects = sorted({i.subject for i in items})
        test_subjects = {s for s in subjects if int(hashlib.sha1(f"{seed}:{s}".encode()).hexdigest(), 16) % 2}
        is_test = np.array([i.subject in test_subjects for i in items])
    else:
        is_test = np.array([int(hashlib.sha1(f"{seed}:{i.prompt}".encode()).hexdigest(), 16) % 2 == 1 for i in items])
    return np.where(~is_test)[0], np.where(is_test)[0]


def curve(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy when the top-k prompts by score go to the strong model, k = 0..n (ties broken at random)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(scores)), -scores))
    gain = strong[order].astype(float) - weak[order].astype(float)
    acc = (weak.sum() + np.concatenate([[0.0], np.cumsum(gain)])) / len(scores)
    share = np.arange(len(scores) + 1) / len(scores)
    return share, acc


def metrics(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray, seeds: int = 5) -> dict[str, float]:
    aw, as_ = weak.mean(), strong.mean()
    pgrs = []
    for s in range(seeds):
        share, acc = curve(scores, weak, strong, seed=s)
        pgrs.append(np.interp(GRID, share, (acc - aw) / (as_ - aw)))
    pgr = np.mean(pgrs, axis=0)
    apgr = float(np.trapezoid(pgr, GRID)) if hasattr(np, "trapezoid") else float(np.trapz(pgr, GRID))

    def cpt(x: float) -> float:
        hit = np.where(pgr >= x)[0]
        return float(GRID[hit[0]]) if len(hit) else 1.0

    out = {"apgr": round(apgr, 4), "cpt50": round(cpt(0.5), 4), "cpt80": round(cpt(0.8), 4)}
    # the threshold sweep, read at every 10% of strong calls: accuracy there
    acc_curve = aw + pgr * (as_ - aw)
    for d in range(0, 101, 10):
        out[f"acc_at_{d}pct"] = round(float(np.interp(d / 100, GRID, acc_curve)), 4)
    for t in THRESHOLDS:
        routed = scores >= t
        acc = np.where(routed, strong, weak).mean()
        out[f"share@{t}"] = round(float(routed.mean()), 4)
        out[f"acc@{t}"] = round(float(acc), 4)
    return out


def vectors(items: list[Item], enc: embedding.Encoder) -> np.ndarray:
    variant = f"|{embedding.MAX_TOKENS}|{Path(enc.model_path).name}"
    key = hashlib.sha1(("|".join(i.prompt for i in items) + variant).encode()).hexdigest()[:16]
    path = CACHE / f"mmlu-minilm-{key}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.perf_counter()
    vecs = np.stack([enc.encode(i.prompt) for i in items])
    print(f"  encoded {len(items)} prompts in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def knn_scores(train_v: np.ndarray, train_y: np.ndarray, test_v: np.ndarray, k: int) -> np.ndarray:
    out = np.empty(len(test_v), dtype=np.float64)
    for start in range(0, len(test_v), 1024):
        sims = test_v[start : start + 1024] @ train_v.T
        idx = np.argpartition(-sims, k, axis=1)[:, :k]
        s = np.take_along_axis(sims, idx, axis=1)
        w = np.exp(s / 0.05)
        out[start : start + 1024] = (w * train_y[idx]).sum(1) / w.sum(1)
    return out


FEATURES = (
    "chars",
    "code block",
    "code syntax",
    "code task",
    "code terms",
    "math",
    "arithmetic",
    "reasoning",
    "questions",
    "parts",
)


def heuristic_features(h: HeuristicScorer, prompt: str) -> list[float]:
    """The heuristic's signal points by kind (the same features, for a fit on DEV)."""
    row = [0.0] * (len(FEATURES) + 1)
    for name, pts in h.score(prompt).signals:
        for j, f in enumerate(FEATURES):
            if f in name:
                row[j] += pts
                break
    row[-1] = 1.0
    return row


def bill(
    share: float, catalog: Catalog, weak_ref: str, strong_ref: str, in_tok: int = 600, out_tok: int = 300
) -> float:
    w, s = catalog.resolve(weak_ref), catalog.resolve(strong_ref)
    return 1000 * ((1 - share) * w.cost(in_tok, out_tok) + share * s.cost(in_tok, out_tok))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", choices=["random", "subject"], default="random")
    ap.add_argument("--no-embedding", action="store_true")
    ap.add_argument("--k", type=int, default=30, help="neighbours for the calibrated kNN router (chosen on DEV)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    items = load(args.data)
    dev, test = split(items, args.split)
    weak = np.array([i.weak for i in items])
    strong = np.array([i.strong for i in items])
    wt, st = weak[test], strong[test]
    print(
        f"MMLU: {len(items)} prompts ({len(dev)} dev / {len(test)} test, split={args.split}); "
        f"test accuracy weak {wt.mean():.3f}, strong {st.mean():.3f}",
        file=sys.stderr,
    )
    results: dict[str, dict[str, float]] = {}
    rng = np.random.default_rng(1)
    results["random"] = metrics(rng.random(len(test)), wt, st)

    h = HeuristicScorer()
    t0 = time.perf_counter()
    hs = np.array([h.score(items[i].prompt).score for i in test])
    heur_us = (time.perf_counter() - t0) / len(test) * 1e6
    results["heuristic"] = metrics(hs, wt, st)
    # the same signals, weighted by a least-squares fit on DEV to the gain of a strong call
    gain = strong.astype(float) - weak.astype(float)
    x_dev = np.array([heuristic_features(h, items[i].prompt) for i in dev])
    coef, *_ = np.linalg.lstsq(x_dev, gain[dev], rcond=None)
    x_test = np.array([heuristic_features(h, items[i].prompt) for i in test])
    results["heuristic-dev-fit"] = metrics(x_test @ coef, wt, st)
    fit_coef = {f: round(float(c), 4) for f, c in zip(FEATURES + ("bias",), coef, strict=False)}

    use_emb = not args.no_embedding and embedding.available()
    if use_emb:
        enc = embedding.shared_encoder()
        vecs = vectors(items, enc)
        es = EmbeddingScorer(DEFAULT_EXAMPLES, encoder=enc)
        emb = np.array([es.score_vector(vecs[i]).score for i in test])
        results["embedding"] = metrics(emb, wt, st)
        results["combined"] = metrics(0.5 * hs + 0.5 * emb, wt, st)
        # calibrated on DEV: choose k on a DEV-internal split, then score TEST from all of DEV
        y = strong.astype(float) - weak.astype(float)  # the gain of asking the strong model
        dv = vecs[dev]
        half = len(dev) // 2
        best_k, best = args.k, -1.0
        for k in (10, 30, 100, 300):
            a = metrics(
                knn_scores(dv[:half], y[dev][:half], dv[half:], k), weak[dev][half:], strong[dev][half:], seeds=1
            )["apgr"]
            if a > best:
                best_k, best = k, a
        results[f"knn-dev (k={best_k})"] = metrics(knn_scores(dv, y[dev], vecs[test], best_k), wt, st)
    results["oracle"] = metrics((st & ~wt).astype(float), wt, st, seeds=1)

    catalog = Catalog.from_config(__import__("bot.config", fromlist=["parse"]).parse({}, env={}))
    weak_ref, strong_ref = "cerebras/llama-3.3-70b", "anthropic/claude-sonnet-5-5"
    costs = {
        "all_weak": round(bill(0.0, catalog, weak_ref, strong_ref), 3),
        "all_strong": round(bill(1.0, catalog, weak_ref, strong_ref), 3),
    }
    for r in results.values():
        r["usd_per_1k_at_cpt50"] = round(bill(r["cpt50"], catalog, weak_ref, strong_ref), 3)
        r["usd_per_1k_at_cpt80"] = round(bill(r["cpt80"], catalog, weak_ref, strong_ref), 3)

    meta = {
        "prompts": len(items),
        "dev": len(dev),
        "test": len(test),
        "split": args.split,
        "test_acc_weak": round(float(wt.mean()), 4),
        "test_acc_strong": round(float(st.mean()), 4),
        "heuristic_us_per_prompt": round(heur_us, 1),
        "bill_models": {"weak": weak_ref, "strong": strong_ref, "tokens_per_message": "600 in / 300 out"},
        "usd_per_1k_messages": costs,
        "heuristic_dev_fit_coef": fit_coef,
    }
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return 0
    print(
        f"test split: {meta['test']} prompts ({args.split}); accuracy weak {meta['test_acc_weak']:.3f}, "
        f"strong {meta['test_acc_strong']:.3f}"
    )
    hdr = (
        f"{'router':<20} {'APGR':>6} {'CPT50':>6} {'CPT80':>6}"
        + "".join(f" {'@' + str(t) + ' strong/acc':>17}" for t in THRESHOLDS)
        + f" {'$/1k@CPT50':>11} {'$/1k@CPT80':>11}"
    )
    print(hdr)
    for name, r in results.items():
        line = f"{name:<20} {r['apgr']:>6.3f} {r['cpt50']:>6.1%} {r['cpt80']:>6.1%}"
        for t in THRESHOLDS:
            line += f" {r[f'share@{t}']:>8.1%}/{r[f'acc@{t}']:.3f}"
        line += f" {r['usd_per_1k_at_cpt50']:>11.3f} {r['usd_per_1k_at_cpt80']:>11.3f}"
        print(line)
    print("\naccuracy as the threshold sweeps, read at each share of strong-model calls:")
    print(f"{'router':<20}" + "".join(f" {d:>5}%" for d in range(0, 101, 10)))
    for name, r in results.items():
        print(f"{name:<20}" + "".join(f" {r[f'acc_at_{d}pct']:>6.3f}" for d in range(0, 101, 10)))
    print("heuristic-dev-fit weights (gain per signal point):", ", ".join(f"{k} {v:+.3f}" for k, v in fit_coef.items()))
    print(
        "(the @threshold columns mean nothing for heuristic-dev-fit and knn-dev: their scores are not on the tier scale)"
    )
    print(
        f"bill per 1,000 messages of 600 in / 300 out tokens: all {weak_ref} ${costs['all_weak']:.3f}, "
        f"all {strong_ref} ${costs['all_strong']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
