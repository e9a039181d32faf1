#!/usr/bin/python3
"""make_test_models.py CORPUS OUT_DIR — small SentencePiece BPE models that
exercise what the golden model does not: identity normalization, no dummy
prefix / no whitespace removal, user-defined and control symbols, UNUSED
pieces (some NORMAL pieces re-typed in the protobuf).  Trained with Debian's
python3-sentencepiece (0.1.97); for bench/tokenizer/crosscheck only.
"""
import os
import sys

import sentencepiece as spm


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def read_varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def fields(b):
    """(field, wire_type, raw value bytes, payload) for each field of a message."""
    i = 0
    while i < len(b):
        start = i
        tag, i = read_varint(b, i)
        f, wt = tag >> 3, tag & 7
        if wt == 0:
            _, i = read_varint(b, i)
            yield f, wt, b[start:i], None
        elif wt == 1:
            i += 8
            yield f, wt, b[start:i], None
        elif wt == 5:
            i += 4
            yield f, wt, b[start:i], None
        elif wt == 2:
            n, j = read_varint(b, i)
            i = j + n
            yield f, wt, b[start:i], b[j:i]
        else:
            raise ValueError("group")


def retype_pieces(model, pick):
    """Rewrite piece types: pick(index, piece_bytes, type) -> new type or None."""
    out = bytearray()
    index = 0
    for f, wt, raw, payload in fields(model):
        if f == 1 and wt == 2:
            piece, ptype = b"", 1
            for f2, wt2, raw2, pl2 in fields(payload):
                if f2 == 1:
                    piece = pl2
                elif f2 == 3:
                    ptype, _ = read_varint(raw2, 1)
            new = pick(index, piece, ptype)
            if new is not None and new != ptype:
                body = bytearray()
                for f2, wt2, raw2, pl2 in fields(payload):
                    if f2 != 3:
                        body += raw2
                body += varint(3 << 3) + varint(new)
                raw = varint(1 << 3 | 2) + varint(len(body)) + bytes(body)
            index += 1
        out += raw
    return bytes(out)


def main():
    corpus, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    common = dict(input=corpus, model_type="bpe", minloglevel=2, input_sentence_size=20000,
                  shuffle_input_sentence=False)
    spm.SentencePieceTrainer.train(model_prefix=f"{out}/identity", vocab_size=300,
                                   normalization_rule_name="identity", character_coverage=0.98, **common)
    spm.SentencePieceTrainer.train(model_prefix=f"{out}/user_defined", vocab_size=400,
                                   user_defined_symbols=["<sep>", "▁le", "abc", "ent", "é"],
                                   control_symbols=["<ctl>"], normalization_rule_name="identity",
                                   add_dummy_prefix=False, remove_extra_whitespaces=False,
                                   character_coverage=0.98, **common)
    spm.SentencePieceTrainer.train(model_prefix=f"{out}/nfkc_user_defined", vocab_size=1000,
                                   user_defined_symbols=["<sep>", "▁le", "abc", "ent"],
                                   character_coverage=0.9995, **common)
    # UNUSED pieces: every 5th NORMAL piece of 2+ characters.
    src = open(f"{out}/nfkc_user_defined.model", "rb").read()
    unused = retype_pieces(src, lambda i, p, t: 5 if t == 1 and len(p.decode()) >= 2 and i % 5 == 0 else None)
    open(f"{out}/unused.model", "wb").write(unused)
    sp = spm.SentencePieceProcessor(model_file=f"{out}/unused.model")
    n_unused = sum(sp.IsUnused(i) for i in range(sp.GetPieceSize()))
    print(f"models in {out}: identity, user_defined, nfkc_user_defined, unused ({n_unused} UNUSED pieces)")


if __name__ == "__main__":
    main()
