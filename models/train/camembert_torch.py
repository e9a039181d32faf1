"""A CamemBERT (RoBERTa) encoder in plain torch.nn, with the three heads of
transformers' CamembertForMaskedLM / CamembertForCausalLM /
CamembertForSequenceClassification, the same computation and, through
hf_state_dict(), the same tensor names.  Also: the CamembertTokenizer id
mapping over a SentencePiece model, a safetensors writer and the HF files
(config.json, tokenizer files) of a model directory.

Semantics copied (test/golden/README.md, "What transformers does"):
  - position ids: padding_idx + cumsum(ids != pad) on non-pad tokens, padding_idx on pad;
  - embeddings = word + position + token_type[0], then LayerNorm;
  - post-LN blocks, additive attention mask with float32 min, causal mask for the decoder,
    exact (erf) GELU;
  - LM head: dense -> gelu -> LayerNorm -> decoder tied to the word embeddings + lm_head.bias;
  - classification head: hidden state at position 0 -> dense -> tanh -> out_proj (no pooler).
"""
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, UNK, BOS, EOS = 1, 3, 5, 6
FAIRSEQ_OFFSET = 4


# --------------------------------------------------------------------------
# tokenizer: CamembertTokenizer ids over a SentencePiece model

class CamembertIds:
    """sp_id + 4; SentencePiece's unknown (0) -> 3; <mask> = sp size + 4.
    Encodes plain text (no literal special tokens inside, which is what the
    training text is: the corpus never contains "<mask>", "<s>"...)."""

    def __init__(self, sp):
        self.sp = sp
        self.sp_size = sp.get_piece_size()
        self.vocab_size = self.sp_size + 5
        self.mask_id = self.sp_size + FAIRSEQ_OFFSET

    def encode_pieces_ids(self, text):
        ids = self.sp.encode(text)
        return [UNK if i == self.sp.unk_id() else i + FAIRSEQ_OFFSET for i in ids]

    def encode(self, text):
        return [BOS] + self.encode_pieces_ids(text) + [EOS]

    def decode(self, ids):
        out = [i - FAIRSEQ_OFFSET for i in ids if i > EOS and i != self.mask_id]
        return self.sp.decode(out)

    def piece(self, i):
        specials = {0: "<s>NOTUSED", 1: "<pad>", 2: "</s>NOTUSED", 3: "<unk>", 4: "<unk>NOTUSED"}
        if i in specials:
            return specials[i]
        if i == self.mask_id:
            return "<mask>"
        return self.sp.id_to_piece(i - FAIRSEQ_OFFSET)


# --------------------------------------------------------------------------
# model

class Config:
    def __init__(self, vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
                 intermediate_size, max_position_embeddings, layer_norm_eps=1e-5,
                 hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                 initializer_range=0.02):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.layer_norm_eps = layer_norm_eps
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        H = c.hidden_size
        self.heads = c.num_attention_heads
        self.query = nn.Linear(H, H)
        self.key = nn.Linear(H, H)
        self.value = nn.Linear(H, H)
        self.attn_out = nn.Linear(H, H)
        self.attn_ln = nn.LayerNorm(H, eps=c.layer_norm_eps)
        self.inter = nn.Linear(H, c.intermediate_size)
        self.out = nn.Linear(c.intermediate_size, H)
        self.out_ln = nn.LayerNorm(H, eps=c.layer_norm_eps)
        self.drop = nn.Dropout(c.hidden_dropout_prob)
        self.attn_drop = nn.Dropout(c.attention_probs_dropout_prob)

    def forward(self, x, add_mask):
        B, T, H = x.shape
        A = self.heads
        d = H // A

        def split(t):
            return t.view(B, T, A, d).transpose(1, 2)

        q = split(self.query(x))
        k = split(self.key(x))
        v = split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + add_mask
        probs = self.attn_drop(torch.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, H)
        x = self.attn_ln(self.drop(self.attn_out(ctx)) + x)
        h = F.gelu(self.inter(x))  # exact erf GELU
        return self.out_ln(self.drop(self.out(h)) + x)


