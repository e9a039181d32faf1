#!/usr/bin/python3
"""Build the training corpora of the bundled models from Debian packages.

    /usr/bin/python3 models/train/build_corpus.py [WORK_DIR]   (default build/models-train)

Installs (apt-get, as root, only what is missing) the packages below, renders
every man page they ship with groff to plain UTF-8 text, downloads (apt-get
download) and unpacks into WORK_DIR/game/ the Battle for Wesnoth packages
(their message catalogs only; the game is not installed), and writes into
WORK_DIR/corpus/:

  fr_lm.jsonl       French prose lines for the tokenizer, the masked LM and the
                    causal LM: manpages-fr, debian-reference-fr, debian-faq-fr,
                    the programs' message catalogs, the Debian Administrator's
                    Handbook, the game's dialogue and stories.
                    {"doc", "source", "split": "train"|"test", "text"}
  langid.jsonl      sentences labelled fr/de/es/en for the language classifier,
                    from the same kinds of text in the four languages.
                    {"doc", "lang", "source", "split": "train"|"val"|"test", "text"}
  stats.json        counts (pages, lines, bytes, sentences per split and language)

Everything is deterministic: files are processed in sorted order, splits are
decided by a hash of the document name (md5), never by a random generator.

Held-out documents: a man page is identified by its base name (e.g. "ls.1"),
the same in every language, so a page held out for testing is held out in all
four languages (no translation of a test page is seen in training).
"""
import concurrent.futures
import gettext
import gzip
import hashlib
import html.parser
import json
import os
import re
import subprocess
import sys

# Everyday language (issue 19): the gettext catalogs of these packages (the same
# UI message in English -- the msgid -- and in French, German and Spanish) and
# the Debian Administrator's Handbook in the four languages.
GETTEXT_PACKAGES = ["coreutils", "findutils", "grep", "sed", "tar", "diffutils", "bash", "apt",
                    "dpkg", "adduser", "man-db", "util-linux-locales", "libc-l10n", "gnupg-l10n",
                    "libglib2.0-data", "libgtk-3-common", "libgweather-4-common"]
# Conversation: the dialogue, stories and help of the game Battle for Wesnoth, in
# the same four languages (English msgid).  Its packages would pull in the whole
# game: they are downloaded (apt-get download) and unpacked into WORK, not installed.
GAME_PACKAGES = ["wesnoth-1.16-data"] + ["wesnoth-1.16-" + c for c in (
    "did", "dm", "dw", "ei", "httt", "l", "low", "nr", "sof", "sota", "sotbe", "thot", "trow",
    "tsg", "ttb", "utbs")]
HANDBOOK_PACKAGE = "debian-handbook"
HANDBOOK_DIRS = {"fr": "fr-FR", "de": "de-DE", "es": "es-ES", "en": "en-US"}
HANDBOOK_ROOT = "/usr/share/doc/debian-handbook/html"
PACKAGES = ["manpages-fr", "manpages-de", "manpages-es", "manpages",
            "debian-reference-fr", "debian-faq-fr", "groff-base",
            HANDBOOK_PACKAGE] + GETTEXT_PACKAGES
# Hand-written everyday sentences used only for evaluation: never trained on
# (the test set, and the development set that chooses the recipe).
EVERYDAY_TEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "everyday_test.tsv")
EVERYDAY_DEV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "everyday_dev.tsv")
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
LANGS_ORDER = ["fr", "de", "es", "en"]
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


# --------------------------------------------------------------------------
# everyday language: gettext catalogs and the Debian Administrator's Handbook

def package_files(package, pattern):
    r = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True)
    return sorted(f for f in r.stdout.split("\n") if re.search(pattern, f) and os.path.isfile(f)
                  and not os.path.islink(f))


FORMAT_SPEC = re.compile(r"%(?:\d+\$)?[-#0 +']*(?:\d+|\*)?(?:\.\d+)?(?:hh|h|ll|l|L|z|j|t|I64)?"
                         r"[diouxXeEfFgGaAcspn]|%[A-Za-z_]+%|\$\{?\w+\}?|\{[^{}]*\}|<[^<>]*>|\\\w")
# an option table's left column: "-a, --all   ..." (no nested repetition: linear time)
MO_OPTION = re.compile(r"^\s*-[\w\[\]=<>.,-]*(?:,? -[\w\[\]=<>.,-]*)*\s{2,}")


