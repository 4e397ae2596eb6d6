#!/usr/bin/env python3
"""Merges the JSON lines of bn_compare (nnplug, oneDNN, STREAM triad) and
torch_bn.py (PyTorch) into one table. Standard library only.

    combine.py FILE.jsonl...

Rows are nnplug's shapes (the NHWC case is the same problem as the NCHW one
with axis -1; its peers are the same logical [N,C,H,W]). Peer columns are
median ms per memory layout; ratios are peer ms / nnplug ms, so above 1
means nnplug is faster: "best" against the peer's fastest layout, "same"
against the peer in nnplug's own memory layout.
"""
import json
import sys


NOISY = 1.5   # median / min above this marks a row measured under load


def fmt_ms(v):
    return "%9.4f" % v if v is not None else "%9s" % "-"


def fmt_ratio(v):
    return "%6.2f" % v if v is not None else "%6s" % "-"


def main(paths):
    rows, env, triad, checks = [], [], {}, []
    dnnl, torch = {}, {}
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                impl = r.get("impl")
                if impl == "env":
                    env.append(r)
                elif impl == "check":
                    checks.append(r)
                elif impl == "stream_triad":
                    triad.setdefault(r["threads"], {})[r["when"]] = r["gbps"]
                elif impl == "nnplug":
                    rows.append(r)
                elif impl == "onednn":
                    # keyed by the case it ran in (same process window)
                    dnnl[(tuple(r["shape"]), r["direction"], r["threads"], r["layout"])] = r
                elif impl == "torch":
                    torch[(tuple(r["logical"]), r["direction"], r["threads"], r["layout"])] = r

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
    print("(%%triad uses the start figure; peer ratios = peer ms / nnplug ms, "
          ">1: nnplug faster;\n ! after a row: some median there is over %.1fx its minimum, "
          "a sign of foreign load)\n" % NOISY)

    head = ("%-17s %-6s %-9s %3s %9s %7s %6s | %9s %9s %9s %6s %6s | %9s %9s %6s %6s"
            % ("shape", "layout", "direction", "thr", "nnplug", "GB/s", "%triad",
               "dnnl nchw", "nhwc", "nChw16c", "best", "same",
               "torch nchw", "nhwc", "best", "same"))
    print("%-17s %-6s %-9s %3s %9s %7s %6s | %-45s | %-35s"
          % ("", "", "", "", "ms", "", "", "oneDNN ms (ratio best, same layout)",
             "PyTorch ms (ratio best, same)"))
    print(head)
    print("-" * len(head))
    for r in rows:   # bn_compare's order: shape, threads, direction
        shape = tuple(r["shape"])
        logical = tuple(r["logical"])
        key = (r["direction"], r["threads"])
        nnp = r["median_ms"]
        t = triad.get(r["threads"], {}).get("start")
        pct = 100.0 * r["gbps"] / t if t else None
        same = "nc" if len(logical) == 2 else r["layout"]

        spread = [r["median_ms"] / r["min_ms"]]

        def peer(table, shape_key, layouts):
            found_rows = [table.get((shape_key,) + key + (l,)) for l in layouts]
            spread.extend(p["median_ms"] / p["min_ms"] for p in found_rows if p)
            ms = {l: table.get((shape_key,) + key + (l,), {}).get("median_ms")
                  for l in layouts}
            found = [v for v in ms.values() if v is not None]
            best = min(found) / nnp if found else None
            s = ms.get(same)
            return ms, best, (s / nnp if s is not None else None)

        d_layouts = ("nc",) if len(logical) == 2 else ("nchw", "nhwc", "nChw16c")
        t_layouts = ("nc",) if len(logical) == 2 else ("nchw", "nhwc")
        dms, dbest, dsame = peer(dnnl, shape, d_layouts)
        tms, tbest, tsame = peer(torch, logical, t_layouts)
        dcols = [dms.get("nc") if len(logical) == 2 else dms.get("nchw"),
                 dms.get("nhwc"), dms.get("nChw16c")]
        tcols = [tms.get("nc") if len(logical) == 2 else tms.get("nchw"), tms.get("nhwc")]
        label = "[" + ",".join(str(d) for d in shape) + "]"
        print("%-17s %-6s %-9s %3d %9.4f %7.2f %6s | %s %s %s %s %s | %s %s %s %s%s"
              % (label, r["layout"], r["direction"], r["threads"], nnp, r["gbps"],
                 "%6.1f" % pct if pct is not None else "-",
                 fmt_ms(dcols[0]), fmt_ms(dcols[1]), fmt_ms(dcols[2]),
                 fmt_ratio(dbest), fmt_ratio(dsame),
                 fmt_ms(tcols[0]), fmt_ms(tcols[1]), fmt_ratio(tbest), fmt_ratio(tsame),
                 " !" if max(spread) > NOISY else ""))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: combine.py FILE.jsonl...")
    main(sys.argv[1:])