class Camembert(nn.Module):
    """head: "mlm", "clm" or "cls" (num_labels)."""

    def __init__(self, c, head, num_labels=0):
        super().__init__()
        self.c = c
        self.head = head
        self.is_decoder = head == "clm"
        H = c.hidden_size
        self.word = nn.Embedding(c.vocab_size, H, padding_idx=PAD)
        self.pos = nn.Embedding(c.max_position_embeddings, H, padding_idx=PAD)
        self.tok_type = nn.Embedding(1, H)
        self.emb_ln = nn.LayerNorm(H, eps=c.layer_norm_eps)
        self.emb_drop = nn.Dropout(c.hidden_dropout_prob)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])
        if head in ("mlm", "clm"):
            self.lm_dense = nn.Linear(H, H)
            self.lm_ln = nn.LayerNorm(H, eps=c.layer_norm_eps)
            self.lm_bias = nn.Parameter(torch.zeros(c.vocab_size))
        else:
            self.cls_dense = nn.Linear(H, H)
            self.cls_drop = nn.Dropout(c.hidden_dropout_prob)
            self.cls_out = nn.Linear(H, num_labels)
        self.apply(self._init)

    def _init(self, m):
        # transformers' RobertaPreTrainedModel._init_weights
        r = self.c.initializer_range
        if isinstance(m, nn.Linear):
            m.weight.data.normal_(0.0, r)
            m.bias.data.zero_()
        elif isinstance(m, nn.Embedding):
            m.weight.data.normal_(0.0, r)
            if m.padding_idx is not None:
                m.weight.data[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            m.weight.data.fill_(1.0)
            m.bias.data.zero_()

    def encode(self, ids, attention_mask):
        B, T = ids.shape
        nonpad = ids.ne(PAD).long()
        positions = torch.cumsum(nonpad, dim=1) * nonpad + PAD
        x = self.word(ids) + self.pos(positions) + self.tok_type.weight[0]
        x = self.emb_drop(self.emb_ln(x))
        minv = torch.finfo(torch.float32).min
        add = (1.0 - attention_mask[:, None, None, :].float()) * minv  # [B,1,1,T]
        if self.is_decoder:
            causal = torch.ones(T, T, dtype=torch.bool).tril()
            keep = causal[None, None, :, :] & attention_mask[:, None, None, :].bool()
            add = torch.zeros(B, 1, T, T).masked_fill(~keep, minv)
        for layer in self.layers:
            x = layer(x, add)
        return x

    def lm_transform(self, h):
        return self.lm_ln(F.gelu(self.lm_dense(h)))

    def lm_logits(self, h):
        return F.linear(self.lm_transform(h), self.word.weight, self.lm_bias)

    def lm_loss(self, h, targets):
        """Mean cross-entropy of the LM head on rows h [N, H] (chunked)."""
        return ChunkedLMLoss.apply(self.lm_transform(h), self.word.weight, self.lm_bias, targets)

    def cls_logits(self, h):
        x = h[:, 0]
        x = torch.tanh(self.cls_dense(self.cls_drop(x)))
        return self.cls_out(self.cls_drop(x))

    def load_encoder_from(self, other):
        """Copy the embeddings and encoder layers of another model."""
        mine = {k: v for k, v in self.state_dict().items()}
        for k, v in other.state_dict().items():
            if k.startswith(("word.", "pos.", "tok_type.", "emb_ln.", "layers.")):
                mine[k] = v.clone()
        self.load_state_dict(mine)


class ChunkedLMLoss(torch.autograd.Function):
    """mean cross-entropy of (t · Wᵀ + b) against targets (-100 = ignored),
    computed CHUNK rows at a time, the gradients in the same pass, so that no
    [rows, vocab] tensor larger than CHUNK rows is ever allocated (fresh large
    allocations are very slow on the training machine: page faults).  Equal
    to F.cross_entropy(F.linear(t, W, b), targets)."""
    CHUNK = 256

    @staticmethod
    def forward(ctx, t, W, b, targets):
        valid = targets != -100
        n = max(1, int(valid.sum()))
        gt = torch.zeros_like(t)
        gW = torch.zeros_like(W)
        gb = torch.zeros_like(b)
        total = torch.zeros((), dtype=torch.float64)
        for s in range(0, t.shape[0], ChunkedLMLoss.CHUNK):
            tc = t[s:s + ChunkedLMLoss.CHUNK]
            yc = targets[s:s + ChunkedLMLoss.CHUNK]
            vc = valid[s:s + ChunkedLMLoss.CHUNK]
            logits = torch.addmm(b, tc, W.t())
            lse = torch.logsumexp(logits, dim=1)
            ys = yc.clamp(min=0)
            picked = logits.gather(1, ys[:, None])[:, 0]
            total += ((lse - picked) * vc).sum().double()
            p = logits.sub_(lse[:, None]).exp_()           # softmax, in place
            p[torch.arange(p.shape[0]), ys] -= 1.0
            p.mul_((vc.float() / n)[:, None])
            gt[s:s + ChunkedLMLoss.CHUNK] = p @ W
            gW.addmm_(p.t(), tc)
            gb += p.sum(0)
        ctx.save_for_backward(gt, gW, gb)
        return (total / n).float()

    @staticmethod
    def backward(ctx, g):
        gt, gW, gb = ctx.saved_tensors
        return gt * g, gW * g, gb * g, None


LAYER_NAMES = [
    ("query", "attention.self.query"), ("key", "attention.self.key"),
    ("value", "attention.self.value"), ("attn_out", "attention.output.dense"),
    ("attn_ln", "attention.output.LayerNorm"), ("inter", "intermediate.dense"),
    ("out", "output.dense"), ("out_ln", "output.LayerNorm"),
]


def hf_state_dict(model):
    """The tensors save_pretrained() keeps, under transformers' names (the
    tied decoder is not stored)."""
    sd = {}
    p = "roberta."
    sd[p + "embeddings.word_embeddings.weight"] = model.word.weight
    sd[p + "embeddings.position_embeddings.weight"] = model.pos.weight
    sd[p + "embeddings.token_type_embeddings.weight"] = model.tok_type.weight
    sd[p + "embeddings.LayerNorm.weight"] = model.emb_ln.weight
    sd[p + "embeddings.LayerNorm.bias"] = model.emb_ln.bias
    for i, layer in enumerate(model.layers):
        for mine, theirs in LAYER_NAMES:
            m = getattr(layer, mine)
            sd[f"{p}encoder.layer.{i}.{theirs}.weight"] = m.weight
            sd[f"{p}encoder.layer.{i}.{theirs}.bias"] = m.bias
    if model.head in ("mlm", "clm"):
        sd["lm_head.dense.weight"] = model.lm_dense.weight
        sd["lm_head.dense.bias"] = model.lm_dense.bias
        sd["lm_head.layer_norm.weight"] = model.lm_ln.weight
        sd["lm_head.layer_norm.bias"] = model.lm_ln.bias
        sd["lm_head.bias"] = model.lm_bias
    else:
        sd["classifier.dense.weight"] = model.cls_dense.weight
        sd["classifier.dense.bias"] = model.cls_dense.bias
        sd["classifier.out_proj.weight"] = model.cls_out.weight
        sd["classifier.out_proj.bias"] = model.cls_out.bias
    return {k: v.detach() for k, v in sd.items()}


def round_weights_(model, dtype):
    """Round every parameter to dtype and back to float32, in place (what the
    shipped file holds, exactly upcast)."""
    with torch.no_grad():
        for prm in model.parameters():
            prm.copy_(prm.to(dtype).to(torch.float32))


# --------------------------------------------------------------------------
# files

SAFETENSORS_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def write_safetensors(path, tensors, dtype=torch.float16):
    """u64-LE header length N, N bytes of JSON (names sorted, __metadata__
    first as {"format": "pt"}), padded with spaces so that 8 + N is a multiple
    of 8, then the raw little-endian tensors back to back in header order."""
    names = sorted(tensors)
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for n in names:
        t = tensors[n].to(dtype).contiguous().cpu()
        if dtype == torch.bfloat16:
            b = t.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            b = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[n] = {"dtype": SAFETENSORS_DTYPE[dtype], "shape": list(t.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - (8 + len(hj)) % 8) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hj)))
        fh.write(hj)
        for b in blobs:
            fh.write(b)