# typography that differs between the catalogs of one message and says nothing
# of its language: French no-break spaces before ?!:; (NFKC makes them spaces
# for the tokenizers anyway) and the typographic apostrophe of the English msgids
TYPOGRAPHY = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2019": "'"})


def message_lines(text):
    """Usable lines of one catalog message: no format directive, markup or
    option table; mnemonic underscores removed; whitespace and apostrophes
    normalised."""
    out = []
    for l in text.translate(TYPOGRAPHY).split("\n"):
        l = MO_OPTION.sub("", l)
        if FORMAT_SPEC.search(l) or re.search(r"\w_\w|__|http|[/\\|]", l):
            continue
        l = re.sub(r"(?<![\w_])_(?=\w)", "", l)  # GTK mnemonic: _Open
        l = " ".join(l.split())
        if l:
            out.append(l)
    return out


# a translated catalog, in a package's file list
MO_PATH = r"/locale/(fr|de|es)/LC_MESSAGES/[^/]+\.mo$"


def gettext_catalog(path):
    """msgid -> msgstr of a .mo file (context dropped, plural forms: the first)."""
    with open(path, "rb") as fh:
        cat = gettext.GNUTranslations(fh)._catalog
    out = {}
    for k in sorted(cat, key=lambda k: (k if isinstance(k, str) else k[0], 0 if isinstance(k, str) else k[1])):
        msgid = k if isinstance(k, str) else k[0]
        if not msgid or (not isinstance(k, str) and k[1] != 0):
            continue
        out.setdefault(msgid.split("\x04")[-1], cat[k])
    return out


def add_catalog(messages, pkg, path):
    """Add the translations of the .mo file PATH (.../locale/LANG/LC_MESSAGES/DOMAIN.mo)
    to messages {(pkg, domain, msgid): {lang: msgstr}}; returns how many."""
    lang = path.split("/locale/")[1].split("/")[0]
    dom = os.path.basename(path)[:-3]
    n = 0
    for msgid, msgstr in gettext_catalog(path).items():
        if msgstr and msgstr != msgid:
            messages.setdefault((pkg, dom, msgid), {})[lang] = msgstr
            n += 1
    return n


def game_catalogs(work):
    """The .mo paths of the game packages, downloaded and unpacked into
    WORK/game (once), sorted; and the packages' versions."""
    root = os.path.join(work, "game")
    debs = os.path.join(root, "debs")
    os.makedirs(debs, exist_ok=True)
    if not all(any(f.startswith(p + "_") for f in os.listdir(debs)) for p in GAME_PACKAGES):
        cmd = ["apt-get", "download", "-q"] + GAME_PACKAGES
        if subprocess.run(cmd, cwd=debs).returncode != 0:
            # package lists missing or stale (every other package already installed,
            # so ensure_packages() did not update them)
            if os.geteuid() != 0:
                sys.exit("apt-get download failed; run as root (apt-get update) or download: "
                         + " ".join(GAME_PACKAGES))
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(cmd, cwd=debs, check=True)
    tree = os.path.join(root, "tree")
    os.makedirs(tree, exist_ok=True)
    versions, out = {}, []
    for deb in sorted(os.listdir(debs)):
        pkg = deb.split("_")[0]
        if pkg not in GAME_PACKAGES:
            continue
        r = subprocess.run(["dpkg-deb", "-f", os.path.join(debs, deb), "Version"], capture_output=True,
                           text=True, check=True)
        versions[pkg] = r.stdout.strip()
        r = subprocess.run(["dpkg-deb", "-c", os.path.join(debs, deb)], capture_output=True, text=True,
                           check=True)
        mos = [l.split()[-1] for l in r.stdout.split("\n") if re.search(MO_PATH, l)]
        if not all(os.path.isfile(os.path.join(tree, m)) for m in mos):
            with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", os.path.join(debs, deb)],
                                  stdout=subprocess.PIPE) as tar_in:
                subprocess.run(["tar", "-x", "-C", tree] + mos, stdin=tar_in.stdout, check=True)
        out.extend(os.path.join(tree, m) for m in mos)
    return sorted(out), versions


