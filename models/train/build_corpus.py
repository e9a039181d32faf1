#!/usr/bin/python3
"""Build the training corpora of the bundled models from Debian packages.

    /usr/bin/python3 models/train/build_corpus.py [WORK_DIR]   (default build/models-train)

Installs (apt-get, as root, only what is missing) the packages below, renders
every man page they ship with groff to plain UTF-8 text, and writes into
WORK_DIR/corpus/:

  fr_lm.jsonl       French prose lines for the tokenizer, the masked LM and the
                    causal LM: manpages-fr + debian-reference-fr + debian-faq-fr.
                    {"doc", "split": "train"|"test", "text"}
  langid.jsonl      sentences labelled fr/de/es/en for the language classifier,
                    from manpages-fr / manpages-de / manpages-es / manpages.
                    {"doc", "lang", "split": "train"|"val"|"test", "text"}
  stats.json        counts (pages, lines, bytes, sentences per split and language)

Everything is deterministic: files are processed in sorted order, splits are
decided by a hash of the document name (md5), never by a random generator.

Held-out documents: a man page is identified by its base name (e.g. "ls.1"),
the same in every language, so a page held out for testing is held out in all
four languages (no translation of a test page is seen in training).
"""
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys

PACKAGES = ["manpages-fr", "manpages-de", "manpages-es", "manpages",
            "debian-reference-fr", "debian-faq-fr", "groff-base"]
MAN_PACKAGES = {"fr": "manpages-fr", "de": "manpages-de", "es": "manpages-es", "en": "manpages"}
DEBREF_FR = "/usr/share/debian-reference/debian-reference.fr.txt.gz"
FAQ_FR = "/usr/share/doc/debian/FAQ/debian-faq.fr.txt.gz"

# Unambiguous function words (a word listed for one language is not a common
# word of the other three); used only to drop text whose label would be wrong
# (untranslated English paragraphs inside translated man pages).
STOPWORDS = {
    "fr": set("le les du et est une dans pour qui sont pas avec sur ce cette il elle au aux être "
              "ou où peut vous nous été à ces leur très fichier fichiers répertoire "
              "lorsque ainsi mais aussi chaque".split()),
    "de": set("der das und ist nicht mit den dem ein eine einen zu für von auf wird werden sich "
              "auch oder bei im kann wenn wie nach sind diese dieser datei verzeichnis".split()),
    "es": set("el los las y del una por para con lo al como su está pero puede más este esta "
              "cuando también sus archivo directorio ser sólo solo".split()),
    "en": set("the and is of to for that with this be by or can which file if from an are "
              "when not will it its directory".split()),
}
WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def ensure_packages():
    missing = []
    for p in PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if "install ok installed" not in r.stdout:
            missing.append(p)
    if missing:
        if os.geteuid() != 0:
            sys.exit("missing Debian packages (run as root or install them): " + " ".join(missing))
        log("apt-get install", *missing)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq"] + missing, check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def package_version(p):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", p], capture_output=True, text=True)
    return r.stdout.strip()


def man_files(package):
    r = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True)
    out = []
    for f in r.stdout.split("\n"):
        if "/man/" in f and re.search(r"/man\d[^/]*/[^/]+\.gz$", f) and os.path.isfile(f) \
                and not os.path.islink(f):
            out.append(f)
    return sorted(out)


def render_man(path):
    """groff -k (preconv) -t (tbl) -mandoc, very long lines (one paragraph per
    line), no hyphenation, plain text without overstriking."""
    with gzip.open(path, "rb") as fh:
        src = fh.read()
    if src.lstrip().startswith(b".so ") or len(src) < 100:
        return None
    r = subprocess.run(["groff", "-k", "-t", "-mandoc", "-Tutf8", "-rLL=8000n", "-rHY=0",
                        "-P-cbou"], input=src, capture_output=True,
                       env=dict(os.environ, LC_ALL="C.UTF-8"))
    return r.stdout.decode("utf-8", "replace")


OPTION_TAG = re.compile(r"^-\S*(?:,\s+-\S*)*\s{2,}")


def man_lines(text):
    """Prose lines of a rendered man page: no header/footer, no headings, no
    table rows; an option tag glued to its description is removed."""
    lines = text.split("\n")
    nonempty = [i for i, l in enumerate(lines) if l.strip()]
    if len(nonempty) < 3:
        return []
    keep = set(nonempty[1:-1])  # drop the header and footer lines
    out = []
    for i, l in enumerate(lines):
        if i not in keep:
            continue
        s = l.strip()
        if re.search(r"\S\s{6,}\S", s):  # table rows, aligned columns
            s = OPTION_TAG.sub("", s)
            if re.search(r"\S\s{6,}\S", s):
                continue
        s = OPTION_TAG.sub("", s)
        s = " ".join(s.split())
        if s:
            out.append(s)
    return out