def read_safetensors(path):
    """Read back (for the checks): name -> float32 tensor."""
    import numpy as np
    with open(path, "rb") as fh:
        data = fh.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    np_dtype = {"F32": "<f4", "F16": "<f2"}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[base + a: base + b], dtype=np_dtype[info["dtype"]])
        out[name] = torch.from_numpy(arr.astype("<f4").reshape(info["shape"]))
    return out


def hf_config(model, architecture, torch_dtype, id2label=None, problem_type=None):
    """config.json as transformers 4.37 writes it for CamembertConfig
    (save_pretrained: sorted keys, indent 2, only non-default keys plus the
    always-written ones)."""
    c = model.c
    d = {
        "architectures": [architecture],
        "attention_probs_dropout_prob": c.attention_probs_dropout_prob,
        "bos_token_id": BOS,
        "classifier_dropout": None,
        "eos_token_id": EOS,
        "hidden_act": "gelu",
        "hidden_dropout_prob": c.hidden_dropout_prob,
        "hidden_size": c.hidden_size,
        "initializer_range": c.initializer_range,
        "intermediate_size": c.intermediate_size,
        "layer_norm_eps": c.layer_norm_eps,
        "max_position_embeddings": c.max_position_embeddings,
        "model_type": "camembert",
        "num_attention_heads": c.num_attention_heads,
        "num_hidden_layers": c.num_hidden_layers,
        "pad_token_id": PAD,
        "position_embedding_type": "absolute",
        "torch_dtype": torch_dtype,
        "transformers_version": "4.37.0.dev0",
        "type_vocab_size": 1,
        "use_cache": True,
        "vocab_size": c.vocab_size,
    }
    if architecture == "CamembertForCausalLM":
        d["is_decoder"] = True
    if id2label is not None:
        d["id2label"] = {str(i): l for i, l in enumerate(id2label)}
        d["label2id"] = {l: i for i, l in enumerate(id2label)}
    if problem_type is not None:
        d["problem_type"] = problem_type
    # transformers writes json.dumps(d, indent=2, sort_keys=True) + "\n" (ASCII escapes)
    return json.dumps(d, indent=2, sort_keys=True) + "\n"


