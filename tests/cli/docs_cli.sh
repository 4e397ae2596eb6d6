#!/bin/bash
# `nnplug docs DIR`: the index links a page for every kind `nnplug plugins
# --json` lists; BatchNormalization's card, rendered by headless Chromium at a
# phone and a desktop width, gives real PNGs of that size, and its rendered
# DOM shows every parameter of the JSON with its type, default, nullability
# and range, plus the Inputs and Outputs sections; no page carries a script.
# Bad arguments exit 2 with one line naming the culprit. Needs NNP_BIN, a
# Python (NNP_PYTHON, default /usr/bin/python3) and Chromium (NNP_CHROMIUM,
# default chromium): without Chromium the test fails.
set -u
BIN=${NNP_BIN:?NNP_BIN must name the nnplug binary}
PY=${NNP_PYTHON:-/usr/bin/python3}
CHROMIUM=${NNP_CHROMIUM:-chromium}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnp_docs_cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failed=0
fail() { echo "docs_cli: FAIL: $*" >&2; failed=1; }

if ! command -v "$CHROMIUM" >/dev/null 2>&1; then
    echo "docs_cli: FAIL: '$CHROMIUM' not found; install the chromium package" \
         "(bash tools/install-deps.sh) or set NNP_CHROMIUM" >&2
    exit 1
fi

"$BIN" plugins --json >"$WORK/schema.json" || { fail "nnplug plugins --json failed"; exit 1; }
site=$WORK/new/site   # two levels that do not exist yet
"$BIN" docs "$site" 2>"$WORK/err" || { fail "nnplug docs failed: $(cat "$WORK/err")"; exit 1; }
# A second run replaces the files in place.
"$BIN" docs "$site" 2>"$WORK/err" || fail "nnplug docs into an existing site failed"

# The index and the site as a whole.
"$PY" - "$WORK/schema.json" "$site" <<'PYEOF' || fail "index or site check"
import json, os, sys
from html.parser import HTMLParser
kinds = json.load(open(sys.argv[1]))
site = sys.argv[2]

class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.tags = set(), set()
        self.viewport = self.style = False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "a" and "href" in a:
            self.hrefs.add(a["href"])
        if tag == "meta" and a.get("name") == "viewport":
            self.viewport = "width=device-width" in a.get("content", "")
        if tag == "link" and a.get("rel") == "stylesheet" and a.get("href") == "style.css":
            self.style = True

bad = []
files = sorted(os.listdir(site))
want = sorted(["index.html", "style.css"] + [k["name"] + ".html" for k in kinds])
if files != want:
    bad.append("files %s, expected %s" % (files, want))
idx = Links()
idx.feed(open(os.path.join(site, "index.html"), encoding="utf-8").read())
for k in kinds:
    if k["name"] + ".html" not in idx.hrefs:
        bad.append("index.html does not link %s.html" % k["name"])
for f in files:
    if not f.endswith(".html"):
        continue
    text = open(os.path.join(site, f), encoding="utf-8").read()
    p = Links()
    p.feed(text)
    if "script" in p.tags or "javascript:" in text.lower():
        bad.append("%s: has a script" % f)
    if not (p.viewport and p.style):
        bad.append("%s: no viewport meta or no style.css link" % f)
if len(kinds) < 2:
    bad.append("only %d kinds in plugins --json" % len(kinds))
for b in bad:
    print("docs_cli:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PYEOF

# BatchNormalization's card in headless Chromium: screenshots at a phone and
# a desktop width, and the DOM it rendered.
chrome() {
    timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update \
        --disable-sync --hide-scrollbars --user-data-dir="$(mktemp -d "$WORK/chrome.XXXXXX")" \
        "$@" "file://$site/BatchNormalization.html" 2>>"$WORK/chrome.log"
}
for size in 390x844 1280x900; do
    chrome --screenshot="$WORK/bn_$size.png" --window-size="${size/x/,}" >/dev/null ||
        fail "chromium screenshot at $size failed: $(tail -3 "$WORK/chrome.log")"
done
chrome --window-size=390,844 --dump-dom >"$WORK/bn_dom.html" ||
    fail "chromium --dump-dom failed: $(tail -3 "$WORK/chrome.log")"

"$PY" - "$WORK" <<'PYEOF' || fail "screenshots"
import struct, sys, zlib
bad = []
for w, h in [(390, 844), (1280, 900)]:
    path = "%s/bn_%dx%d.png" % (sys.argv[1], w, h)
    try:
        data = open(path, "rb").read()
    except OSError as e:
        bad.append("%s: %s" % (path, e))
        continue
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        bad.append("%s: not a PNG" % path)
        continue
    size = struct.unpack(">II", data[16:24])
    if size != (w, h):
        bad.append("%s: %dx%d, expected %dx%d" % (path, size[0], size[1], w, h))
    # Something was drawn: the image data holds many distinct byte values.
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    if len(set(zlib.decompress(idat))) < 32:
        bad.append("%s: looks blank" % path)
for b in bad:
    print("docs_cli:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PYEOF

"$PY" - "$WORK/schema.json" "$WORK/bn_dom.html" <<'PYEOF' || fail "BatchNormalization card"
import json, sys
from html.parser import HTMLParser
kind = next(k for k in json.load(open(sys.argv[1])) if k["name"] == "BatchNormalization")

def readable(v):
    """A JSON value as the card shows it: {"class_name": "Ones", ...} is Ones."""
    if isinstance(v, dict) and isinstance(v.get("class_name"), str):
        cfg = v.get("config") or {}
        args = ", ".join("%s=%s" % (k, readable(x)) for k, x in cfg.items())
        return v["class_name"] + ("(%s)" % args if cfg else "")
    if isinstance(v, dict):
        return "{%s}" % ", ".join("%s: %s" % (k, readable(x)) for k, x in v.items())
    if isinstance(v, list):
        return "[%s]" % ", ".join(readable(x) for x in v)
    if isinstance(v, str):
        return '"%s"' % v
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)

def num(x):
    return "%d" % x if float(x).is_integer() else repr(x)

def allowed(p):
    lo, hi = p.get("min"), p.get("max")
    if lo is not None and hi is not None:
        return "%s%s, %s%s" % ("([" [not p["min_exclusive"]], num(lo), num(hi),
                               ")]" [not p["max_exclusive"]])
    if lo is not None:
        return (">" if p["min_exclusive"] else "\u2265") + " " + num(lo)
    if hi is not None:
        return ("<" if p["max_exclusive"] else "\u2264") + " " + num(hi)
    if p.get("choices"):
        return "".join(p["choices"])
    return "\u2014"

class Card(HTMLParser):
    """Collects, per parameter row, the text of each cell and its parts."""
    def __init__(self):
        super().__init__()
        self.stack, self.rows, self.row, self.h2, self.ports = [], {}, None, [], set()
        self.text = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "").split()
        self.stack.append((tag, cls))
        if tag == "tr" and "data-param" in a:
            self.row = self.rows.setdefault(a["data-param"], {})
        if tag == "tr" and "data-port" in a:
            self.ports.add(a["data-port"])
    def handle_endtag(self, tag):
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break
        if tag == "tr":
            self.row = None
    def handle_data(self, data):
        self.text.append(data)
        tags = [t for t, _ in self.stack]
        classes = [c for _, cl in self.stack for c in cl]
        if tags and tags[-1] == "h2":
            self.h2.append(data.strip())
        if self.row is None:
            return
        for key in ("ty", "null", "default", "allowed", "doc"):
            if key in classes:
                self.row[key] = self.row.get(key, "") + data
        if tags[-1] == "code" and "name" in classes and "doc" not in classes:
            self.row["name"] = self.row.get("name", "") + data

