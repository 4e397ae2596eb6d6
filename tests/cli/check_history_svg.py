"""Checks DIR/history.svg written by `nnplug train --out-dir DIR` against the
run's own records: DIR/loss_history.npy and the per-epoch lines nnplug
printed on stderr (ERR). Usage: check_history_svg.py DIR ERR SERIES, SERIES
the comma-separated series the run has. Environment: CONSTANT=1 when every
epoch's loss is the same; NONFINITE=NAME for a series that is NaN in every
epoch (no points, one mark per epoch). Exits 1 with FAIL lines on a mismatch.
"""
import math
import os
import re
import sys
import xml.etree.ElementTree as ET

import numpy as np

NS = "{http://www.w3.org/2000/svg}"
GENERIC_FONTS = {"serif", "sans-serif", "monospace", "system-ui", "cursive", "fantasy"}
PANEL_OF = {"loss": "loss", "val_loss": "loss", "accuracy": "accuracy",
            "val_accuracy": "accuracy"}
# decimals cmd_train prints each value with (progress.c)
PRINTED_DECIMALS = {"loss": 6, "val_loss": 6, "accuracy": 4, "val_accuracy": 4}

out, err_path, want = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
name = os.path.basename(out)
nonfinite = os.environ.get("NONFINITE", "")
bad = []


def fail(msg):
    bad.append(msg)


def stderr_history(path):
    """Per-series values from the 'Epoch i/N loss L [accuracy A] ...' lines."""
    hist = {}
    for line in open(path):
        if not line.startswith("Epoch "):
            continue
        for key, val in re.findall(r"\b(loss|accuracy|val_loss|val_accuracy) (\S+)", line):
            hist.setdefault(key, []).append(float(val))
    return hist


def points(poly):
    pts = poly.get("points", "").split()
    return [tuple(float(c) for c in p.split(",")) for p in pts]