def _added(content, lstrip=False):
    return {"content": content, "lstrip": lstrip, "normalized": False, "rstrip": False,
            "single_word": False, "special": True}


def tokenizer_files(mask_id, model_max_length):
    """tokenizer_config.json, special_tokens_map.json, added_tokens.json as
    CamembertTokenizer.save_pretrained() writes them (transformers 4.37)."""
    added = {"0": _added("<s>NOTUSED"), "1": _added("<pad>"), "2": _added("</s>NOTUSED"),
             "3": _added("<unk>"), "4": _added("<unk>NOTUSED"), "5": _added("<s>"),
             "6": _added("</s>"), str(mask_id): _added("<mask>", lstrip=True)}
    tc = {
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<s>NOTUSED", "</s>NOTUSED", "<unk>NOTUSED"],
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": True,
        "cls_token": "<s>",
        "eos_token": "</s>",
        "mask_token": "<mask>",
        "model_max_length": model_max_length,
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "sp_model_kwargs": {},
        "tokenizer_class": "CamembertTokenizer",
        "unk_token": "<unk>",
    }

    def tok(content, lstrip=False):
        return {"content": content, "lstrip": lstrip, "normalized": False, "rstrip": False,
                "single_word": False}

    stm = {
        "additional_special_tokens": ["<s>NOTUSED", "</s>NOTUSED", "<unk>NOTUSED"],
        "bos_token": tok("<s>"), "cls_token": tok("<s>"), "eos_token": tok("</s>"),
        "mask_token": tok("<mask>", lstrip=True), "pad_token": tok("<pad>"),
        "sep_token": tok("</s>"), "unk_token": tok("<unk>"),
    }
    return {
        "tokenizer_config.json": json.dumps(tc, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        "special_tokens_map.json": json.dumps(stm, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        "added_tokens.json": json.dumps({"<mask>": mask_id}, indent=2, sort_keys=True,
                                        ensure_ascii=False) + "\n",
    }


def save_model_dir(outdir, model, architecture, sp_model_path, model_max_length,
                   dtype=torch.float16, id2label=None, problem_type=None, extra_files=None):
    os.makedirs(outdir, exist_ok=True)
    dtype_name = {torch.float16: "float16", torch.float32: "float32", torch.bfloat16: "bfloat16"}[dtype]
    with open(os.path.join(outdir, "config.json"), "w") as fh:
        fh.write(hf_config(model, architecture, dtype_name, id2label, problem_type))
    write_safetensors(os.path.join(outdir, "model.safetensors"), hf_state_dict(model), dtype)
    with open(sp_model_path, "rb") as src, open(os.path.join(outdir, "sentencepiece.bpe.model"), "wb") as dst:
        dst.write(src.read())
    for name, text in tokenizer_files(model.c.vocab_size - 1, model_max_length).items():
        with open(os.path.join(outdir, name), "w", encoding="utf-8") as fh:
            fh.write(text)
    for name, text in (extra_files or {}).items():
        with open(os.path.join(outdir, name), "w", encoding="utf-8") as fh:
            fh.write(text)