card = Card()
card.feed(open(sys.argv[2], encoding="utf-8").read())
text = " ".join(" ".join(card.text).split())
bad = []
# the card's parameters: Keras keys taken only at their default are named
# under the table instead
params = [p for p in kind["params"] if not p.get("only_default")]
if len(params) != 14:
    bad.append("plugins --json lists %d BatchNormalization card parameters, expected 14"
               % len(params))
for p in kind["params"]:
    if p.get("only_default") and p["name"] not in text:
        bad.append("the card does not name the Keras key %s" % p["name"])
if sorted(card.rows) != sorted(p["name"] for p in params):
    bad.append("card parameters %s, JSON %s" % (sorted(card.rows), [p["name"] for p in params]))
for p in params:
    row = card.rows.get(p["name"], {})
    got = {k: row.get(k, "").strip() for k in ("name", "ty", "default", "allowed", "doc")}
    want = {"name": p["name"], "ty": p["type"], "default": readable(p["default"]),
            "allowed": allowed(p), "doc": p["doc"]}
    for k in want:
        if got[k] != want[k]:
            bad.append("%s: %s shows %r, expected %r" % (p["name"], k, got[k], want[k]))
    if ("null" in row) != p["nullable"]:
        bad.append("%s: nullable badge %s, JSON nullable %s" % (p["name"], "null" in row,
                                                              p["nullable"]))
for h in ("Inputs", "Outputs"):
    if h not in card.h2:
        bad.append("no %s section (h2s: %s)" % (h, card.h2))
for port in ("input", "output", "layer"):
    if port not in card.ports:
        bad.append("no %s row (rows: %s)" % (port, sorted(card.ports)))
onnx = kind["onnx"]
for s in [kind["doc"], onnx["op_type"], "opsets %d to %d" % (onnx["opset_min"], onnx["opset_max"]),
          kind["plugin"], "TimeDistributed", "Bidirectional"]:
    if s not in text:
        bad.append("card does not show %r" % s)
for b in bad:
    print("docs_cli:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PYEOF

# No temporary files are left behind.
ls "$site" | grep -q '\.tmp' && fail "temporary files left in $site: $(ls "$site")"

out=$("$BIN" docs --help) || fail "docs --help failed"
grep -q "^usage: nnplug docs DIR" <<<"$out" || fail "docs --help: no usage line: $out"

# bad arguments: exit 2, one stderr line holding WORD
expect() {
    local word=$1 rc
    shift
    "$BIN" docs "$@" >"$WORK/out" 2>"$WORK/err"
    rc=$?
    [ "$rc" = 2 ] || fail "docs $*: exit $rc, expected 2"
    [ "$(wc -l <"$WORK/err")" = 1 ] || fail "docs $*: expected one line on stderr: $(cat "$WORK/err")"
    grep -qF -- "$word" "$WORK/err" || fail "docs $*: stderr does not name '$word': $(cat "$WORK/err")"
}
expect "DIR"
expect "/dev/null/x" /dev/null/x
expect "$WORK/schema.json" "$WORK/schema.json"
expect "'--bogus'" --bogus "$WORK/x"
expect "'$WORK/y'" "$WORK/x" "$WORK/y"
[ -e "$WORK/x" ] && fail "a refused docs run created $WORK/x"
[ $failed = 0 ] && echo "docs_cli: passed"
exit $failed
