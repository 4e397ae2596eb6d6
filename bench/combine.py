#!/usr/bin/env python3
"""Merges the JSON lines of bn_compare (nnplug, oneDNN, STREAM triad) and
torch_bn.py (PyTorch) into one table. Standard library only.

    combine.py [--stat median|min] FILE.jsonl...

Rows are nnplug's shapes (the NHWC case is the same problem as the NCHW one
with axis -1; its peers are the same logical [N,C,H,W]). Peer columns are
ms per memory layout; ratios are peer ms / nnplug ms, so above 1 means
nnplug is faster: "best" against the peer's fastest layout, "same" against
the peer in a layout holding the same bytes as nnplug's buffer.

--stat min ranks by the fastest run instead of the median: on a shared
machine the minimum is the figure least moved by other people's load.

Files from several rounds (run.sh with ROUNDS > 1) are pooled: each
measurement's figure is the median of its rounds' medians.
"""
import argparse
import json
import statistics

NOISY = 1.5   # median / min above this marks a row measured under load


def fmt_ms(v):
    return "%9.4f" % v if v is not None else "%9s" % "-"


def fmt_ratio(v):
    return "%6.2f" % v if v is not None else "%6s" % "-"


def merge(records):
    """One record from several rounds of the same measurement: the median
    of the rounds' medians, the fastest of their minimums."""
    if len(records) == 1:
        return records[0]
    r = dict(records[0])
    r["median_ms"] = statistics.median(x["median_ms"] for x in records)
    r["min_ms"] = min(x["min_ms"] for x in records)
    if "gbps" in r:
        r["gbps"] = records[0]["gbps"] * records[0]["median_ms"] / r["median_ms"]
    r["rounds"] = len(records)
    return r