def text_paragraphs(path):
    """Paragraphs of a plain-text document (blank-line separated, wrapped)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        raw = fh.read()
    paras = []
    for block in re.split(r"\n\s*\n", raw):
        ls = [l.strip() for l in block.split("\n") if l.strip()]
        if not ls:
            continue
        s = " ".join(ls)
        s = re.sub(r"^[*•-]\s+", "", s)
        s = " ".join(s.split())
        paras.append(s)
    return paras


def words(s):
    return WORD_RE.findall(s.lower())


def stop_counts(s):
    ws = words(s)
    return {lang: sum(1 for w in ws if w in sw) for lang, sw in STOPWORDS.items()}, ws


def alpha_ratio(s):
    nonspace = [c for c in s if not c.isspace()]
    if not nonspace:
        return 0.0
    return sum(1 for c in nonspace if c.isalpha()) / len(nonspace)


def is_prose(s, lang, min_words):
    """At least min_words words, mostly letters, and not more function words
    of another language than of its own."""
    if alpha_ratio(s) < 0.7:
        return False
    counts, ws = stop_counts(s)
    if len(ws) < min_words:
        return False
    other = max(v for k, v in counts.items() if k != lang)
    return counts[lang] >= other


def is_clean_sentence(s, lang):
    """Stricter, for labelled sentences: 5-40 words, 25-250 characters, its
    own language's function words present and strictly more frequent."""
    if not (25 <= len(s) <= 250) or alpha_ratio(s) < 0.75:
        return False
    counts, ws = stop_counts(s)
    if not (5 <= len(ws) <= 40):
        return False
    other = max(v for k, v in counts.items() if k != lang)
    return counts[lang] >= 1 and counts[lang] > other


SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[^\s.!?,;:)])")


def h(s):
    return int(hashlib.md5(s.encode("utf-8")).hexdigest(), 16)


def page_id(path):
    b = os.path.basename(path)
    return b[:-3] if b.endswith(".gz") else b


def lm_split(doc):
    return "test" if h("lm:" + doc) % 20 == 0 else "train"  # 5 % of documents held out


def langid_split(page):
    r = h("langid:" + page) % 10
    return "test" if r == 0 else "val" if r == 1 else "train"


def main():
    work = sys.argv[1] if len(sys.argv) > 1 else "build/models-train"
    outdir = os.path.join(work, "corpus")
    os.makedirs(outdir, exist_ok=True)
    ensure_packages()

    stats = {"packages": {p: package_version(p) for p in PACKAGES}, "man_pages": {},
             "render": "zcat PAGE | groff -k -t -mandoc -Tutf8 -rLL=8000n -rHY=0 -P-cbou"}
    fr_lm = []        # (doc, text)
    sentences = {}    # lang -> list of (page, sentence)
    for lang, pkg in MAN_PACKAGES.items():
        files = man_files(pkg)
        n_rendered = 0
        sentences[lang] = []
        for k, f in enumerate(files):
            text = render_man(f)
            if text is None:
                continue
            n_rendered += 1
            page = page_id(f)
            for line in man_lines(text):
                if lang == "fr" and is_prose(line, "fr", 3):
                    fr_lm.append(("man:" + page, line))
                for sent in SENT_SPLIT.split(line):
                    sent = sent.strip()
                    if is_clean_sentence(sent, lang):
                        sentences[lang].append((page, sent))
            if k % 200 == 0:
                log(f"{lang}: {k}/{len(files)} pages")
        stats["man_pages"][pkg] = {"files": len(files), "rendered": n_rendered}

    # French documentation: debian-reference-fr and debian-faq-fr; a "document"
    # is a block of 50 consecutive paragraphs (for the held-out split).
    for name, path in (("debian-reference-fr", DEBREF_FR), ("debian-faq-fr", FAQ_FR)):
        paras = text_paragraphs(path)
        n = 0
        for i, p in enumerate(paras):
            if is_prose(p, "fr", 3):
                fr_lm.append((f"{name}:{i // 50}", p))
                n += 1
        stats[name] = {"paragraphs": len(paras), "kept": n}

    # French LM corpus: exact duplicates removed (first occurrence kept).
    seen = set()
    n_train = n_test = 0
    bytes_train = 0
    with open(os.path.join(outdir, "fr_lm.jsonl"), "w", encoding="utf-8") as out:
        for doc, text in fr_lm:
            if text in seen:
                continue
            seen.add(text)
            split = lm_split(doc)
            if split == "train":
                n_train += 1
                bytes_train += len(text.encode("utf-8")) + 1
            else:
                n_test += 1
            out.write(json.dumps({"doc": doc, "split": split, "text": text}, ensure_ascii=False) + "\n")
    stats["fr_lm"] = {"lines_train": n_train, "lines_test": n_test, "bytes_train": bytes_train}

    # Labelled sentences: duplicates removed within a language, and a sentence
    # found in two languages (untranslated text) is dropped everywhere.
    where = {}
    for lang, lst in sentences.items():
        for _, s in lst:
            where.setdefault(s, set()).add(lang)
    counts = {}
    with open(os.path.join(outdir, "langid.jsonl"), "w", encoding="utf-8") as out:
        for lang in ("fr", "de", "es", "en"):
            done = set()
            for page, s in sentences[lang]:
                if s in done or len(where[s]) > 1:
                    continue
                done.add(s)
                split = langid_split(page)
                counts.setdefault(split, {}).setdefault(lang, 0)
                counts[split][lang] += 1
                out.write(json.dumps({"doc": page, "lang": lang, "split": split, "text": s},
                                     ensure_ascii=False) + "\n")
    stats["langid_available"] = counts
    with open(os.path.join(outdir, "stats.json"), "w") as fh:
        json.dump(stats, fh, indent=2, ensure_ascii=False)
    log(json.dumps(stats, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
