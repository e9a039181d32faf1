#!/usr/bin/python3
"""bench.py — the Python half of bench/run.sh (Debian's /usr/bin/python3: numpy, torch).

    bench.py cases CASES                     the inputs of the engine / PyTorch cases
    bench.py texts TEXTS N                   N French-looking texts of ~40 tokens, one a line
    bench.py split TEXTS FIRST SECOND        its two halves
    bench.py f16copy MODEL OUT               OUT: MODEL with its weights rounded to float16 (F16
                                             safetensors, config torch_dtype float16)
    bench.py onnx MODEL OUT.onnx             torch.onnx.export of the PyTorch model below (dynamic
                                             batch and sequence axes), for ONNX Runtime
    bench.py compare MODEL CASES LIB THREADS SECONDS [--engine LABEL=DIR:PRECISION ...]
                     [--ort SCRIPT ONNX NODE_MODULES SPIN]
                                             our engine (LIB: bench_lib.c built as a shared
                                             library; each --engine one model image, the first
                                             float32 on MODEL) and PyTorch eager on the same
                                             weights and inputs, in one process, and ONNX Runtime
                                             (bench/ort/ort_bench.js, a node process driven
                                             through a pipe): logits checked, then passes timed
                                             in alternation
    bench.py sqlsetup MODEL TEXTS            load the model (and the tiny build/golden/models/cls3),
                                             fill the table posts (id, body)
    bench.py sqlload NAME DIR DTYPE          camembert_load(NAME, DIR, dtype => DTYPE): its shared
                                             memory, or "refused" if the extension rejects it
    bench.py sql WORKERS [NAME]              time SELECT camembert_classify(body) FROM posts with
                                             max_parallel_workers_per_gather WORKERS, model NAME
                                             (cluster from PGHOST/PGPORT/PGUSER)
    bench.py memory N                        N backends that used the model: PSS from smaps
    bench.py report DIR [DIR ...]            the table, from the result files of one run, or
                                             the medians over several

Every subcommand prints "key value ..." lines that `report` reads back.
"""
import glob
import json
import os
import random
import re
import struct
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name, batch, tokens per row
CASES = [
    ("b1_t16", 1, 16),
    ("b1_t64", 1, 64),
    ("b1_t128", 1, 128),
    ("b1_t512", 1, 512),
    ("b8_t64", 8, 64),
    ("b32_t64", 32, 64),
]
BOS, EOS, PAD = 5, 6, 1
PEAK_SHAPE = (2048, 3072, 768)  # the reference sgemm (M, N, K): tokens x FFN width x hidden
TOKENIZER_IDS = 8005  # ids the bundled tokenizer can produce (the config says 32005)
MODEL_NAME = "bench_base"


# --------------------------------------------------------------------------
# inputs

def cmd_cases(path):
    rng = np.random.default_rng(6)
    with open(path, "wb") as f:
        f.write(b"CBBC")
        f.write(struct.pack("<i", len(CASES)))
        for name, b, t in CASES:
            ids = rng.integers(7, TOKENIZER_IDS - 1, size=(b, t), dtype=np.int32)
            ids[:, 0] = BOS
            ids[:, -1] = EOS
            raw = name.encode()
            f.write(struct.pack("<iii", b, t, len(raw)))
            f.write(raw + b"\0" * ((4 - len(raw) % 4) % 4))
            f.write(ids.astype("<i4").tobytes())


def read_cases(path):
    cases = []
    with open(path, "rb") as f:
        assert f.read(4) == b"CBBC"
        (n,) = struct.unpack("<i", f.read(4))
        for _ in range(n):
            b, t, ln = struct.unpack("<iii", f.read(12))
            name = f.read((ln + 3) & ~3)[:ln].decode()
            ids = np.frombuffer(f.read(4 * b * t), dtype="<i4").reshape(b, t)
            cases.append((name, b, t, ids))
    return cases


def cmd_split(path, first, second):
    """The first and second halves of a texts file (the engine runs one before the SQL part, one after)."""
    lines = open(path, encoding="utf-8").read().splitlines(True)
    half = len(lines) // 2
    open(first, "w", encoding="utf-8").write("".join(lines[:half]))
    open(second, "w", encoding="utf-8").write("".join(lines[half:]))


