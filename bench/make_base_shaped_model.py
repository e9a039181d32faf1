#!/usr/bin/python3
"""make_base_shaped_model.py — a camembert-base-shaped CamembertForSequenceClassification
with deterministic random weights, for benchmarks (numpy only).

    /usr/bin/python3 bench/make_base_shaped_model.py OUT_DIR [--seed N]

Writes OUT_DIR/config.json, OUT_DIR/model.safetensors (float32, the tensor names
save_pretrained writes for CamembertForSequenceClassification) and a copy of
test/golden/tokenizer_fr8k/sentencepiece.bpe.model (8 005 ids; the config keeps
camembert-base's vocab_size 32 005 so that the embedding matrix has its shape).

Shapes: 12 layers, hidden 768, 12 heads, intermediate 3072, vocab 32005,
max_position_embeddings 514, type_vocab_size 1, 2 labels: 110.6 M parameters,
442 MB.  Weights: N(0, 0.02) (initializer_range), LayerNorm weights 1 + N(0, 0.05),
biases N(0, 0.02); each tensor from its own generator seeded by (seed, crc32(name)),
so the file is the same on every run and every machine.
"""
import json
import os
import shutil
import struct
import sys
import zlib

import numpy as np

HIDDEN = 768
LAYERS = 12
HEADS = 12
INTER = 3072
VOCAB = 32005
MAX_POS = 514
TYPE_VOCAB = 1
LABELS = 2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SP_MODEL = os.path.join(ROOT, "test", "golden", "tokenizer_fr8k", "sentencepiece.bpe.model")

CONFIG = {
    "architectures": ["CamembertForSequenceClassification"],
    "attention_probs_dropout_prob": 0.1,
    "bos_token_id": 5,
    "classifier_dropout": None,
    "eos_token_id": 6,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": HIDDEN,
    "id2label": {"0": "negatif", "1": "positif"},
    "initializer_range": 0.02,
    "intermediate_size": INTER,
    "label2id": {"negatif": 0, "positif": 1},
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": MAX_POS,
    "model_type": "camembert",
    "num_attention_heads": HEADS,
    "num_hidden_layers": LAYERS,
    "pad_token_id": 1,
    "position_embedding_type": "absolute",
    "problem_type": "single_label_classification",
    "torch_dtype": "float32",
    "transformers_version": "4.37.0.dev0",
    "type_vocab_size": TYPE_VOCAB,
    "use_cache": True,
    "vocab_size": VOCAB,
}


def tensor_shapes():
    """name -> (shape, kind) for every tensor of the model."""
    t = {}
    e = "roberta.embeddings."
    t[e + "word_embeddings.weight"] = ((VOCAB, HIDDEN), "w")
    t[e + "position_embeddings.weight"] = ((MAX_POS, HIDDEN), "w")
    t[e + "token_type_embeddings.weight"] = ((TYPE_VOCAB, HIDDEN), "w")
    t[e + "LayerNorm.weight"] = ((HIDDEN,), "ln")
    t[e + "LayerNorm.bias"] = ((HIDDEN,), "b")
    for i in range(LAYERS):
        p = "roberta.encoder.layer.%d." % i
        for name in ("query", "key", "value"):
            t[p + "attention.self.%s.weight" % name] = ((HIDDEN, HIDDEN), "w")
            t[p + "attention.self.%s.bias" % name] = ((HIDDEN,), "b")
        t[p + "attention.output.dense.weight"] = ((HIDDEN, HIDDEN), "w")
        t[p + "attention.output.dense.bias"] = ((HIDDEN,), "b")
        t[p + "attention.output.LayerNorm.weight"] = ((HIDDEN,), "ln")
        t[p + "attention.output.LayerNorm.bias"] = ((HIDDEN,), "b")
        t[p + "intermediate.dense.weight"] = ((INTER, HIDDEN), "w")
        t[p + "intermediate.dense.bias"] = ((INTER,), "b")
        t[p + "output.dense.weight"] = ((HIDDEN, INTER), "w")
        t[p + "output.dense.bias"] = ((HIDDEN,), "b")
        t[p + "output.LayerNorm.weight"] = ((HIDDEN,), "ln")
        t[p + "output.LayerNorm.bias"] = ((HIDDEN,), "b")
    t["classifier.dense.weight"] = ((HIDDEN, HIDDEN), "w")
    t["classifier.dense.bias"] = ((HIDDEN,), "b")
    t["classifier.out_proj.weight"] = ((LABELS, HIDDEN), "w")
    t["classifier.out_proj.bias"] = ((LABELS,), "b")
    return t


def make_tensor(name, shape, kind, seed):
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    x = rng.standard_normal(shape, dtype=np.float32)
    if kind == "ln":
        return (1.0 + 0.05 * x).astype("<f4")
    return (0.02 * x).astype("<f4")


def write_safetensors(path, seed):
    shapes = tensor_shapes()
    names = sorted(shapes)
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in names:
        shape, _ = shapes[name]
        nbytes = 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name in names:
            shape, kind = shapes[name]
            f.write(make_tensor(name, shape, kind, seed).tobytes())
    os.replace(tmp, path)
    return sum(int(np.prod(s)) for s, _ in shapes.values())


def main():
    args = sys.argv[1:]
    seed = 20240119
    if "--seed" in args:
        i = args.index("--seed")
        seed = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        sys.stderr.write("usage: make_base_shaped_model.py OUT_DIR [--seed N]\n")
        return 2
    out = args[0]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2, sort_keys=True)
        f.write("\n")
    shutil.copyfile(SP_MODEL, os.path.join(out, "sentencepiece.bpe.model"))
    n = write_safetensors(os.path.join(out, "model.safetensors"), seed)
    print("wrote %s: %.1f M parameters, %.0f MB" % (out, n / 1e6, 4 * n / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