def load(paths):
    rows, env, checks = {}, [], []
    triad, dnnl, torch, floor = {}, {}, {}, {}
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                impl = r.get("impl")
                if impl == "env":
                    if r not in env:
                        env.append(r)
                elif impl == "check":
                    checks.append(r)
                elif impl == "stream_triad":
                    triad.setdefault(r["threads"], {}).setdefault(r["when"], []).append(r["gbps"])
                elif impl == "nnplug":
                    key = (tuple(r["shape"]), r["layout"], r["direction"], r["threads"])
                    rows.setdefault(key, []).append(r)  # dicts keep bn_compare's order
                elif impl == "onednn":
                    # keyed by the case it ran in (same process, same minutes)
                    key = (tuple(r["shape"]), r["direction"], r["threads"], r["layout"])
                    dnnl.setdefault(key, []).append(r)
                elif impl == "floor":
                    key = (tuple(r["shape"]), r["direction"], r["threads"])
                    floor.setdefault(key, []).append(r)
                elif impl == "torch":
                    key = (tuple(r["logical"]), r["direction"], r["threads"], r["layout"])
                    torch.setdefault(key, []).append(r)
    rounds = max((len(v) for v in rows.values()), default=0)
    triad = {t: {w: statistics.median(v) for w, v in ws.items()} for t, ws in triad.items()}
    return ([merge(v) for v in rows.values()], env, triad, checks,
            {k: merge(v) for k, v in dnnl.items()}, {k: merge(v) for k, v in torch.items()},
            {k: merge(v) for k, v in floor.items()}, rounds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stat", choices=("median", "min"), default="median")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    stat = args.stat + "_ms"
    rows, env, triad, checks, dnnl, torch, floor, rounds = load(args.files)

    for e in env:
        print("  ".join("%s=%s" % (k, v) for k, v in e.items() if k not in ("tool", "impl")))
    for t in sorted(triad):
        w = triad[t]
        print("STREAM triad, %d thread%s: %.2f GB/s at the start, %.2f GB/s at the end"
              % (t, "" if t == 1 else "s", w.get("start", float("nan")),
                 w.get("end", float("nan"))))
    if checks:
        worst = max(checks, key=lambda c: c["max_rel_diff"])
        print("results checked against oneDNN (y, dx, dgamma, dbeta) for %d shape/layout "
              "pairs: worst relative difference %.2g (%s %s)"
              % (len(checks), worst["max_rel_diff"], worst["case"], worst["layout"]))
    if rounds > 1:
        print("%d rounds: each figure is the median of the rounds' medians (min: the "
              "fastest run of all); STREAM figures are medians over the rounds" % rounds)
    print("times: %s of the runs; GB/s = compulsory traffic (2S, 3S, 5S) / time; %%triad "
          "against the start figure;\nratios = peer ms / nnplug ms (>1: nnplug faster); "
          "! = some median in the row is over %.1fx its minimum (foreign load);\n"
          "floor = the simplest streaming passes with the direction's compulsory traffic "
          "(bn_compare), ratio floor ms / nnplug ms\n"
          % (args.stat, NOISY))

    head = ("%-17s %-6s %-9s %3s %9s %7s %6s | %9s %9s %9s %6s %6s | %10s %9s %6s %6s"
            " | %9s %5s"
            % ("shape", "layout", "direction", "thr", "nnplug", "GB/s", "%triad",
               "dnnl nchw", "nhwc", "nChw16c", "best", "same",
               "torch nchw", "nhwc", "best", "same", "floor", "ratio"))
    print("%-17s %-6s %-9s %3s %9s %7s %6s | %-45s | %-36s | %-15s"
          % ("", "", "", "", "ms", "", "", "oneDNN ms, ratios (2-D: nc, [N,C,1,1] nhwc)",
             "PyTorch ms, ratios", "floor ms, ratio"))
    print(head)
    print("-" * len(head))
    for r in rows:   # bn_compare's order: shape, threads, direction
        shape = tuple(r["shape"])
        logical = tuple(r["logical"])
        key = (r["direction"], r["threads"])
        nnp = r[stat]
        gbps = r["gbps"] * r["median_ms"] / nnp
        t = triad.get(r["threads"], {}).get("start")
        pct = 100.0 * gbps / t if t else None
        flat = len(logical) == 2
        # peer layouts with the same bytes as nnplug's buffer: for 2-D,
        # oneDNN's "nhwc" is [N,C,1,1], byte for byte the nc buffer
        same = ("nc", "nhwc") if flat else (r["layout"],)
        spread = [r["median_ms"] / r["min_ms"]]

        def peer(table, shape_key, layouts):
            found = {l: table[(shape_key,) + key + (l,)] for l in layouts
                     if (shape_key,) + key + (l,) in table}
            spread.extend(p["median_ms"] / p["min_ms"] for p in found.values())
            ms = {l: p[stat] for l, p in found.items()}
            best = min(ms.values()) / nnp if ms else None
            s = [ms[l] for l in same if l in ms]
            return ms, best, (min(s) / nnp if s else None)

        dms, dbest, dsame = peer(dnnl, shape, ("nc", "nhwc") if flat
                                 else ("nchw", "nhwc", "nChw16c"))
        tms, tbest, tsame = peer(torch, logical, ("nc",) if flat else ("nchw", "nhwc"))
        fl = floor.get((shape,) + key)
        fms = fl[stat] if fl else None
        first = "nc" if flat else "nchw"
        label = "[" + ",".join(str(d) for d in shape) + "]"
        print("%-17s %-6s %-9s %3d %9.4f %7.2f %6s | %s %s %s %s %s | %s  %s %s %s | %s %s%s"
              % (label, r["layout"], r["direction"], r["threads"], nnp, gbps,
                 "%6.1f" % pct if pct is not None else "-",
                 fmt_ms(dms.get(first)), fmt_ms(dms.get("nhwc")), fmt_ms(dms.get("nChw16c")),
                 fmt_ratio(dbest), fmt_ratio(dsame),
                 fmt_ms(tms.get(first)), fmt_ms(tms.get("nhwc")), fmt_ratio(tbest),
                 fmt_ratio(tsame), fmt_ms(fms), fmt_ratio(fms / nnp if fms else None)[1:],
                 " !" if max(spread) > NOISY else ""))


if __name__ == "__main__":
    main()