class ParagraphParser(html.parser.HTMLParser):
    """Text of the paragraphs of an HTML page: <p> elements and Publican's
    <div class="para"> (program listings excluded)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paras = []
        self.cur = None
        self.depth = 0   # open elements of the paragraph's own tag inside it
        self.tag = None
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if self.cur is None and (tag == "p" or (tag == "div" and ("class", "para") in attrs)):
            self.cur, self.tag, self.depth = [], tag, 0
        elif self.cur is not None and tag == self.tag:
            self.depth += 1
        if tag in ("pre", "script", "style"):
            self.skip += 1

    def handle_endtag(self, tag):
        if self.cur is not None and tag == self.tag:
            if self.depth:
                self.depth -= 1
            else:
                t = " ".join("".join(self.cur).split())
                if t:
                    self.paras.append(t)
                self.cur = None
        if tag in ("pre", "script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if self.cur is not None and not self.skip:
            self.cur.append(data)


def handbook_paragraphs(lang):
    """(page, paragraph) of the handbook's HTML pages in one language."""
    d = os.path.join(HANDBOOK_ROOT, HANDBOOK_DIRS[lang])
    out = []
    for name in sorted(os.listdir(d)):
        if not name.endswith(".html"):
            continue
        p = ParagraphParser()
        with open(os.path.join(d, name), encoding="utf-8") as fh:
            p.feed(fh.read())
        out.extend((name, t) for t in p.paras)
    return out


def is_everyday_sentence(s, lang):
    """For catalog messages (short, labelled by their catalog): 3-40 words,
    8-250 characters, mostly letters, no other language's function words
    outnumbering its own."""
    if not (8 <= len(s) <= 250) or alpha_ratio(s) < 0.75:
        return False
    counts, ws = stop_counts(s)
    if not (3 <= len(ws) <= 40):
        return False
    other = max(v for k, v in counts.items() if k != lang)
    return counts[lang] >= other


def everyday_split(key):
    """10 % test, 10 % validation, 80 % train, by md5 of the English source
    (a held-out message is held out in all four languages)."""
    r = h("everyday:" + key) % 10
    return "test" if r == 0 else "val" if r == 1 else "train"


def norm(s):
    return " ".join(words(s))


def load_everyday_test():
    out = []
    for path in (EVERYDAY_TEST, EVERYDAY_DEV):
        with open(path, encoding="utf-8") as fh:
            for l in fh:
                if l.strip() and not l.startswith("#"):
                    lang, text = l.rstrip("\n").split("\t")
                    out.append((lang, text))
    return out


