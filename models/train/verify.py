#!/usr/bin/python3
"""Reference outputs of the shipped model directories, for checking another
implementation (e.g. the extension's C core) against this torch one.

    /usr/bin/python3 models/train/verify.py MODEL_DIR OUT_PREFIX

Reads MODEL_DIR/config.json and model.safetensors back (F16 upcast exactly to
float32) into a fresh torch model under transformers' tensor names (every
tensor of the file must be used, and every parameter found), then writes:

  OUT_PREFIX.model.txt   kind (mlm|clm|cls), vocab size, number of cases; per
                         case a line "T id_1 .. id_T" and a line with the
                         logits: [T][V] token logits (mlm, clm) or [num_labels]
                         class logits (cls), float32 printed with 9 digits.
  OUT_PREFIX.tok.txt     tokenizer cases: per case a line with the byte length
                         of the text, the UTF-8 text, a newline, then
                         "N id_1 .. id_N": <s> + SentencePiece ids mapped as
                         CamembertTokenizer does + </s>.  Plain lines only
                         (no literal special tokens).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)

import torch  # noqa: E402
import sentencepiece as spm  # noqa: E402

from camembert_torch import (Camembert, CamembertIds, Config, hf_state_dict,  # noqa: E402
                             read_safetensors)

TEXTS = [
    "La commande ls affiche le contenu du répertoire.",
    "La commande <mask> affiche le contenu du répertoire.",
    "Le fichier de configuration se trouve dans /etc.",
    "Die Datei wird nicht gelöscht.",
    "El archivo no se borra.",
    "The file is not removed.",
    "Cette option désactive l'affichage des fichiers cachés ; voir aussi --all.",
    "",
]


def load(model_dir):
    with open(os.path.join(model_dir, "config.json")) as fh:
        cj = json.load(fh)
    arch = cj["architectures"][0]
    head = {"CamembertForMaskedLM": "mlm", "CamembertForCausalLM": "clm",
            "CamembertForSequenceClassification": "cls"}[arch]
    c = Config(cj["vocab_size"], cj["hidden_size"], cj["num_hidden_layers"],
               cj["num_attention_heads"], cj["intermediate_size"], cj["max_position_embeddings"],
               cj["layer_norm_eps"], 0.0, 0.0)
    m = Camembert(c, head, num_labels=len(cj.get("id2label", {})))
    tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    names = hf_state_dict(m)
    if set(names) != set(tensors):
        sys.exit(f"tensor names differ: missing {set(names) - set(tensors)}, "
                 f"unexpected {set(tensors) - set(names)}")
    with torch.no_grad():
        for n, p in names.items():
            if tuple(p.shape) != tuple(tensors[n].shape):
                sys.exit(f"{n}: shape {tuple(tensors[n].shape)}, expected {tuple(p.shape)}")
            p.copy_(tensors[n])  # hf_state_dict returns detached views of the parameters
    m.eval()
    return m, head, cj


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    m, head, cj = load(model_dir)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "sentencepiece.bpe.model"))
    tok = CamembertIds(sp)
    assert tok.vocab_size == cj["vocab_size"], (tok.vocab_size, cj["vocab_size"])
    cases = []
    for t in TEXTS:
        if "<mask>" in t:
            left, right = t.split("<mask>")
            ids = [5] + tok.encode_pieces_ids(left.rstrip()) + [tok.mask_id] + \
                tok.encode_pieces_ids(right) + [6]
        else:
            ids = tok.encode(t)
        if head == "clm":
            ids = ids[:-1]  # a prompt: <s> + pieces
        cases.append(ids)
    with open(out + ".model.txt", "w") as fh:
        fh.write(f"{head} {cj['vocab_size']} {len(cases)}\n")
        with torch.no_grad():
            for ids in cases:
                x = torch.tensor([ids])
                h = m.encode(x, torch.ones_like(x))
                vals = m.lm_logits(h)[0].reshape(-1) if head != "cls" else m.cls_logits(h)[0]
                fh.write(f"{len(ids)} " + " ".join(map(str, ids)) + "\n")
                fh.write(" ".join(f"{v:.9g}" for v in vals.tolist()) + "\n")
    # tokenizer cases: held-out French lines and labelled sentences of every language
    work = sys.argv[3] if len(sys.argv) > 3 else "build/models-train"
    lines = []
    with open(os.path.join(work, "corpus", "fr_lm.jsonl"), encoding="utf-8") as fh:
        lines += [json.loads(l)["text"] for l in fh][::60]
    with open(os.path.join(work, "corpus", "langid.jsonl"), encoding="utf-8") as fh:
        lines += [json.loads(l)["text"] for l in fh][::400]
    lines += TEXTS[:1] + TEXTS[2:]
    with open(out + ".tok.txt", "wb") as fh:
        for t in lines:
            b = t.encode("utf-8")
            ids = tok.encode(t)
            fh.write(f"{len(b)}\n".encode() + b + b"\n" + (f"{len(ids)} " + " ".join(map(str, ids)) + "\n").encode())
    print(f"{model_dir}: {len(cases)} model cases, {len(lines)} tokenizer cases -> {out}.*")


if __name__ == "__main__":
    main()
