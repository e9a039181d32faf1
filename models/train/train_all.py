#!/usr/bin/python3
"""Train the bundled models from scratch, on one CPU thread, deterministically.

    /usr/bin/python3 models/train/train_all.py [--work build/models-train] [--out models]

Needs Debian's python3-torch, python3-sentencepiece, python3-numpy (installed
with apt-get when missing and run as root) and the corpus that
build_corpus.py writes (run first when WORK/corpus is missing).

Steps (every random choice comes from a generator seeded below):
  1. SentencePiece BPE tokenizer, 8000 pieces, on the French training lines;
  2. fr-clm:  CamembertForCausalLM from random init, next-token loss;
  3. fr-mlm:  CamembertForMaskedLM initialised from fr-clm, 15 % masking (80/10/10);
  4. langid:  CamembertForSequenceClassification fr/de/es/en, from random init
              with its own tokenizer on its sentences of the four languages;
  5. each model's weights rounded to float16, held-out metrics computed with
     the rounded weights (what is shipped), HF model directory written to OUT.
A summary (hyper-parameters, sizes, times, metrics) goes to WORK/report.json.
"""
import argparse
import shutil
import json
import math
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)


def ensure_python_packages():
    try:
        import torch  # noqa: F401
        import sentencepiece  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        if os.geteuid() != 0:
            sys.exit("needs Debian's python3-torch python3-sentencepiece python3-numpy")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "python3-torch", "python3-sentencepiece",
                        "python3-numpy"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


ensure_python_packages()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import sentencepiece as spm  # noqa: E402

from verify import load as load_dir  # noqa: E402
from camembert_torch import (BOS, EOS, PAD, Camembert, CamembertIds, Config,  # noqa: E402
                             round_weights_, save_model_dir)

SEED = 20240601
THREADS = 1              # torch intra-op threads
MAX_LEN = 128            # tokens per sequence, <s> and </s> included
MAX_POS = MAX_LEN + 2    # max_position_embeddings
SP_VOCAB = 8000

ARCH = dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=4, intermediate_size=768)
MLM = dict(steps=1800, max_tokens=2048, lr=1e-3, warmup=50, weight_decay=0.01, dropout=0.0,
           mask_prob=0.15)
CLM = dict(steps=900, max_tokens=2048, lr=1e-3, warmup=50, weight_decay=0.01, dropout=0.0)
# training sentences per language taken from each source (man pages, gettext
# catalogs, the Debian Administrator's Handbook)
LANGID = dict(steps=250, max_tokens=2048, lr=3e-4, warmup=20, weight_decay=0.01, dropout=0.1,
              train_per_lang={"man": 5000, "gettext": 4000, "handbook": 3000, "game": 4000})
LANGS = ["fr", "de", "es", "en"]
# held-out French LM text, by kind: technical (man pages, debian-reference,
# debian-faq) and everyday (UI messages of the gettext catalogs, the handbook)
LM_KINDS = {"technical": ("man", "doc"), "gettext": ("gettext",), "handbook": ("handbook",),
            "game": ("game",)}
EVERYDAY_TEST = os.path.join(HERE, "everyday_test.tsv")
# hand-written everyday sentences for choosing the recipe (the test file measures
# once, at the end); neither is in any training line (build_corpus.py)
EVERYDAY_DEV = os.path.join(HERE, "everyday_dev.tsv")
HELDOUT_TOKENS = None    # at most this many held-out tokens per kind (file order); a run
                         # from scratch evaluates them all (bench/accuracy.c's technical
                         # figures are these); --continue-from: 8000
# --continue-from: langid trained further from the given models' langid, on the
# same mixed sentences (fr-mlm, fr-clm and the tokenizer kept as they are)
LANGID_CONTINUE = dict(steps=60, max_tokens=1024, lr=3e-4, warmup=5, weight_decay=0.01,
                       dropout=0.1, train_per_lang=LANGID["train_per_lang"])
# --langid-tokenizer: langid from random init with its own SentencePiece BPE
# (8000 pieces) trained on its training sentences of all four languages
# (the default of a from-scratch run).  character_coverage 1.0: every character of
# the training sentences gets a piece (at 0.9995 the rarer ones -- Spanish '¿' '¡',
# French 'œ' -- became <unk>, which is no sign of any language)
LANGID_SCRATCH = dict(steps=1200, max_tokens=1024, lr=1e-3, warmup=40, weight_decay=0.01,
                      dropout=0.1, train_per_lang=LANGID["train_per_lang"],
                      character_coverage=1.0, short_spans=0.5)