def numbers(s):
    return [float(v) for v in re.findall(r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?", s)]


def check_document(root):
    """Well-formed standalone SVG; every coordinate finite, inside the viewBox."""
    if root.tag != NS + "svg":
        fail("root element is %s, not svg" % root.tag)
        return None
    try:
        w, h = float(root.get("width")), float(root.get("height"))
        vb = [float(v) for v in root.get("viewBox").split()]
    except (TypeError, ValueError):
        fail("svg needs numeric width, height and viewBox")
        return None
    if vb != [0, 0, w, h]:
        fail("viewBox %s does not match %sx%s" % (vb, w, h))
    for el in root.iter():
        for attr, val in el.attrib.items():
            if re.search(r"nan|inf", val, re.I):
                fail("%s %s=%r holds a non-number" % (el.tag, attr, val))
            if attr == "font-family" and val.strip().lower() not in GENERIC_FONTS:
                fail("font-family %r is not a generic family" % val)
        tag = el.tag[len(NS):] if el.tag.startswith(NS) else el.tag
        xs, ys = [], []
        if tag == "polyline":
            for x, y in points(el):
                xs.append(x)
                ys.append(y)
        elif tag in ("line",):
            xs += [float(el.get("x1")), float(el.get("x2"))]
            ys += [float(el.get("y1")), float(el.get("y2"))]
        elif tag in ("circle",):
            xs.append(float(el.get("cx")))
            ys.append(float(el.get("cy")))
        elif tag in ("rect", "text") and el.get("x") is not None:
            xs.append(float(el.get("x")))
            ys.append(float(el.get("y")))
            if tag == "rect":
                xs.append(xs[-1] + float(el.get("width")))
                ys.append(ys[-1] + float(el.get("height")))
        elif tag == "path":
            d = numbers(el.get("d", ""))
            xs += d[0::2]
            ys += d[1::2]
        for x, y in zip(xs, ys):
            if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= w and 0 <= y <= h):
                fail("%s point (%s, %s) outside the viewBox 0 0 %s %s" % (tag, x, y, w, h))
    return w, h


def axis_ticks(axis):
    """[(value, screen coordinate)] from a data-axis group: line, line, text."""
    kids = list(axis)
    ticks = []
    for i, el in enumerate(kids):
        if el.tag == NS + "text":
            grid = kids[i - 2]
            coord = float(grid.get("y1")) if axis.get("data-axis") == "y" else float(grid.get("x1"))
            ticks.append((float(el.text), coord))
    return ticks


def check_y_ticks(panel, ticks):
    if len(ticks) < 2:
        fail("%s panel: %d y ticks" % (panel, len(ticks)))
        return False
    vals = [v for v, _ in ticks]
    step = vals[1] - vals[0]
    mant = step / 10 ** math.floor(math.log10(step)) if step > 0 else 0
    if not any(abs(mant - m) < 1e-6 for m in (1, 2, 2.5, 5)):
        fail("%s panel: tick step %r is not 1, 2, 2.5 or 5 times a power of ten" % (panel, step))
    for a, b in zip(vals, vals[1:]):
        if abs((b - a) - step) > 1e-9 * max(abs(a), abs(b), step):
            fail("%s panel: ticks %s unevenly spaced" % (panel, vals))
            break
    for v in vals:
        if abs(v / step - round(v / step)) > 1e-6:
            fail("%s panel: tick %r is not a multiple of the step %r" % (panel, v, step))
    ys = [y for _, y in ticks]
    if any(b >= a for a, b in zip(ys, ys[1:])):
        fail("%s panel: larger tick values are not higher up: %s" % (panel, ticks))
        return False
    return True


def to_screen(ticks, v):
    (v0, y0), (v1, y1) = ticks[0], ticks[-1]
    return y0 + (v - v0) * (y1 - y0) / (v1 - v0)


def check_order(poly_pts, loss):
    """Higher loss in loss_history.npy -> higher on screen (smaller y)."""
    span = float(np.max(loss) - np.min(loss))
    ys = [y for _, y in poly_pts]
    for i in range(len(loss)):
        for j in range(len(loss)):
            if loss[i] > loss[j] + 1e-4 * span and not ys[i] < ys[j]:
                fail("loss epoch %d (%r) > epoch %d (%r) but y %r is not above %r"
                     % (i + 1, loss[i], j + 1, loss[j], ys[i], ys[j]))
                return
            if loss[i] == loss[j] and ys[i] != ys[j]:
                fail("equal losses at epochs %d and %d drawn at y %r and %r"
                     % (i + 1, j + 1, ys[i], ys[j]))
                return


def check_x(panel, poly_pts, xticks, epochs):
    xs = [x for x, _ in poly_pts]
    if any(b <= a for a, b in zip(xs, xs[1:])):
        fail("%s panel: x not increasing with the epoch: %s" % (panel, xs))
    if len(xs) >= 3 and max(abs((b - a) - (xs[1] - xs[0])) for a, b in zip(xs, xs[1:])) > 0.02:
        fail("%s panel: epochs unevenly spaced: %s" % (panel, xs))
    labels = [int(v) for v, _ in xticks]
    if not labels or labels != sorted(labels) or labels[0] < 1 or labels[-1] > epochs:
        fail("%s panel: epoch ticks %s for %d epochs" % (panel, labels, epochs))
    for v, x in xticks:
        if abs(xs[int(v) - 1] - x) > 0.02:
            fail("%s panel: epoch %d drawn at x %r, its tick at %r" % (panel, v, xs[int(v) - 1], x))


def check_series(root, series, values, epochs, panels):
    polys = [p for p in root.iter(NS + "polyline") if p.get("data-series") == series]
    if len(polys) != 1:
        fail("%d polylines for %s" % (len(polys), series))
        return None
    pts = points(polys[0])
    if series == nonfinite:
        marks = [m for m in root.iter() if m.get("data-nonfinite") == series]
        if pts or len(marks) != epochs:
            fail("%s is NaN: %d points and %d marks for %d epochs" % (series, len(pts),
                 len(marks), epochs))
        return None
    if len(pts) != epochs:
        fail("%s: %d points for %d epochs" % (series, len(pts), epochs))
        return None
    panel, ticks, xticks, frame = panels[PANEL_OF[series]]
    if polys[0] not in list(panel.iter(NS + "polyline")):
        fail("%s is not on the %s panel" % (series, PANEL_OF[series]))
    fx, fy, fw, fh = (float(frame.get(a)) for a in ("x", "y", "width", "height"))
    for x, y in pts:
        if not (fx <= x <= fx + fw and fy <= y <= fy + fh):
            fail("%s: point (%s, %s) outside its plot" % (series, x, y))
    if values is None or len(values) != epochs:
        fail("%s: %s values on record for %d epochs" % (series, values, epochs))
        return pts
    per_unit = abs(to_screen(ticks, 1) - to_screen(ticks, 0))
    tol = 0.02 + per_unit * 0.5 * 10 ** -PRINTED_DECIMALS[series]
    for e, ((_, y), v) in enumerate(zip(pts, values)):
        if abs(y - to_screen(ticks, v)) > tol:
            fail("%s epoch %d: %r drawn at y %r, the axis puts it at %r"
                 % (series, e + 1, v, y, to_screen(ticks, v)))
    check_x(PANEL_OF[series], pts, xticks, epochs)
    return pts


def panels_of(root):
    panels = {}
    for g in root.iter(NS + "g"):
        p = g.get("data-panel")
        if not p:
            continue
        axes = {a.get("data-axis"): a for a in g.iter(NS + "g") if a.get("data-axis")}
        texts = [t.text for t in g.iter(NS + "text")]
        for label in ("epoch", p):
            if label not in texts:
                fail("%s panel: no %r axis label" % (p, label))
        legend = sorted(l.get("data-legend") for l in g.iter(NS + "g") if l.get("data-legend"))
        if legend != sorted(s for s in want if PANEL_OF[s] == p):
            fail("%s panel: legend %s for series %s" % (p, legend, want))
        ticks = axis_ticks(axes["y"]) if "y" in axes else []
        if check_y_ticks(p, ticks):
            panels[p] = (g, ticks, axis_ticks(axes["x"]) if "x" in axes else [],
                         g.find(NS + "rect"))
    want_panels = sorted({PANEL_OF[s] for s in want})
    if sorted(panels) != want_panels:
        fail("panels %s, expected %s" % (sorted(panels), want_panels))
    return panels


def main():
    loss = np.load(os.path.join(out, "loss_history.npy"))
    epochs = len(loss)
    try:
        root = ET.parse(os.path.join(out, "history.svg")).getroot()
    except (OSError, ET.ParseError) as e:
        fail("history.svg: %s" % e)
        return
    if check_document(root) is None:
        return
    drawn = sorted(p.get("data-series") for p in root.iter(NS + "polyline"))
    if drawn != sorted(want):
        fail("series drawn %s, expected %s" % (drawn, sorted(want)))
    panels = panels_of(root)
    if sorted(panels) != sorted({PANEL_OF[s] for s in want}):
        return
    printed = stderr_history(err_path)
    for s in want:
        pts = check_series(root, s, list(loss) if s == "loss" else printed.get(s), epochs, panels)
        if s == "loss" and pts:
            check_order(pts, loss)
            if os.environ.get("CONSTANT"):
                frame = panels["loss"][3]
                top = float(frame.get("y"))
                bottom = top + float(frame.get("height"))
                if len(set(loss.tolist())) != 1:
                    fail("expected the same loss every epoch, got %s" % loss)
                elif len({y for _, y in pts}) != 1 or not top < pts[0][1] < bottom:
                    fail("a constant loss drawn at y %s (plot %s..%s)" % (pts, top, bottom))


main()
for b in bad:
    print("FAIL: %s: history.svg: %s" % (name, b))
print("%s: history.svg %s" % (name, "failed" if bad else "passed"))
sys.exit(1 if bad else 0)