def main():
    work = sys.argv[1] if len(sys.argv) > 1 else "build/models-train"
    outdir = os.path.join(work, "corpus")
    os.makedirs(outdir, exist_ok=True)
    ensure_packages()

    stats = {"packages": {p: package_version(p) for p in PACKAGES}, "man_pages": {},
             "render": "zcat PAGE | groff -k -t -mandoc -Tutf8 -rLL=8000n -rHY=0 -P-cbou"}
    fr_lm = []        # (doc, text, source, split)
    sentences = {}    # lang -> list of (page, sentence)
    for lang, pkg in MAN_PACKAGES.items():
        files = man_files(pkg)
        n_rendered = 0
        sentences[lang] = []
        # two groff processes at a time; map() keeps the pages in order
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            rendered = list(pool.map(render_man, files))
        for k, (f, text) in enumerate(zip(files, rendered)):
            if text is None:
                continue
            n_rendered += 1
            page = page_id(f)
            for line in man_lines(text):
                if lang == "fr" and is_prose(line, "fr", 3):
                    fr_lm.append(("man:" + page, line, "man", lm_split("man:" + page)))
                for sent in SENT_SPLIT.split(line):
                    sent = sent.strip()
                    if is_clean_sentence(sent, lang):
                        sentences[lang].append((page, sent, "man", langid_split(page)))
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
                fr_lm.append((f"{name}:{i // 50}", p, "doc", lm_split(f"{name}:{i // 50}")))
                n += 1
        stats[name] = {"paragraphs": len(paras), "kept": n}

    # Gettext catalogs: English is the msgid, French/German/Spanish the msgstr
    # of the same message; one key per (package, domain, msgid).
    messages = {}
    stats["gettext"] = {}
    for pkg in GETTEXT_PACKAGES:
        n = 0
        for f in package_files(pkg, MO_PATH):
            n += add_catalog(messages, pkg, f)
        stats["gettext"][pkg] = {"version": package_version(pkg), "translations": n}
        log(f"gettext: {pkg} {n} translations")
    # The game's catalogs: a source of their own ("game"); a long message (a
    # story, a speech) gives one langid sentence per sentence.
    game_files, stats["game_packages"] = game_catalogs(work)
    game_messages = {}
    for f in game_files:
        add_catalog(game_messages, "wesnoth", f)
    log(f"game: {len(game_messages)} messages")
    for source, msgs in (("gettext", messages), ("game", game_messages)):
        n_lm = 0
        for (pkg, dom, msgid), tr in sorted(msgs.items()):
            key = f"{pkg}:{dom}:{msgid}"
            split = everyday_split(msgid)  # the same message in two catalogs: one split
            for lang, text in [("en", msgid)] + sorted(tr.items()):
                for line in message_lines(text):
                    parts = SENT_SPLIT.split(line) if source == "game" else [line]
                    for part in parts:
                        if is_everyday_sentence(part, lang):
                            sentences[lang].append((source + ":" + key, part, source, split))
                    if lang == "fr" and is_prose(line, "fr", 3):
                        fr_lm.append((source + ":" + key, line, source, "test" if split == "test" else "train"))
                        n_lm += 1
        stats[source + "_messages"] = {"messages": len(msgs), "fr_lm_lines": n_lm}

    # The Debian Administrator's Handbook: a page (same file name in every
    # language) is held out in all four languages.
    stats["handbook"] = {}
    for lang in LANGS_ORDER:
        paras = handbook_paragraphs(lang)
        n_lm = 0
        for page, para in paras:
            split = everyday_split("handbook:" + page)
            if lang == "fr" and is_prose(para, "fr", 3):
                fr_lm.append(("handbook:" + page, para, "handbook", "test" if split == "test" else "train"))
                n_lm += 1
            for sent in SENT_SPLIT.split(para):
                sent = sent.strip()
                if is_clean_sentence(sent, lang):
                    sentences[lang].append(("handbook:" + page, sent, "handbook", split))
        stats["handbook"][lang] = {"paragraphs": len(paras), "fr_lm_lines": n_lm}
        log(f"handbook: {lang} {len(paras)} paragraphs")

    # Nothing that contains one of the hand-written evaluation sentences (test and dev).
    test_norms = [norm(t) for _, t in load_everyday_test()]

    def in_test(text):
        n = norm(text)
        return any(t in n for t in test_norms)

    # French LM corpus: exact duplicates removed (first occurrence kept).
    seen = set()
    lm_counts = {}
    n_dropped = 0
    with open(os.path.join(outdir, "fr_lm.jsonl"), "w", encoding="utf-8") as out:
        for doc, text, source, split in fr_lm:
            if text in seen:
                continue
            seen.add(text)
            if in_test(text):
                n_dropped += 1
                continue
            c = lm_counts.setdefault(source, {"lines_train": 0, "lines_test": 0, "bytes_train": 0})
            c["lines_" + split] += 1
            if split == "train":
                c["bytes_train"] += len(text.encode("utf-8")) + 1
            out.write(json.dumps({"doc": doc, "source": source, "split": split, "text": text},
                                 ensure_ascii=False) + "\n")
    stats["fr_lm"] = lm_counts
    stats["fr_lm_dropped_as_in_everyday_test"] = n_dropped

    # Labelled sentences: duplicates removed within a language, and a sentence
    # found in two languages (untranslated text) is dropped everywhere.
    where = {}
    for lang, lst in sentences.items():
        for _, s, _, _ in lst:
            where.setdefault(s, set()).add(lang)
    counts = {}
    n_dropped = 0
    with open(os.path.join(outdir, "langid.jsonl"), "w", encoding="utf-8") as out:
        for lang in LANGS_ORDER:
            done = set()
            for page, s, source, split in sentences[lang]:
                if s in done or len(where[s]) > 1:
                    continue
                done.add(s)
                if in_test(s):
                    n_dropped += 1
                    continue
                c = counts.setdefault(source, {}).setdefault(split, {})
                c[lang] = c.get(lang, 0) + 1
                out.write(json.dumps({"doc": page, "lang": lang, "source": source, "split": split,
                                      "text": s}, ensure_ascii=False) + "\n")
    stats["langid_available"] = counts
    stats["langid_dropped_as_in_everyday_test"] = n_dropped
    with open(os.path.join(outdir, "stats.json"), "w") as fh:
        json.dump(stats, fh, indent=2, ensure_ascii=False)
    log(json.dumps(stats, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