def cmd_texts(path, n):
    """Sentences of whole-word pieces of the bundled tokenizer (~38 pieces + <s> </s>)."""
    words = []
    with open(os.path.join(ROOT, "test/golden/tokenizer_fr8k/vocab.jsonl"), encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            tok = e["token"]
            if tok.startswith("\u2581") and len(tok) >= 4 and tok[1:].isalpha():
                words.append(tok[1:])
    rng = np.random.default_rng(40)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            k = int(rng.integers(33, 40))
            sent = " ".join(words[i] for i in rng.integers(0, len(words), size=k))
            f.write(sent[0].upper() + sent[1:] + ".\n")


# --------------------------------------------------------------------------
# PyTorch

def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", name
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(raw[base + a:base + b], dtype="<f4").reshape(e["shape"]).copy()
    return out


def build_torch_model(model_dir):
    import torch
    from torch import nn
    import torch.nn.functional as F

    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    H, A, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    eps, pad = cfg["layer_norm_eps"], cfg["pad_token_id"]

    def linear(prefix, n_in, n_out):
        m = nn.Linear(n_in, n_out)
        m.weight.data = torch.from_numpy(w[prefix + ".weight"])
        m.bias.data = torch.from_numpy(w[prefix + ".bias"])
        return m

    def layernorm(prefix):
        m = nn.LayerNorm(H, eps=eps)
        m.weight.data = torch.from_numpy(w[prefix + ".weight"])
        m.bias.data = torch.from_numpy(w[prefix + ".bias"])
        return m

    class Layer(nn.Module):
        """transformers' RobertaLayer in eval mode (post-LN, exact GELU)."""

        def __init__(self, p):
            super().__init__()
            self.q = linear(p + "attention.self.query", H, H)
            self.k = linear(p + "attention.self.key", H, H)
            self.v = linear(p + "attention.self.value", H, H)
            self.o = linear(p + "attention.output.dense", H, H)
            self.ln1 = layernorm(p + "attention.output.LayerNorm")
            self.inter = linear(p + "intermediate.dense", H, cfg["intermediate_size"])
            self.out = linear(p + "output.dense", cfg["intermediate_size"], H)
            self.ln2 = layernorm(p + "output.LayerNorm")

        def forward(self, x, mask_add):
            b, t, _ = x.shape

            def heads(y):
                return y.view(b, t, A, H // A).permute(0, 2, 1, 3)

            q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) / ((H // A) ** 0.5) + mask_add
            ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
            ctx = ctx.permute(0, 2, 1, 3).reshape(b, t, H)
            x = self.ln1(self.o(ctx) + x)
            return self.ln2(self.out(F.gelu(self.inter(x))) + x)

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            e = "roberta.embeddings."
            self.word = nn.Embedding.from_pretrained(torch.from_numpy(w[e + "word_embeddings.weight"]))
            self.pos = nn.Embedding.from_pretrained(torch.from_numpy(w[e + "position_embeddings.weight"]))
            self.tok_type = nn.Embedding.from_pretrained(torch.from_numpy(w[e + "token_type_embeddings.weight"]))
            self.ln = layernorm(e + "LayerNorm")
            self.layers = nn.ModuleList(Layer("roberta.encoder.layer.%d." % i) for i in range(L))
            self.dense = linear("classifier.dense", H, H)
            self.out_proj = linear("classifier.out_proj", H, cfg["num_labels"] if "num_labels" in cfg
                                   else len(cfg["id2label"]))

        def forward(self, ids, mask):
            not_pad = ids.ne(pad).int()
            positions = torch.cumsum(not_pad, dim=1) * not_pad + pad
            x = self.ln(self.word(ids) + self.tok_type(torch.zeros_like(ids)) + self.pos(positions))
            mask_add = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
            for layer in self.layers:
                x = layer(x, mask_add)
            return self.out_proj(torch.tanh(self.dense(x[:, 0, :])))

    return Classifier().eval()


def cmd_f16copy(src, dst):
    """The same model with F16 weights (rounded to nearest even, as torch's .half()): what
    camembert_load(..., dtype => 'auto') keeps as stored."""
    import shutil
    os.makedirs(dst, exist_ok=True)
    path = os.path.join(src, "model.safetensors")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    base = 8 + n
    names = sorted(k for k in header if k != "__metadata__")
    out_header = {"__metadata__": header.get("__metadata__", {"format": "pt"})}
    off = 0
    for name in names:
        e = header[name]
        assert e["dtype"] == "F32", name
        size = 2 * int(np.prod(e["shape"], dtype=np.int64))
        out_header[name] = {"dtype": "F16", "shape": e["shape"], "data_offsets": [off, off + size]}
        off += size
    hb = json.dumps(out_header, separators=(",", ":")).encode()
    hb += b" " * ((8 - (8 + len(hb)) % 8) % 8)
    tmp = os.path.join(dst, "model.safetensors.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name in names:
            a, b = header[name]["data_offsets"]
            f.write(np.frombuffer(raw[base + a:base + b], dtype="<f4").astype("<f2").tobytes())
    os.replace(tmp, os.path.join(dst, "model.safetensors"))
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["torch_dtype"] = "float16"
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    for extra in os.listdir(src):
        if extra not in ("model.safetensors", "config.json") and os.path.isfile(os.path.join(src, extra)):
            shutil.copy(os.path.join(src, extra), os.path.join(dst, extra))


def cmd_onnx(model_dir, out):
    """torch.onnx.export of build_torch_model (the same module PyTorch is timed with):
    inputs input_ids and attention_mask (int64 [batch, seq], both axes dynamic), output
    logits; opset 14 (torch 1.13's default)."""
    import torch
    model = build_torch_model(model_dir)
    ids = torch.tensor([[BOS, 100, 200, 300, EOS]], dtype=torch.long)
    t0 = time.time()
    tmp = out + ".tmp"
    with torch.inference_mode():
        torch.onnx.export(model, (ids, torch.ones_like(ids)), tmp, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], opset_version=14,
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                        "attention_mask": {0: "batch", 1: "seq"}, "logits": {0: "batch"}})
    os.replace(tmp, out)
    print("onnx exported in %.1f s: %s (%d MB)" % (time.time() - t0, out, os.path.getsize(out) >> 20),
          file=sys.stderr)


class OrtProcess:
    """bench/ort/ort_bench.js: ONNX Runtime in a node process, one pass per request, so that
    its passes alternate with ours and PyTorch's; it times itself (session.run, wall clock)."""

    def __init__(self, script, onnx, cases, modules, threads, spin):
        env = dict(os.environ, NODE_PATH=os.path.abspath(modules))
        self.p = subprocess.Popen(["node", script, onnx, cases, str(threads), str(spin)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env)
        line = self.p.stdout.readline().split()
        if not line or line[0] != "ready":
            raise SystemExit("ONNX Runtime did not start (see above)")
        self.version, self.load_ms = line[1], float(line[2])

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline().split()
        if not line or line[0] == "error":
            raise SystemExit("ONNX Runtime: %s -> %s" % (cmd, " ".join(line) or "no answer"))
        return line

    def run(self, k):
        return float(self.ask("run %d" % k)[1])

    def logits(self, k):
        return np.array([float(x) for x in self.ask("logits %d" % k)[1:]], dtype=np.float32)

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        self.p.wait()


def load_engine(lib_path):
    import ctypes
    lib = ctypes.CDLL(lib_path)
    lib.cbb_open.restype = ctypes.c_void_p
    lib.cbb_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.cbb_open_precision.restype = ctypes.c_void_p
    lib.cbb_open_precision.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.cbb_image_bytes.restype = ctypes.c_longlong
    lib.cbb_image_bytes.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.cbb_num_labels.argtypes = [ctypes.c_void_p]
    lib.cbb_classify.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.cbb_flops.restype = ctypes.c_double
    lib.cbb_flops.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_int]
    lib.cbb_isa.restype = ctypes.c_char_p
    return lib


def parse_compare_options(args):
    """--engine LABEL=DIR:PRECISION (repeatable), --ort SCRIPT ONNX NODE_MODULES SPIN."""
    engines, ort = [], None
    i = 0
    while i < len(args):
        if args[i] == "--engine" and i + 1 < len(args):
            label, _, spec = args[i + 1].partition("=")
            d, _, prec = spec.rpartition(":")
            engines.append((label, d, prec or None))
            i += 2
        elif args[i] == "--ort" and i + 4 < len(args):
            ort = tuple(args[i + 1:i + 5])
            i += 5
        else:
            raise SystemExit("compare: bad option %s" % args[i])
    return engines, ort


def cmd_compare(model_dir, cases_path, lib_path, threads, seconds, options=()):
    """Our engine (one or more model images: precisions) and PyTorch eager in one process,
    and ONNX Runtime in a node process answering one pass at a time, same weights and
    inputs: logits checked, then passes timed in alternation (ours at each precision,
    PyTorch, ONNX Runtime, ours, ...) so that a change of the machine's load weighs on all
    alike.  (Nothing else runs between the passes: a large sgemm timed between them made
    the next passes of both up to 3 times slower.)"""
    import ctypes
    import torch

    engines, ort_spec = parse_compare_options(list(options))
    if not engines:
        engines = [("float32", model_dir, None)]
    torch.set_num_threads(threads)
    t0 = time.time()
    model = build_torch_model(model_dir)
    t1 = time.time()
    lib = load_engine(lib_path)
    err = ctypes.create_string_buffer(512)
    handles = []
    for label, d, prec in engines:
        t2 = time.time()
        h = lib.cbb_open_precision(os.path.abspath(d).encode(), prec.encode() if prec else None, err, 512)
        if not h:
            raise SystemExit("engine %s: %s" % (label, err.value.decode()))
        size = lib.cbb_image_bytes(os.path.abspath(d).encode(), prec.encode() if prec else None, err, 512)
        print("engine %s %s %s image_bytes %d load_s %.2f" % (label, prec or "default", os.path.abspath(d), size,
                                                              time.time() - t2))
        handles.append(h)
    labels = lib.cbb_num_labels(handles[0])
    ort = None
    if ort_spec is not None:
        script, onnx, modules, spin = ort_spec
        ort = OrtProcess(script, onnx, cases_path, modules, threads, spin)
        print("ort_info version %s load_ms %.0f threads %d spin %s" % (ort.version, ort.load_ms, threads, spin))
    print("torch %s threads %d load_s %.1f; ours %s (%s)" % (
        torch.__version__, torch.get_num_threads(), t1 - t0, lib.cbb_isa().decode(),
        ", ".join(e[0] for e in engines)), file=sys.stderr)
    sys.stdout.flush()

    def ours(h, ids, out):
        if lib.cbb_classify(h, ids.shape[0], ids.shape[1], ids.ctypes.data, out.ctypes.data, err, 512):
            raise SystemExit("engine: %s" % err.value.decode())

    with torch.inference_mode():
        for k, (name, b, t, ids) in enumerate(read_cases(cases_path)):
            ids = np.ascontiguousarray(ids, dtype=np.int32)
            x = torch.from_numpy(ids.astype(np.int64))
            mask = torch.ones_like(x)
            outs = [np.empty((b, labels), dtype=np.float32) for _ in handles]
            for h, o in zip(handles, outs):
                ours(h, ids, o)  # also the warm-up passes
            ref = model(x, mask).numpy()
            diff = float(np.max(np.abs(ref - outs[0])))
            if not diff <= 1e-3:
                print("mismatch %s %.3g" % (name, diff))
                raise SystemExit("PyTorch and our logits differ by %.3g on %s" % (diff, name))
            vdiff = [float(np.max(np.abs(o - outs[0]))) for o in outs]
            odiff = 0.0
            if ort is not None:
                got = ort.logits(k).reshape(b, labels)  # also its warm-up pass
                odiff = float(np.max(np.abs(ref - got)))
                if not odiff <= 1e-3:
                    raise SystemExit("PyTorch and ONNX Runtime logits differ by %.3g on %s" % (odiff, name))
            # one pass of each per round, in an order drawn afresh each round (seeded), so
            # that no one always runs right after PyTorch or ONNX Runtime (whose threads may
            # still spin) or always first
            def timed(fn):
                t1 = time.perf_counter()
                fn()
                return (time.perf_counter() - t1) * 1e3

            parts = [(lambda h=h, o=o: timed(lambda: ours(h, ids, o))) for h, o in zip(handles, outs)]
            parts.append(lambda: timed(lambda: model(x, mask)))
            if ort is not None:
                parts.append(lambda: ort.run(k))
            samples = [[] for _ in parts]
            order = list(range(len(parts)))
            shuffle = random.Random(k)
            start = time.perf_counter()
            r = 0
            while r < 3 or (time.perf_counter() - start < len(parts) * seconds and r < 500):
                shuffle.shuffle(order)
                for i in order:
                    samples[i].append(parts[i]())
                r += 1
            for tl in samples:
                tl.sort()
            times = samples[:len(handles)]
            p = samples[len(handles)]
            o_times = samples[len(handles) + 1] if ort is not None else []
            a = times[0]
            gflops = lib.cbb_flops(handles[0], b * t, t) / 1e9 / (a[len(a) // 2] / 1e3)
            print("case %s %d %d %d %.3f %.3f %.3f %.3f %.3g %.1f" % (
                name, b, t, len(a), a[len(a) // 2], a[0], p[len(p) // 2], p[0], diff, gflops))
            for (label, _, _), tl, vd in list(zip(engines, times, vdiff))[1:]:
                print("variant %s %s %d %.3f %.3f %.3g" % (name, label, len(tl), tl[len(tl) // 2], tl[0], vd))
            if ort is not None:
                print("ort %s %d %.3f %.3f %.3g" % (name, len(o_times), o_times[len(o_times) // 2], o_times[0],
                                                   odiff))
            sys.stdout.flush()
    if ort is not None:
        ort.close()


# --------------------------------------------------------------------------
# SQL

def psql(sql, stdin=None):
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql]
                       if stdin is None else
                       ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "postgres"],
                       input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit("psql failed: %s" % (sql or "")[:200])
    return r.stdout


PARALLEL = ("SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; "
            "SET min_parallel_table_scan_size = 0; SET parallel_leader_participation = on; ")


TINY_NAME = "bench_tiny"
TINY_DIR = os.path.join(ROOT, "build/golden/models/cls3")   # test/golden's, whole (run.sh assembles it)


def cmd_sql_setup(model_dir, texts_path):
    model_dir = os.path.abspath(model_dir)
    psql("CREATE EXTENSION IF NOT EXISTS camembert")
    t0 = time.time()
    psql("SELECT camembert_load('%s', '%s')" % (MODEL_NAME, model_dir))
    print("sql_load_s %.2f" % (time.time() - t0))
    print("sql_model %s default loaded %s %.2f" % (MODEL_NAME, sql_model_bytes(MODEL_NAME), time.time() - t0))
    psql("SELECT camembert_load('%s', '%s')" % (TINY_NAME, TINY_DIR))
    texts = open(texts_path, encoding="utf-8").read().splitlines()
    copy = "".join("%d\t%s\n" % (i + 1, s) for i, s in enumerate(texts))
    psql(None, stdin="DROP TABLE IF EXISTS posts; CREATE TABLE posts (id int PRIMARY KEY, body text);\n"
         "COPY posts FROM STDIN;\n" + copy + "\\.\nANALYZE posts;\n"
         "ALTER TABLE posts SET (parallel_workers = 2);\n")
    print("sql_rows %d" % len(texts))


def sql_model_name(label):
    """The SQL name of the bench model at the precision of an engine label (bench/run.sh)."""
    return MODEL_NAME if label == "float32" else "%s_%s" % (MODEL_NAME, label.replace("-", "_"))


def sql_model_bytes(name):
    """camembert_models().bytes: the model's shared memory segment."""
    return psql("SELECT bytes FROM camembert_models() WHERE name = '%s'" % name).strip() or "0"


def cmd_sql_load(name, model_dir, dtype):
    """camembert_load(name, dir, dtype => dtype) if the installed extension takes it: prints
    "sql_model NAME DTYPE loaded BYTES LOAD_S", or "sql_model NAME DTYPE refused" (an
    extension without the dtype parameter, or one that rejects that precision)."""
    t0 = time.time()
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c",
                        "SELECT camembert_load('%s', '%s', dtype => '%s')" % (name, os.path.abspath(model_dir), dtype)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write("camembert_load(dtype => '%s') refused: %s" % (dtype, r.stderr))
        print("sql_model %s %s refused" % (name, dtype))
        return
    print("sql_model %s %s loaded %s %.2f" % (name, dtype, sql_model_bytes(name), time.time() - t0))


class Session:
    """One psql session driven through pipes (statements answered up to an \\echo marker)."""

    def __init__(self):
        self.p = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "postgres"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = int(self.run("SELECT pg_backend_pid();")[0])

    def run(self, sql):
        self.p.stdin.write(sql + "\n\\echo @@DONE@@\n")
        self.p.stdin.flush()
        lines = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise SystemExit("psql ended early (see the error above) after: %s" % sql[:200])
            if line.strip() == "@@DONE@@":
                return lines
            lines.append(line.rstrip("\n"))

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cmd_sql(workers, model_name):
    s = Session()
    rows = int(s.run("SELECT count(*) FROM posts;")[0])
    s.run("SET camembert.default_model = '%s'; SET camembert.threads = 1; "
          "SET max_parallel_workers_per_gather = %d; %s" % (model_name, workers, PARALLEL))
    s.run("SELECT count(camembert_classify(body)) FROM posts WHERE id <= 4;")  # attach, warm up
    cpu0 = cpu_seconds(s.pid)
    out = "\n".join(s.run("EXPLAIN (ANALYZE, TIMING OFF, VERBOSE, COSTS OFF) "
                          "SELECT camembert_classify(body) FROM posts;"))
    cpu = cpu_seconds(s.pid) - cpu0
    s.close()
    ms = float(re.search(r"Execution Time: ([0-9.]+) ms", out).group(1))
    launched = re.search(r"Workers Launched: (\d+)", out)
    in_workers = bool(re.search(r"Parallel Seq Scan.*\n\s*Output: camembert_classify", out))
    if workers > 0 and not in_workers:
        sys.stderr.write("camembert_classify was not evaluated in the parallel workers:\n" + out)
    print("sql_workers %d launched %d ms %.1f rows_per_s %.2f classify_in_workers %d backend_cpu_ms %.0f model %s"
          % (workers, int(launched.group(1)) if launched else 0, ms, rows / (ms / 1e3),
             1 if (in_workers or workers == 0) else 0, cpu * 1e3, model_name))


def smaps_summary(pid):
    """(Pss and Rss of the largest /dev/shm/PostgreSQL.* mapping, its size, private kB elsewhere)."""
    maps = []
    cur = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split(None, 5)
                cur = {"path": parts[5].strip() if len(parts) > 5 else ""}
                maps.append(cur)
            else:
                k, _, v = line.partition(":")
                v = v.strip()
                if v.endswith(" kB"):
                    cur[k] = int(v[:-3])
    shm = [m for m in maps if m["path"].startswith("/dev/shm/PostgreSQL.")]
    model = max(shm, key=lambda m: m["Size"]) if shm else None
    private = sum(m.get("Private_Clean", 0) + m.get("Private_Dirty", 0) for m in maps if m is not model)
    if model is None:
        return 0, 0, 0, private
    return model["Pss"], model["Rss"], model["Size"], private


def cmd_memory(n):
    procs = []
    script = ("SET camembert.default_model = '%s';\nSELECT pg_backend_pid();\n"
              "SELECT count(camembert_classify(body)) FROM posts WHERE id <= 3;\n\\echo READY\n" % MODEL_NAME)
    for _ in range(n):
        p = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "postgres"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        p.stdin.write(script)
        p.stdin.flush()
        procs.append(p)
    pids = []
    for p in procs:
        lines = []
        while True:
            line = p.stdout.readline()
            if not line:
                raise SystemExit("a psql session ended early")
            if line.strip() == "READY":
                break
            lines.append(line.strip())
        pids.append(int(lines[0]))
    total_pss = total_private = 0
    size = rss_max = 0
    for pid in pids:
        pss, rss, sz, private = smaps_summary(pid)
        total_pss += pss
        total_private += private
        size = max(size, sz)
        rss_max = max(rss_max, rss)
    for p in procs:
        p.stdin.close()
        p.wait()
    print("memory backends %d model_kb %d model_pss_kb %d private_kb %d max_model_rss_kb %d"
          % (n, size, total_pss, total_private, rss_max))


# --------------------------------------------------------------------------
# report

def read_lines(path):
    if not os.path.exists(path):
        return []
    return [l.split() for l in open(path) if l.strip()]


def collect(d):
    """The numbers of one run directory, by key."""
    r = {"machine": {p[0]: p[1:] for p in read_lines(os.path.join(d, "machine.txt"))},
         "load": [float(x) for x in open(os.path.join(d, "load.txt")).read().split()]
         if os.path.exists(os.path.join(d, "load.txt")) else []}
    for t in (1, 2):
        # one file per OpenMP wait policy of the PyTorch process: each side's best median
        for f in sorted(glob.glob(os.path.join(d, "compare_t%d*.txt" % t))):
            for p in read_lines(f):
                if p[0] == "engine":  # engine LABEL PRECISION DIR image_bytes N load_s X
                    r[("image", p[1])] = {"precision": p[2], "bytes": int(p[5])}
                    r.setdefault("labels", [])
                    if p[1] not in r["labels"]:
                        r["labels"].append(p[1])
                    continue
                if p[0] == "ort_info":
                    r["ort_version"] = p[2]
                    continue
                if p[0] in ("variant", "ort"):  # variant CASE LABEL N MED MIN DIFF / ort CASE N MED MIN DIFF
                    key = ("variant", t, p[1], p[2]) if p[0] == "variant" else ("ort", t, p[1])
                    q = p[3:] if p[0] == "variant" else p[2:]
                    c = {"ms": float(q[1]), "min": float(q[2]), "diff": float(q[3])}
                    old = r.get(key)
                    if old is not None:
                        c = {"ms": min(c["ms"], old["ms"]), "min": min(c["min"], old["min"]),
                             "diff": max(c["diff"], old["diff"])}
                    r[key] = c
                    continue
                if p[0] != "case":
                    continue
                c = {"ours": float(p[5]), "ours_min": float(p[6]), "torch": float(p[7]),
                     "torch_min": float(p[8]), "diff": float(p[9]),
                     "gflop": float(p[10]) * float(p[5]) / 1e3, "iters": int(p[4])}
                old = r.get(("case", t, p[1]))
                if old is not None:
                    for k in ("ours", "ours_min", "torch", "torch_min"):
                        c[k] = min(c[k], old[k])
                    c["diff"] = max(c["diff"], old["diff"])
                r[("case", t, p[1])] = c
        # "batch B x T tokens, N iterations: min X ms, median Y ms, ...; F GFLOP per pass, ..."
        for line in open(os.path.join(d, "alone_t%d.txt" % t)) if os.path.exists(
                os.path.join(d, "alone_t%d.txt" % t)) else []:
            m = re.match(r"batch (\d+) x (\d+) tokens.*median ([0-9.]+) ms.*; ([0-9.]+) GFLOP per pass", line)
            if m:
                r[("alone", t, "b%s_t%s" % (m.group(1), m.group(2)))] = {
                    "ms": float(m.group(3)), "gflop": float(m.group(4))}
        # the same per precision: alone_t<T>_<LABEL>.txt
        for f in sorted(glob.glob(os.path.join(d, "alone_t%d_*.txt" % t))):
            label = os.path.basename(f)[len("alone_t%d_" % t):-len(".txt")]
            for line in open(f):
                m = re.match(r"batch (\d+) x (\d+) tokens.*median ([0-9.]+) ms", line)
                if m:
                    r[("alone_p", t, "b%s_t%s" % (m.group(1), m.group(2)), label)] = float(m.group(3))
        for p in read_lines(os.path.join(d, "sgemm_t%d.txt" % t)):
            if p[0] == "sgemm":  # timed before and after the cases: the best
                r[("peak", t)] = max(r.get(("peak", t), 0.0), float(p[5]))
    for p in read_lines(os.path.join(d, "sql.txt")):
        if p[0] == "sql_rows":
            r["rows"] = int(p[1])
        elif p[0] == "sql_workers":
            name = p[13] if len(p) > 13 else MODEL_NAME
            key = ("tiny", 0) if name == TINY_NAME else ("sql", int(p[1])) if name == MODEL_NAME \
                else ("sqlp", name, int(p[1]))
            r[key] = {"ms": float(p[5]), "launched": int(p[3]), "cpu": float(p[11])}
        elif p[0] == "sql_model":  # sql_model NAME DTYPE loaded BYTES LOAD_S | refused
            r[("sqlmodel", p[1])] = {"dtype": p[2], "loaded": p[3] == "loaded",
                                     "bytes": int(p[4]) if p[3] == "loaded" else 0}
            r.setdefault("sqlmodels", [])
            if p[1] not in r["sqlmodels"]:
                r["sqlmodels"].append(p[1])
    halves = [p for p in read_lines(os.path.join(d, "texts.txt")) if p[0] == "texts"]
    if halves:
        r["texts"] = {k: sum(float(p[i]) for p in halves)
                      for k, i in (("n", 1), ("tokens", 2), ("total", 3), ("forward", 4), ("cpu", 5))}
    tiny = [p for p in read_lines(os.path.join(d, "texts_tiny.txt")) if p[0] == "texts"]
    if tiny:
        r["texts_tiny"] = {"n": int(tiny[0][1]), "total": sum(float(p[3]) for p in tiny) / len(tiny)}
    for p in read_lines(os.path.join(d, "memory.txt")):
        if p[0] == "memory":
            r["memory"] = {"n": int(p[2]), "model": int(p[4]), "pss": int(p[6]), "private": int(p[8])}
    return r


def median(values):
    v = sorted(values)
    if not v:
        return float("nan")
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


# The targets ("[10] Precision"): (label, case, at least this many times faster than
# float32); (label, case, at least this many times faster than ONNX Runtime fp32); (label, at
# most this fraction of float32's image).
SPEED_TARGETS = [("bfloat16", "b32_t64", 1.7), ("bfloat16", "b1_t64", 1.4),
                 ("int8", "b32_t64", 2.5), ("int8", "b1_t64", 2.0)]
ORT_TARGETS = [("bfloat16", "b32_t64", 2.0), ("int8", "b32_t64", 2.0)]
MEMORY_TARGETS = [("bfloat16", 0.52), ("int8", 0.30), ("auto-f16", 0.52)]
LABEL_TEXT = {"float32": "float32", "bfloat16": "bfloat16", "int8": "int8",
              "auto-f16": "auto, F16 file"}


def report_precisions(runs, med, have):
    """Our engine at each precision (variant lines), ONNX Runtime (ort lines), per-precision
    images, SQL and the targets."""
    labels = []
    for r in runs:
        for lb in r.get("labels", []):
            if lb not in labels:
                labels.append(lb)
    variants = labels[1:]
    has_ort = any(k[0] == "ort" for r in runs for k in r if isinstance(k, tuple))
    if not variants and not has_ort and not any(r.get("sqlmodels") for r in runs):
        return []
    out = [""]

    def ratio(num_key, num_field, den_key, den_field):
        """Median over the runs of num/den, both from the same run (None if absent)."""
        v = [(r[num_key][num_field] if num_field else r[num_key]) /
             (r[den_key][den_field] if den_field else r[den_key])
             for r in runs if num_key in r and den_key in r]
        return median(v) if v else None

    def name_of(label):
        return LABEL_TEXT.get(label, label)

    if variants or has_ort:
        head = "| case | threads | float32 ms |"
        for lb in variants:
            head += " %s ms (x float32) |" % name_of(lb)
        head += " ONNX Runtime fp32 ms | PyTorch ms | ONNX Runtime ms / ours: %s |" % " / ".join(
            name_of(lb) for lb in labels)
        out.append(head)
        out.append("|---" * (head.count("|") - 1) + "|")
        for t in (1, 2):
            for name, b, tok in CASES:
                key = ("case", t, name)
                if not have(key):
                    continue
                label = ("latency, 1 x %d tokens" % tok) if b == 1 else ("throughput, %d x %d tokens" % (b, tok))
                line = "| %s | %d | %.1f |" % (label, t, med(key, "ours"))
                for lb in variants:
                    vk = ("variant", t, name, lb)
                    if have(vk):
                        line += " %.1f (%.2fx) |" % (med(vk, "ms"), ratio(key, "ours", vk, "ms"))
                    else:
                        line += " - |"
                ok = ("ort", t, name)
                if have(ok):
                    parts = [ratio(ok, "ms", key, "ours")] + [ratio(ok, "ms", ("variant", t, name, lb), "ms")
                                                              for lb in variants]
                    line += " %.1f | %.1f | %s |" % (med(ok, "ms"), med(key, "torch"),
                                                     " / ".join("%.2fx" % x if x else "-" for x in parts))
                else:
                    line += " - | %.1f | - |" % med(key, "torch")
                out.append(line)
        out.append("")
        notes = ["Precisions: our engine's images of the same weights built at each cb_precision "
                 "(bench/load_model.h: float32, bfloat16, int8 on the F32 file; auto on an F16 copy of it, "
                 "bench.py f16copy), "
                 "timed in the same process as PyTorch, one pass of each per round in a shuffled order; "
                 "medians (each side's better median of the two OMP_WAIT_POLICY runs); "
                 "(x float32): float32's median / this one's."]
        if has_ort:
            ver = next((r["ort_version"] for r in runs if "ort_version" in r), "?")
            odiff = max([r[k]["diff"] for r in runs for k in r if isinstance(k, tuple) and k[0] == "ort"] or [0])
            notes.append("ONNX Runtime %s (npm onnxruntime-node, CPU execution provider, fp32) on bench.py onnx's "
                         "export of the same PyTorch module: graphOptimizationLevel all, intraOpNumThreads = threads, "
                         "spinning on in the OMP_WAIT_POLICY=ACTIVE run and off in the PASSIVE one; its passes are "
                         "timed by itself (session.run) in a node process answering one pass per request, "
                         "alternated with ours and PyTorch's; its logits vs PyTorch's: max |diff| %.2g (limit 1e-3)."
                         % (ver, odiff))
        vd = []
        for lb in variants:
            d = [r[k]["diff"] for r in runs for k in r if isinstance(k, tuple) and k[0] == "variant" and k[3] == lb]
            if d:
                vd.append("%s %.2g" % (name_of(lb), max(d)))
        if vd:
            notes.append("Logits vs float32's, max |diff| over the cases: %s." % ", ".join(vd))
        out.append("  ".join(notes))

    # ours alone, per precision
    if any(k[0] == "alone_p" for r in runs for k in r if isinstance(k, tuple)):
        out.append("")
        head = "| ours alone (bench_engine), ms | threads | " + " | ".join(name_of(lb) for lb in labels) + " |"
        out.append(head)
        out.append("|---" * (head.count("|") - 1) + "|")
        for t in (1, 2):
            for name, b, tok in CASES:
                if not have(("alone", t, name)):
                    continue
                cells = ["%.1f" % med(("alone", t, name), "ms")]
                for lb in variants:
                    k = ("alone_p", t, name, lb)
                    cells.append("%.1f (%.2fx)" % (med(k), ratio(("alone", t, name), "ms", k, None))
                                 if have(k) else "-")
                out.append("| %d x %d tokens | %d | %s |" % (b, tok, t, " | ".join(cells)))

    # memory and SQL per precision (the SQL part may have its own list: BENCH_SQL_PRECISIONS)
    for r in runs:
        for n in r.get("sqlmodels", []):
            lb = n[len(MODEL_NAME) + 1:].replace("_", "-") if n != MODEL_NAME else "float32"
            if n.startswith(MODEL_NAME) and lb not in labels:
                labels.append(lb)
    if any(("image", lb) in r or ("sqlmodel", sql_model_name(lb)) in r for r in runs for lb in labels):
        out.append("")
        out.append("| precision | model image (engine) MB | x float32 | SQL: shared memory MB | SQL rows/s "
                   "(max_parallel_workers_per_gather 0) |")
        out.append("|---|---|---|---|---|")
        f32 = med(("image", labels[0]), "bytes") if have(("image", labels[0])) else float("nan")
        for lb in labels:
            size = med(("image", lb), "bytes") if have(("image", lb)) else float("nan")
            n = sql_model_name(lb)
            sqlcell, rowscell = "-", "-"
            if have(("sqlmodel", n)):
                if med(("sqlmodel", n), "loaded"):
                    sqlcell = "%.0f" % (med(("sqlmodel", n), "bytes") / 2 ** 20)
                    key = ("sql", 0) if n == MODEL_NAME else ("sqlp", n, 0)
                    if have(key):
                        rowscell = "%.2f" % (runs[0].get("rows", 0) / (med(key, "ms") / 1e3))
                else:
                    sqlcell = rowscell = "refused by the installed extension"
            out.append("| %s | %s | %s | %s | %s |" % (name_of(lb), "%.0f" % (size / 2 ** 20) if size == size else "-",
                                                        "%.2f" % (size / f32) if size == size else "-", sqlcell,
                                                        rowscell))

    # targets
    rows = []
    for lb, case, goal in SPEED_TARGETS:
        for t in (1, 2):
            x = ratio(("case", t, case), "ours", ("variant", t, case, lb), "ms")
            if x is not None:
                rows.append(("%s vs float32, %s" % (name_of(lb), case_text(case)), t, "%.2fx" % x, ">= %.1fx" % goal,
                             x >= goal))
    for lb, case, goal in ORT_TARGETS:
        for t in (1, 2):
            x = ratio(("ort", t, case), "ms", ("variant", t, case, lb), "ms")
            if x is not None:
                rows.append(("%s vs ONNX Runtime fp32, %s" % (name_of(lb), case_text(case)), t, "%.2fx" % x,
                             ">= %.1fx" % goal, x >= goal))
    for lb, goal in MEMORY_TARGETS:
        x = ratio(("image", lb), "bytes", ("image", labels[0]), "bytes")
        if x is not None:
            rows.append(("%s model image / float32's" % name_of(lb), "-", "%.2f" % x, "<= %.2f" % goal, x <= goal))
    if rows:
        out.append("")
        out.append("| target (issue \"[10] Precision\") | threads | measured | goal | |")
        out.append("|---|---|---|---|---|")
        for what, t, got, goal, ok in rows:
            out.append("| %s | %s | %s | %s | %s |" % (what, t, got, goal, "met" if ok else "NOT MET"))
    return out


def case_text(case):
    b, t = case[1:].split("_t")
    return "%s x %s tokens" % (b, t)


def cmd_report(dirs):
    runs = [collect(d) for d in dirs]

    def med(key, field=None):
        vals = [r[key] if field is None else r[key][field] for r in runs if key in r]
        return median(vals)

    def have(key):
        return any(key in r for r in runs)

    out = []
    m = runs[0]["machine"]
    if m:
        out.append("Machine: %s, %s cores; OpenBLAS detects %s, the run uses %s kernels (ours, PyTorch, "
                   "the server); our matrix products: %s."
                   % (m["cpu"][0].replace("_", " "), m["cpu"][2], m["openblas_detected"][0],
                      m["openblas_detected"][2], m.get("kernels", ["?"])[0]))
    if len(runs) > 1:
        out.append("Medians over %d runs of each run's medians; the speed-up is the median of the runs' "
                   "speed-ups (each between passes timed in alternation, under the same load)." % len(runs))
    out.append("")
    out.append("| case | threads | ours ms, median (best) | PyTorch ms, median (best) | speed-up, medians "
               "(best) | ours tokens/s | ours GFLOP/s | % of sgemm peak | ours alone: ms, GFLOP/s, % of peak |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    diffs = [r[k]["diff"] for r in runs for k in r if isinstance(k, tuple) and k[0] == "case"]

    def run_peak(r, t):
        """The sgemm peak of a run (best of 5, timed before and after its cases)."""
        return r.get(("peak", t), float("nan"))

    for t in (1, 2):
        for name, b, tok in CASES:
            key = ("case", t, name)
            if not have(key):
                continue
            ms, tms = med(key, "ours"), med(key, "torch")
            ms_min, tms_min = med(key, "ours_min"), med(key, "torch_min")
            gf = median([r[key]["gflop"] / (r[key]["ours"] / 1e3) for r in runs if key in r])
            pct = median([100 * r[key]["gflop"] / (r[key]["ours"] / 1e3) / run_peak(r, t) for r in runs if key in r])
            ratio = median([r[key]["torch"] / r[key]["ours"] for r in runs if key in r])
            ratio_min = median([r[key]["torch_min"] / r[key]["ours_min"] for r in runs if key in r])
            label = ("latency, 1 x %d tokens" % tok) if b == 1 else ("throughput, %d x %d tokens" % (b, tok))
            akey = ("alone", t, name)
            alone = "-"
            if have(akey):
                ams = med(akey, "ms")
                agf = median([r[akey]["gflop"] / (r[akey]["ms"] / 1e3) for r in runs if akey in r])
                apct = median([100 * r[akey]["gflop"] / (r[akey]["ms"] / 1e3) / run_peak(r, t)
                               for r in runs if akey in r])
                alone = "%.1f, %.1f, %.0f%%" % (ams, agf, apct)
            out.append("| %s | %d | %.1f (%.1f) | %.1f (%.1f) | %.2fx (%.2fx) | %.0f | %.1f | %.0f%% | %s |"
                       % (label, t, ms, ms_min, tms, tms_min, ratio, ratio_min, b * tok / (ms / 1e3), gf, pct,
                          alone))
    out.append("")
    peaks = {t: median([run_peak(r, t) for r in runs]) for t in (1, 2)}
    out.append("Times: medians of passes timed in alternation (ours, PyTorch, ours, ...) in one process; "
               "PyTorch runs twice, with OMP_WAIT_POLICY ACTIVE and PASSIVE, and each side's better median "
               "counts; (best): the fastest pass, less exposed to the other jobs of a shared machine.  "
               "Ours alone: bench_engine, medians, in a process of its own (passes timed in alternation "
               "with PyTorch's are slower on this machine, on both sides).  "
               "GFLOP/s: the encoder's matrix products (cb_forward_flops) at our median; %% of sgemm peak: over "
               "OpenBLAS's sgemm %dx%dx%d (C = A·Bᵀ, the best of 5, timed before and after the cases): "
               "%.0f GFLOP/s with 1 thread, %.0f with 2."
               % (PEAK_SHAPE + (peaks[1], peaks[2])))
    if diffs:
        out.append("PyTorch logits vs ours: max |diff| %.2g over every case (checked before timing, limit 1e-3)."
                   % max(diffs))
    out.extend(report_precisions(runs, med, have))
    if have(("sql", 0)):
        rows = runs[0].get("rows", 0)
        out.append("")
        out.append("| SQL: SELECT camembert_classify(body) FROM posts | value |")
        out.append("|---|---|")
        tokens = med("texts", "tokens") / med("texts", "n") if have("texts") else float("nan")
        for w in (0, 2):
            if have(("sql", w)):
                ms = med(("sql", w), "ms")
                out.append("| %d rows of %.1f tokens, max_parallel_workers_per_gather %d (%d launched) | "
                           "%.2f rows/s (%.1f s) |" % (rows, tokens, w, med(("sql", w), "launched"),
                                                      rows / (ms / 1e3), ms / 1e3))
        if have("texts"):
            n, total = med("texts", "n"), med("texts", "total")
            out.append("| engine alone, same texts one at a time (tokenize + forward), 1 thread; half before "
                       "the SQL runs, half after | %.2f rows/s (%.1f s) |" % (n / (total / 1e3), total / 1e3))
            over = [(r[("sql", 0)]["ms"] - r["texts"]["total"]) / r["texts"]["n"]
                    for r in runs if ("sql", 0) in r and "texts" in r]
            over_cpu = [(r[("sql", 0)]["cpu"] - r["texts"]["cpu"]) / r["texts"]["n"]
                        for r in runs if ("sql", 0) in r and "texts" in r]
            out.append("| SQL overhead per row = (SQL, 0 workers − engine) / rows: wall clock | %.2f ms |"
                       % median(over))
            out.append("| the same in CPU time (backend's utime+stime − engine's process CPU time) | %.2f ms |"
                       % median(over_cpu))
        if have(("tiny", 0)) and have("texts_tiny"):
            over = [(r[("tiny", 0)]["ms"] - r["texts_tiny"]["total"]) / r["texts_tiny"]["n"]
                    for r in runs if ("tiny", 0) in r and "texts_tiny" in r]
            out.append("| the same with a tiny model (test/golden/models/cls3: 2 layers, hidden 64), where the "
                       "forward pass costs little (%d rows: SQL %.0f ms, engine %.0f ms, medians) | %.3f ms |"
                       % (runs[0]["texts_tiny"]["n"], med(("tiny", 0), "ms"), med("texts_tiny", "total"),
                          median(over)))
    if have("memory"):
        n, model, pss, priv = (int(med("memory", f)) for f in ("n", "model", "pss", "private"))
        out.append("")
        out.append("| memory: %d backends that ran the model | MB | x model |" % n)
        out.append("|---|---|---|")
        out.append("| one model (its shared memory segment) | %.0f | 1.00 |" % (model / 1024))
        out.append("| Σ PSS of the model segment over the %d backends | %.0f | %.2f |" % (n, pss / 1024, pss / model))
        out.append("| Σ private memory of the %d backends | %.0f | %.2f |" % (n, priv / 1024, priv / model))
        out.append("| total (PSS of the segment + private) | %.0f | %.2f |"
                   % ((pss + priv) / 1024, (pss + priv) / model))
        out.append("| whole segment + private (the segment's untouched pages counted too) | %.0f | %.2f |"
                   % ((model + priv) / 1024, (model + priv) / model))
    loads = [" / ".join("%.2f" % x for x in r["load"]) for r in runs if r["load"]]
    if loads:
        out.append("")
        out.append("Load average (1 min) at start / end of each run: %s" % "; ".join(loads))
    print("\n".join(out))


def main():
    a = sys.argv[1:]
    if not a:
        sys.stderr.write(__doc__)
        return 2
    c = a[0]
    if c == "cases":
        cmd_cases(a[1])
    elif c == "texts":
        cmd_texts(a[1], int(a[2]))
    elif c == "split":
        cmd_split(a[1], a[2], a[3])
    elif c == "f16copy":
        cmd_f16copy(a[1], a[2])
    elif c == "onnx":
        cmd_onnx(a[1], a[2])
    elif c == "compare":
        cmd_compare(a[1], a[2], a[3], int(a[4]), float(a[5]), a[6:])
    elif c == "sqlsetup":
        cmd_sql_setup(a[1], a[2])
    elif c == "sqlload":
        cmd_sql_load(a[1], a[2], a[3])
    elif c == "sql":
        cmd_sql(int(a[1]), a[2] if len(a) > 2 else MODEL_NAME)
    elif c == "memory":
        cmd_memory(int(a[1]))
    elif c == "report":
        cmd_report(a[1:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