# short_spans: for that share of the training sentences of 5+ words, a random
# stretch of 2-8 of their words is added as one more training sentence (same
# label): everyday inputs are short ("Bonjour, comment allez-vous ?"), most
# training sentences are long man-page ones
LANGID_EVERYDAY_TEST = 250   # held-out sentences per language of gettext and of the handbook

T0 = time.time()


def log(*a):
    print(f"[{time.time() - T0:7.1f}s]", *a, file=sys.stderr, flush=True)


def read_jsonl(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(l) for l in fh]


# --------------------------------------------------------------------------
# data

def chunk(ids_content):
    """Content ids -> sequences <s> ... </s> of at most MAX_LEN tokens."""
    n = MAX_LEN - 2
    return [[BOS] + ids_content[i:i + n] + [EOS] for i in range(0, max(len(ids_content), 1), n)]


def length_batches(seqs, max_tokens, rng, pool=50):
    """Shuffle, sort by length inside pools, cut into batches of at most
    max_tokens padded tokens, shuffle the batches."""
    order = list(range(len(seqs)))
    rng.shuffle(order)
    batches = []
    step = max(1, pool * max_tokens // 40)
    for s in range(0, len(order), step):
        part = sorted(order[s:s + step], key=lambda i: len(seqs[i]))
        cur = []
        for i in part:
            longest = max([len(seqs[j]) for j in cur] + [len(seqs[i])])
            if cur and longest * (len(cur) + 1) > max_tokens:
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
    rng.shuffle(batches)
    return batches


def truncate(ids):
    """transformers' truncation=True, max_length=MAX_LEN: keep </s> last."""
    return ids if len(ids) <= MAX_LEN else ids[:MAX_LEN - 1] + [EOS]


def pad(seqs):
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), PAD, dtype=torch.long)
    am = torch.zeros((len(seqs), T), dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)
        am[b, :len(s)] = 1
    return ids, am


def batch_stream(seqs, max_tokens, rng, indices=False):
    while True:
        for b in length_batches(seqs, max_tokens, rng):
            yield b if indices else [seqs[i] for i in b]


def make_optimizer(model, lr, weight_decay):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.dim() < 2 or "ln" in n or n.endswith("bias") else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.98), eps=1e-6)


def lr_at(step, total, warmup, peak):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.0, (total - step) / max(1, total - warmup))


