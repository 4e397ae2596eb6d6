"""No function in src/ is longer than a screen.

    check_function_length.py --src DIR [--max N]

A function is a line at column 0 that opens a parameter list, up to the
first '}' at column 0 after its '{' (the project's style: braces of a
function body at column 0). Prints the longest five; exit 1 when one is
over N lines (default 100), naming each.
"""
import argparse
import glob
import os
import re
import sys

HEAD = re.compile(r'^[A-Za-z_].*\b(\w+)\s*\(')


def functions(path):
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    i = 0
    while i < len(lines):
        m = HEAD.match(lines[i])
        if m and not lines[i].rstrip().endswith(';') and not lines[i].startswith('#'):
            j = i
            while j < len(lines) and not lines[j].startswith('{') and \
                    not lines[j].rstrip().endswith(';'):
                j += 1
            if j < len(lines) and lines[j].startswith('{'):
                k = j
                while k < len(lines) and not lines[k].startswith('}'):
                    k += 1
                yield m.group(1), i + 1, k - i + 1
                i = k
        i += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--src', required=True)
    ap.add_argument('--max', type=int, default=100)
    a = ap.parse_args()
    found = []
    for path in sorted(glob.glob(os.path.join(a.src, '*', '*.c'))):
        rel = os.path.relpath(path, a.src)
        found += [(n, rel, name, line) for name, line, n in functions(path)]
    found.sort(reverse=True)
    for n, rel, name, line in found[:5]:
        print('%4d lines  %s:%d  %s' % (n, rel, line, name))
    over = [f for f in found if f[0] > a.max]
    for n, rel, name, line in over:
        print('FAIL %s:%d %s is %d lines (at most %d)' % (rel, line, name, n, a.max))
    print('check_function_length: %d functions, %s' % (
        len(found), '%d over %d lines' % (len(over), a.max) if over else 'none over %d lines' % a.max))
    return 1 if over or not found else 0


if __name__ == '__main__':
    sys.exit(main())
