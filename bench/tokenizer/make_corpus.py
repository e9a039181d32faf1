#!/usr/bin/python3
"""make_corpus.py OUT [TARGET_MB] — a French text corpus from Debian packages.

Renders every French man page (manpages-fr, /usr/share/man/fr) with groff
-Tutf8, adds the French Debian FAQ (debian-faq-fr, text), the sources of the
developers' reference (developers-reference-fr) and the text of maint-guide-fr
(HTML, tags stripped); keeps non-empty
lines, and stops at TARGET_MB megabytes (default 10), cycling through the
material again if it is shorter.  Deterministic (sorted file order).
"""
import glob
import gzip
import html.parser
import os
import subprocess
import sys


def man_pages():
    for path in sorted(glob.glob("/usr/share/man/fr/man*/*")):
        try:
            raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
        except OSError:
            continue
        if raw.startswith(b".so "):
            continue  # an alias of another page
        try:
            pre = subprocess.run(["preconv", "-e", "UTF-8"], input=raw, capture_output=True, timeout=60).stdout
            out = subprocess.run(["groff", "-man", "-Tutf8", "-P-cbou"], input=pre,
                                 capture_output=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        yield out.decode("utf-8", "replace")


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        if tag in ("p", "br", "div", "li", "h1", "h2", "h3", "h4", "pre", "tr", "dt", "dd"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def _read(path):
    return gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()


def text_docs():
    """Plain-text French documentation: the Debian FAQ, the developers' reference sources."""
    paths = sorted(glob.glob("/usr/share/doc/debian/FAQ/debian-faq.fr.txt*")) + \
        sorted(glob.glob("/usr/share/developers-reference/fr/_sources/*.txt"))
    for path in paths:
        try:
            yield _read(path).decode("utf-8", "replace")
        except OSError:
            continue


def html_docs():
    """French HTML documentation (maint-guide-fr), tags stripped."""
    for path in sorted(glob.glob("/usr/share/doc/maint-guide-fr/html/*.fr.html*")):
        try:
            raw = _read(path)
        except OSError:
            continue
        p = _Text()
        p.feed(raw.decode("utf-8", "replace"))
        yield "".join(p.parts)


def main():
    out_path = sys.argv[1]
    target = int(float(sys.argv[2] if len(sys.argv) > 2 else 10) * 1e6)
    lines = []
    for doc in list(man_pages()) + list(text_docs()) + list(html_docs()):
        for line in doc.splitlines():
            line = line.rstrip()
            if line.strip():
                lines.append(line)
    if not lines:
        sys.exit("no French text found (are manpages-fr and the -fr docs installed?)")
    size = 0
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        i = 0
        while size < target:
            line = lines[i % len(lines)] + "\n"
            f.write(line)
            size += len(line.encode("utf-8"))
            i += 1
    os.replace(tmp, out_path)
    print(f"corpus: {out_path}: {size} bytes, {i} lines ({len(lines)} distinct source lines)")


if __name__ == "__main__":
    main()