def train_loop(model, hp, batches, loss_fn, name):
    opt = make_optimizer(model, hp["lr"], hp["weight_decay"])
    model.train()
    t = time.time()
    run = 0.0
    ntok = 0
    for step in range(hp["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, hp["steps"], hp["warmup"], hp["lr"])
        batch = next(batches)
        loss, n = loss_fn(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run = 0.98 * run + 0.02 * loss.item() if step else loss.item()
        ntok += n
        if step % 50 == 0 or step == hp["steps"] - 1:
            log(f"{name} step {step}/{hp['steps']} loss {run:.3f} "
                f"({ntok / (time.time() - t):.0f} tokens/s)")
    model.eval()
    return {"seconds": round(time.time() - t, 1), "tokens_seen": ntok, "final_train_loss": round(run, 4)}


def mask_tokens(ids, gen, mask_id, sp_size, prob):
    """15 % of the non-special tokens: 80 % <mask>, 10 % random, 10 % kept."""
    special = (ids == PAD) | (ids == BOS) | (ids == EOS)
    sel = (torch.rand(ids.shape, generator=gen) < prob) & ~special
    r = torch.rand(ids.shape, generator=gen)
    inp = ids.clone()
    inp[sel & (r < 0.8)] = mask_id
    rnd = sel & (r >= 0.8) & (r < 0.9)
    inp[rnd] = torch.randint(7, sp_size + 4, ids.shape, generator=gen)[rnd]
    return inp, sel


# --------------------------------------------------------------------------
# steps

def train_tokenizer(work, lm):
    d = os.path.join(work, "tokenizer")
    os.makedirs(d, exist_ok=True)
    txt = os.path.join(d, "train.txt")
    with open(txt, "w", encoding="utf-8") as fh:
        for r in lm:
            if r["split"] == "train":
                fh.write(r["text"] + "\n")
    spm.SentencePieceTrainer.train(input=txt, model_prefix=os.path.join(d, "sentencepiece.bpe"),
                                   model_type="bpe", vocab_size=SP_VOCAB,
                                   character_coverage=0.9995, num_threads=1, minloglevel=2)
    return os.path.join(d, "sentencepiece.bpe.model")


def eval_batches(seqs, max_tokens=2048):
    """Held-out batches: sorted by length, at most max_tokens padded tokens
    (large tensors are slow to allocate here)."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    cur = []
    for i in order:
        if cur and len(seqs[i]) * (len(cur) + 1) > max_tokens:
            yield cur
            cur = []
        cur.append(i)
    if cur:
        yield cur


def lm_scores(model, h, targets):
    """(sum of cross-entropies, number of correct argmax) of the LM head on
    rows h against targets, 256 rows at a time."""
    ce = 0.0
    correct = 0
    for s in range(0, h.shape[0], 256):
        logits = model.lm_logits(h[s:s + 256])
        y = targets[s:s + 256]
        ce += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(-1) == y).sum().item()
    return ce, correct


def mlm_eval(model, tok, seqs, seed):
    """Top-1 accuracy at 15 % of the non-special positions, all replaced by
    <mask> (fixed seed), and the mean cross-entropy there."""
    gen = torch.Generator().manual_seed(seed)
    correct = total = 0
    ce = 0.0
    with torch.no_grad():
        for b in eval_batches(seqs):
            ids, am = pad([seqs[i] for i in b])
            special = (ids == PAD) | (ids == BOS) | (ids == EOS)
            sel = (torch.rand(ids.shape, generator=gen) < 0.15) & ~special
            inp = ids.masked_fill(sel, tok.mask_id)
            c, k = lm_scores(model, model.encode(inp, am)[sel], ids[sel])
            ce += c
            correct += k
            total += sel.sum().item()
    return {"masked_positions": total, "top1_accuracy": round(correct / total, 4),
            "cross_entropy": round(ce / total, 4)}


def clm_eval(model, seqs, word_start=None):
    """Perplexity per token: exp(mean CE of predicting every token after <s>,
    </s> included).  With word_start (a bool per id: the piece begins a word,
    '▁'), also per word: exp(the same total CE / the words of the text), a
    figure two tokenizers can be compared by (each cuts the same words into a
    different number of tokens)."""
    ce = 0.0
    n = 0
    correct = 0
    words = sum(int(word_start[torch.tensor(s)].sum()) for s in seqs) if word_start is not None else 0
    with torch.no_grad():
        for b in eval_batches(seqs):
            ids, am = pad([seqs[i] for i in b])
            h = model.encode(ids, am)[:, :-1]
            tgt = ids[:, 1:]
            keep = tgt != PAD
            c, k = lm_scores(model, h[keep], tgt[keep])
            ce += c
            correct += k
            n += keep.sum().item()
    out = {"predicted_tokens": n, "cross_entropy": round(ce / n, 4),
           "perplexity": round(math.exp(ce / n), 2), "top1_accuracy": round(correct / n, 4)}
    if words:
        out.update(words=words, perplexity_per_word=round(math.exp(ce / words), 1))
    return out


def cls_eval(model, items):
    """items: (ids, label) -> accuracy, per-language accuracy, confusion."""
    conf = [[0] * len(LANGS) for _ in LANGS]
    with torch.no_grad():
        for b in eval_batches([s for s, _ in items]):
            ids, am = pad([items[i][0] for i in b])
            pred = model.cls_logits(model.encode(ids, am)).argmax(-1).tolist()
            for i, p in zip(b, pred):
                conf[items[i][1]][p] += 1
    total = sum(map(sum, conf))
    acc = sum(conf[i][i] for i in range(len(LANGS))) / total
    per = {l: round(conf[i][i] / max(1, sum(conf[i])), 4) for i, l in enumerate(LANGS)}
    return {"sentences": total, "accuracy": round(acc, 4),
            "per_language_accuracy": per,
            "per_language_sentences": {l: sum(conf[i]) for i, l in enumerate(LANGS)},
            "confusion_rows_true_cols_pred": conf}


def mlm_each_position(model, tok, seqs):
    """Top-1 accuracy and cross-entropy when every non-special position of a
    sentence is masked alone (for the short hand-written sentences)."""
    correct = total = 0
    ce = 0.0
    with torch.no_grad():
        for s in seqs:
            n = len(s) - 2
            ids = torch.tensor([s] * n)
            inp = ids.clone()
            pos = torch.arange(n) + 1
            inp[torch.arange(n), pos] = tok.mask_id
            h = model.encode(inp, torch.ones_like(inp))[torch.arange(n), pos]
            c, k = lm_scores(model, h, ids[torch.arange(n), pos])
            ce += c
            correct += k
            total += n
    return {"masked_positions": total, "top1_accuracy": round(correct / total, 4),
            "cross_entropy": round(ce / total, 4)}


def read_everyday_test(path=EVERYDAY_TEST):
    out = []
    with open(path, encoding="utf-8") as fh:
        for l in fh:
            if l.strip() and not l.startswith("#"):
                lang, text = l.rstrip("\n").split("\t")
                out.append((lang, text))
    return out


def langid_probs(model, tok, text):
    ids = torch.tensor([truncate(tok.encode(text))])
    with torch.no_grad():
        p = torch.softmax(model.cls_logits(model.encode(ids, torch.ones_like(ids)))[0], -1)
    return {l: round(v, 4) for l, v in zip(LANGS, p.tolist())}


def langid_errors(model, tok, items):
    """The hand-written sentences the classifier gets wrong, with its answer."""
    out = []
    for lang, text in items:
        p = langid_probs(model, tok, text)
        best = max(p, key=p.get)
        if best != lang:
            out.append({"text": text, "lang": lang, "predicted": best, "score": p[best]})
    return out


def greedy(model, tok, prompt, n=20):
    ids = [BOS] + tok.encode_pieces_ids(prompt)
    with torch.no_grad():
        for _ in range(n):
            x = torch.tensor([ids])
            nxt = model.lm_logits(model.encode(x, torch.ones_like(x))[:, -1]).argmax(-1).item()
            if nxt == EOS:
                break
            ids.append(nxt)
    return tok.decode(ids)


def fill_mask(model, tok, text, k=5):
    left, right = text.split("<mask>")  # <mask> strips the whitespace on its left
    ids = [BOS] + tok.encode_pieces_ids(left.rstrip()) + [tok.mask_id] + \
        tok.encode_pieces_ids(right) + [EOS]
    x = torch.tensor([ids])
    pos = ids.index(tok.mask_id)
    with torch.no_grad():
        logits = model.lm_logits(model.encode(x, torch.ones_like(x))[0, pos])
    top = torch.topk(torch.softmax(logits, -1), k)
    return [(tok.decode([i]), round(p, 4)) for p, i in zip(top.values.tolist(), top.indices.tolist())]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="build/models-train")
    ap.add_argument("--out", default="models")
    ap.add_argument("--quick", type=float, default=1.0,
                    help="scale every step count (a smoke test; the shipped models use 1)")
    ap.add_argument("--continue-from", metavar="DIR",
                    help="start from the models in DIR (fr-mlm, fr-clm, langid): keep their "
                         "tokenizer, fr-mlm and fr-clm, evaluate them, train langid further")
    ap.add_argument("--langid-tokenizer", action="store_true",
                    help="with --continue-from: langid from random init with its own four-language "
                         "tokenizer (what a run from scratch does)")
    ap.add_argument("--langid-from-mlm", action="store_true",
                    help="from scratch: langid from fr-mlm's encoder and tokenizer (the recipe "
                         "before issue 19)")
    ap.add_argument("--langid-short-spans", type=float, metavar="P",
                    help="override LANGID_SCRATCH's short_spans (a recipe comparison)")
    ap.add_argument("--langid-per-source", metavar="SRC=N,...",
                    help="override LANGID_SCRATCH's training sentences per language and source, "
                         "e.g. man=5000,gettext=8000,handbook=3000 (a recipe comparison)")
    ap.add_argument("--langid-steps", type=int, metavar="N",
                    help="override LANGID_SCRATCH's steps (a recipe comparison)")
    ap.add_argument("--heldout-tokens", type=int, metavar="N",
                    help="with --continue-from: at most N held-out LM tokens per kind (default "
                         "8000; 0: all, as a run from scratch)")
    ap.add_argument("--eval-only", action="store_true",
                    help="with --continue-from: no training at all, only the evaluation")
    args = ap.parse_args()
    cont = args.continue_from
    if args.eval_only and not cont:
        ap.error("--eval-only needs --continue-from")
    if not cont and not args.langid_from_mlm:
        args.langid_tokenizer = True
    if args.langid_short_spans is not None:
        LANGID_SCRATCH["short_spans"] = args.langid_short_spans
    if args.langid_steps is not None:
        LANGID_SCRATCH["steps"] = args.langid_steps
    if args.langid_per_source:
        LANGID_SCRATCH["train_per_lang"] = {k: int(v) for k, v in
                                            (x.split("=") for x in args.langid_per_source.split(","))}
    if cont:
        LANGID.clear()
        LANGID.update(LANGID_CONTINUE)
        if args.eval_only:
            LANGID["steps"] = 0
    if args.langid_tokenizer:
        LANGID.clear()
        LANGID.update(LANGID_SCRATCH)
    for hp in (MLM, CLM, LANGID):
        hp["steps"] = max(2, int(hp["steps"] * args.quick)) if hp["steps"] else 0
        hp["warmup"] = max(1, int(hp["warmup"] * args.quick))
    torch.set_num_threads(THREADS)
    torch.manual_seed(SEED)
    random.seed(SEED)
    report = {"continue_from": cont, "seed": SEED, "torch": torch.__version__, "sentencepiece": spm.__version__,
              "arch": ARCH, "max_position_embeddings": MAX_POS, "mlm": {"hp": MLM},
              "clm": {"hp": CLM}, "langid": {"hp": LANGID}}

    corpus = os.path.join(args.work, "corpus")
    if not os.path.exists(os.path.join(corpus, "stats.json")):
        subprocess.run([sys.executable, os.path.join(HERE, "build_corpus.py"), args.work], check=True)
    with open(os.path.join(corpus, "stats.json")) as fh:
        report["corpus"] = json.load(fh)

    # 1. tokenizer
    lm = read_jsonl(os.path.join(corpus, "fr_lm.jsonl"))
    t = time.time()
    if cont:
        # the given LMs' tokenizer (copied: OUT may be DIR)
        os.makedirs(os.path.join(args.work, "tokenizer"), exist_ok=True)
        sp_path = os.path.join(args.work, "tokenizer", "sentencepiece.bpe.model")
        shutil.copyfile(os.path.join(cont, "fr-mlm", "sentencepiece.bpe.model"), sp_path)
    else:
        sp_path = train_tokenizer(args.work, lm)
    sp = spm.SentencePieceProcessor(model_file=sp_path)
    tok = CamembertIds(sp)
    report["tokenizer"] = {"seconds": round(time.time() - t, 1), "sp_pieces": tok.sp_size,
                           "vocab_size": tok.vocab_size}
    log("tokenizer", report["tokenizer"])

    train_seqs = []
    test_by_kind = {k: [] for k in LM_KINDS}
    kind_of = {src: k for k, srcs in LM_KINDS.items() for src in srcs}
    for r in lm:
        if cont and r["split"] == "train":
            continue  # (the LMs are not trained)
        seqs = chunk(tok.encode_pieces_ids(r["text"]))
        (train_seqs if r["split"] == "train" else test_by_kind[kind_of[r["source"]]]).extend(seqs)
    heldout_tokens = 1000 if args.quick < 1 else 8000 if cont else HELDOUT_TOKENS
    if cont and args.heldout_tokens is not None:
        heldout_tokens = args.heldout_tokens or None
    for k, v in test_by_kind.items():
        if heldout_tokens is None:
            break
        n = 0
        for i, sq in enumerate(v):
            n += len(sq)
            if n > heldout_tokens:
                del v[i:]
                break
    everyday = read_everyday_test()
    everyday_dev = read_everyday_test(EVERYDAY_DEV)
    # the hand-written French sentences (never trained on), one sequence each
    test_by_kind["everyday_handwritten"] = [chunk(tok.encode_pieces_ids(t))[0] for l, t in everyday
                                            if l == "fr"]
    test_by_kind["everyday_dev"] = [chunk(tok.encode_pieces_ids(t))[0] for l, t in everyday_dev
                                    if l == "fr"]
    report["fr_lm_sequences"] = {"train": len(train_seqs), "train_tokens": sum(map(len, train_seqs)),
                                 "test": {k: len(v) for k, v in test_by_kind.items()},
                                 "test_tokens": {k: sum(map(len, v)) for k, v in test_by_kind.items()}}
    log("fr sequences", report["fr_lm_sequences"])

    word_start = torch.tensor([tok.piece(i).startswith("\u2581") for i in range(tok.vocab_size)])

    def clm_evals(model):
        return {k: clm_eval(model, v, word_start) for k, v in test_by_kind.items()}

    def mlm_evals(model):
        return {k: mlm_each_position(model, tok, v) if k.startswith("everyday_")
                else mlm_eval(model, tok, v, SEED + 4) for k, v in test_by_kind.items()}

    def cfg(dropout):
        return Config(tok.vocab_size, max_position_embeddings=MAX_POS, layer_norm_eps=1e-5,
                      hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, **ARCH)

    if cont:
        clm = load_dir(os.path.join(cont, "fr-clm"))[0]
        report["clm"] = {"kept_from": os.path.join(cont, "fr-clm")}
    else:
        # 2. causal LM, from random init (every position gives a loss, so it learns
        #    fast; its attention patterns then give the masked LM a head start)
        torch.manual_seed(SEED + 1)
        clm = Camembert(cfg(CLM["dropout"]), "clm")
        batches = batch_stream(train_seqs, CLM["max_tokens"], random.Random(SEED + 3))

        def clm_loss(batch):
            ids, am = pad(batch)
            h = clm.encode(ids, am)[:, :-1]
            tgt = ids[:, 1:].masked_fill(ids[:, 1:] == PAD, -100)
            return clm.lm_loss(h.reshape(-1, h.shape[-1]), tgt.reshape(-1)), int(am.sum())

        report["clm"]["train"] = train_loop(clm, CLM, batches, clm_loss, "clm")
        clm_fp32_state = {k: v.clone() for k, v in clm.state_dict().items()}
        report["clm"]["heldout_fp32"] = clm_evals(clm)
        round_weights_(clm, torch.float16)
    report["clm"]["heldout_fp16"] = clm_evals(clm)
    report["clm"]["greedy_examples"] = {p: greedy(clm, tok, p) for p in [
        "La commande ls", "Le fichier", "Cette option", "Debian est", "Bonjour", "Il fait",
        "Je voudrais", "Le train", "Mon ami", "Merci"]}
    log("clm", report["clm"]["heldout_fp16"], report["clm"]["greedy_examples"])
    gen_cfg = json.dumps({"_from_model_config": True, "bos_token_id": BOS, "eos_token_id": EOS,
                          "pad_token_id": PAD, "transformers_version": "4.37.0.dev0"},
                         indent=2, sort_keys=True) + "\n"
    if not cont:
        save_model_dir(os.path.join(args.out, "fr-clm"), clm, "CamembertForCausalLM", sp_path, MAX_LEN,
                       extra_files={"generation_config.json": gen_cfg})
    elif os.path.realpath(args.out) != os.path.realpath(cont):
        shutil.copytree(os.path.join(cont, "fr-clm"), os.path.join(args.out, "fr-clm"), dirs_exist_ok=True)

    if cont:
        mlm = load_dir(os.path.join(cont, "fr-mlm"))[0]
        report["mlm"] = {"kept_from": os.path.join(cont, "fr-mlm")}
    else:
        # 3. masked LM, initialised from the causal LM (fp32 weights), 15 % masking
        torch.manual_seed(SEED + 10)
        mlm = Camembert(cfg(MLM["dropout"]), "mlm")
        mlm.load_state_dict(clm_fp32_state)
        report["mlm"]["heldout_fp32_at_init"] = mlm_eval(mlm, tok, test_by_kind["technical"], SEED + 4)
        gen = torch.Generator().manual_seed(SEED + 11)
        batches = batch_stream(train_seqs, MLM["max_tokens"], random.Random(SEED + 12))

        def mlm_loss(batch):
            ids, am = pad(batch)
            inp, sel = mask_tokens(ids, gen, tok.mask_id, tok.sp_size, MLM["mask_prob"])
            return mlm.lm_loss(mlm.encode(inp, am)[sel], ids[sel]), int(am.sum())

        report["mlm"]["train"] = train_loop(mlm, MLM, batches, mlm_loss, "mlm")
        report["mlm"]["heldout_fp32"] = mlm_evals(mlm)
        mlm_fp32 = Camembert(cfg(MLM["dropout"]), "mlm")
        mlm_fp32.load_state_dict(mlm.state_dict())
        round_weights_(mlm, torch.float16)
    report["mlm"]["heldout_fp16"] = mlm_evals(mlm)
    report["mlm"]["examples"] = {s: fill_mask(mlm, tok, s) for s in [
        "La commande <mask> affiche le contenu du répertoire.",
        "Le fichier de <mask> se trouve dans /etc.",
        "Cette option affiche l'<mask> et quitte.",
        "Le noyau <mask> gère les processus.",
        "Paris est la <mask> de la France.",
        "Bonjour, comment <mask> ?",
        "Bonjour, comment allez-<mask> ?",
        "Nous allons <mask> demain matin.",
        "Il fait très <mask> aujourd'hui.",
        "Je voudrais un <mask>, s'il vous plaît.",
        "Voulez-vous vraiment <mask> ce fichier ?",
    ]}
    log("mlm", report["mlm"]["heldout_fp16"], report["mlm"]["examples"])
    if not cont:
        save_model_dir(os.path.join(args.out, "fr-mlm"), mlm, "CamembertForMaskedLM", sp_path, MAX_LEN)
    elif os.path.realpath(args.out) != os.path.realpath(cont):
        shutil.copytree(os.path.join(cont, "fr-mlm"), os.path.join(args.out, "fr-mlm"), dirs_exist_ok=True)

    # 4. language identification, encoder from the masked LM (fp32 weights)
    sents = read_jsonl(os.path.join(corpus, "langid.jsonl"))
    rng = random.Random(SEED + 20)
    split = {"train": [], "test": []}  # (the validation split is not used)
    sources = list(LANGID["train_per_lang"])
    groups = {}
    for r in sents:
        groups.setdefault((r["lang"], r["source"], r["split"]), []).append(r)
    for lang_i, lang in enumerate(LANGS):
        for src in sources:
            for sp_name in split:
                items = groups.get((lang, src, sp_name), [])
                if sp_name == "train":
                    rng.shuffle(items)
                    items = items[:LANGID["train_per_lang"][src]]
                split[sp_name].extend((r["text"], lang_i, src) for r in items)
    ltok, lsp_path = tok, sp_path
    if not LANGID["steps"]:
        split["train"] = []  # (--eval-only: nothing to encode)
    if cont and not args.langid_tokenizer:
        # the given langid's own tokenizer (that of the LMs before issue 19)
        d = os.path.join(args.work, "tokenizer-langid")
        os.makedirs(d, exist_ok=True)
        lsp_path = os.path.join(d, "sentencepiece.bpe.model")
        shutil.copyfile(os.path.join(cont, "langid", "sentencepiece.bpe.model"), lsp_path)
        ltok = CamembertIds(spm.SentencePieceProcessor(model_file=lsp_path))
    elif args.langid_tokenizer:
        d = os.path.join(args.work, "tokenizer-langid")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "train.txt"), "w", encoding="utf-8") as fh:
            for t, _, _ in split["train"]:
                fh.write(t + "\n")
        spm.SentencePieceTrainer.train(input=os.path.join(d, "train.txt"),
                                       model_prefix=os.path.join(d, "sentencepiece.bpe"),
                                       model_type="bpe", vocab_size=SP_VOCAB,
                                       character_coverage=LANGID.get("character_coverage", 0.9995),
                                       num_threads=1, minloglevel=2)
        lsp_path = os.path.join(d, "sentencepiece.bpe.model")
        ltok = CamembertIds(spm.SentencePieceProcessor(model_file=lsp_path))
    if LANGID.get("short_spans"):
        spans = []
        for t, l, src in split["train"]:
            w = t.split()
            if len(w) >= 5 and rng.random() < LANGID["short_spans"]:
                n = rng.randint(2, min(8, len(w) - 1))
                a = rng.randint(0, len(w) - n)
                spans.append((" ".join(w[a:a + n]), l, src))
        split["train"].extend(spans)
        report["langid"]["short_span_sentences"] = len(spans)
    split = {k: [(truncate(ltok.encode(t)), l, src) for t, l, src in v] for k, v in split.items()}
    rng.shuffle(split["train"])
    split = {k: [(ids, l) for ids, l, _ in v] if k == "train" else v for k, v in split.items()}
    torch.manual_seed(SEED + 21)
    cls = Camembert(cfg(LANGID["dropout"]), "cls", num_labels=len(LANGS))
    if args.langid_tokenizer:
        pass  # random init (N(0, 0.02))
    elif cont:  # the given langid, classifier head included (its fp16 weights)
        cls.load_state_dict(load_dir(os.path.join(cont, "langid"))[0].state_dict())
    else:
        cls.load_encoder_from(mlm_fp32)
    train_items = split["train"]

    def cls_batches():
        for b in batch_stream([s for s, _ in train_items], LANGID["max_tokens"],
                              random.Random(SEED + 22), indices=True):
            yield [train_items[i] for i in b]

    def cls_loss(batch):
        ids, am = pad([s for s, _ in batch])
        y = torch.tensor([l for _, l in batch])
        return F.cross_entropy(cls.cls_logits(cls.encode(ids, am)), y), int(am.sum())

    report["langid"]["split_sizes"] = {k: len(v) for k, v in split.items()}
    report["langid"]["train_sentences_per_source"] = {
        src: sum(1 for r in sents if r["source"] == src and r["split"] == "train") for src in sources}
    report["langid"]["train"] = train_loop(cls, LANGID, cls_batches(), cls_loss, "langid")
    round_weights_(cls, torch.float16)
    # held-out: every technical test sentence (--continue-from without --eval-only:
    # every 4th); of
    # the everyday sources, the first LANGID_EVERYDAY_TEST per language (file order)
    for src in sources:
        items = [(ids, l) for ids, l, s_ in split["test"] if s_ == src]
        if src == "man" and cont and not args.eval_only:
            items = items[::4]
        if src != "man":
            items = [it for l in range(len(LANGS)) for it in [x for x in items if x[1] == l][:LANGID_EVERYDAY_TEST]]
        if args.quick < 1:
            items = items[::20]
        report["langid"].setdefault("test_fp16", {})[src] = cls_eval(cls, items)
    report["langid"]["everyday_handwritten_fp16"] = cls_eval(
        cls, [(truncate(ltok.encode(t)), LANGS.index(l)) for l, t in everyday])
    report["langid"]["everyday_handwritten_errors"] = langid_errors(cls, ltok, everyday)
    report["langid"]["everyday_dev_fp16"] = cls_eval(
        cls, [(truncate(ltok.encode(t)), LANGS.index(l)) for l, t in everyday_dev])
    report["langid"]["everyday_dev_errors"] = langid_errors(cls, ltok, everyday_dev)
    report["langid"]["examples"] = {t: langid_probs(cls, ltok, t) for t in [
        "Bonjour, comment allez-vous ?", "Le fichier n'existe pas.", "Die Datei existiert nicht.",
        "El archivo no existe.", "The file does not exist.", "Je voudrais un café, s'il vous plaît.",
        "Wie geht es dir?", "¿Dónde está la estación?", "What a lovely day!"]}
    log("langid", {k: v for k, v in report["langid"].items() if k.endswith("_fp16")})
    save_model_dir(os.path.join(args.out, "langid"), cls, "CamembertForSequenceClassification",
                   lsp_path, MAX_LEN, id2label=LANGS, problem_type="single_label_classification")

    report["total_seconds"] = round(time.time() - T0, 1)
    with open(os.path.join(args.work, "report.json"), "w") as fh:
        json.dump(report, fh, indent=2, ensure_ascii=False)
    log("done", report["total_seconds"], "s; report in", os.path.join(args.work, "report.json"))


if __name__ == "__main__":
    main()
