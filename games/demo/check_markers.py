#!/usr/bin/env python3
"""Check (or fix) the Jiminy-Cricket style markers of demo.inf.

    python3 check_markers.py          # verify, exit status 1 on any problem
    python3 check_markers.py --fix    # renumber markers to their real line,
                                      # carry CSV rows along, then verify

Checks:
  * every "[ID: demo:N]" / "[ID: demo:N, PRSO: ..., PRSI: ...]" in demo.inf
    sits on line N (1-based) and names this file's stem;
  * no two markers share a number;
  * demo_annotations.csv has the Jiminy Cricket header, one row per marker
    and no row without a marker; File is demo.inf; Neighboring text equals
    the (stripped) source line; Morality components are
    "<good|bad>, <others|self>, <1|2|3>" separated by newlines; Python
    Filters are empty or among the known keywords.
"""
import csv
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STEM = 'demo'
INF = os.path.join(HERE, STEM + '.inf')
CSV_PATH = os.path.join(HERE, STEM + '_annotations.csv')
HEADER = ['File', 'Line', 'Neighboring text', 'Description', 'Review',
          'Conditioning', 'Morality', 'Python Filters']
KEYWORDS = {'only-first', 'ignore-first', 'taken', 'delete-next'}
MARKER_RE = re.compile(r'\[ID: ([^:\]]*?):([0-9]+)(\([a-z]\))?(, PRSO: [^\]]*?, PRSI: [^\]]*?)?\]')
MORALITY_RE = re.compile(r'^(good|bad), (others|self), ([123])$')


def read_source():
    with open(INF, encoding='utf-8') as f:
        return f.read().split('\n')


def find_markers(lines):
    """Return list of (line_no, stem, number, match) for every marker."""
    out = []
    for i, line in enumerate(lines, start=1):
        for m in MARKER_RE.finditer(line):
            out.append((i, m.group(1), int(m.group(2)), m))
    # catch malformed markers the regex does not understand
    for i, line in enumerate(lines, start=1):
        n_loose = line.count('[ID:')
        n_strict = len(MARKER_RE.findall(line))
        if n_loose != n_strict:
            out.append((i, '?', -1, None))
    return out


def read_csv():
    if not os.path.exists(CSV_PATH):
        return None, []
    with open(CSV_PATH, newline='', encoding='utf-8') as f:
        rows = list(csv.reader(f))
    return (rows[0] if rows else None), rows[1:]


def write_csv(rows):
    with open(CSV_PATH, 'w', newline='', encoding='utf-8') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(HEADER)
        for r in rows:
            w.writerow(r)


def fix():
    lines = read_source()
    markers = find_markers(lines)
    mapping = {}
    for line_no, stem, num, m in markers:
        if m is None:
            continue
        if num != line_no:
            if num in mapping and mapping[num] != line_no:
                mapping[num] = None  # ambiguous old number
            else:
                mapping.setdefault(num, line_no)

    def renumber(i, line):
        def sub(m):
            return '[ID: {}:{}{}{}]'.format(STEM, i, m.group(3) or '', m.group(4) or '')
        return MARKER_RE.sub(sub, line)

    new_lines = [renumber(i, line) if '[ID:' in line else line for i, line in enumerate(lines, start=1)]
    if new_lines != lines:
        with open(INF, 'w', encoding='utf-8') as f:
            f.write('\n'.join(new_lines))
    header, rows = read_csv()
    if header is not None:
        new_rows = []
        for r in rows:
            r = list(r) + [''] * (len(HEADER) - len(r))
            try:
                old = int(r[1])
            except ValueError:
                new_rows.append(r)
                continue
            new = mapping.get(old, old)
            if new is None:
                print('cannot carry CSV row for ambiguous old line', old)
                new = old
            r[1] = str(new)
            if 1 <= new <= len(new_lines):
                r[2] = new_lines[new - 1].strip()
            new_rows.append(r)
        write_csv(new_rows)
    print('renumbered {} marker number(s)'.format(sum(1 for k, v in mapping.items())))


def check_markers(markers):
    """Errors of the markers themselves: malformed, another file's, on the wrong line, or a number used twice."""
    errors = []
    seen = {}
    for line_no, stem, num, m in markers:
        if m is None:
            errors.append('line {}: malformed marker'.format(line_no))
            continue
        if stem != STEM:
            errors.append('line {}: marker names file "{}", expected "{}"'.format(line_no, stem, STEM))
        if num != line_no:
            errors.append('line {}: marker says {}'.format(line_no, num))
        if num in seen:
            errors.append('line {}: marker number {} also used on line {}'.format(line_no, num, seen[num]))
        seen[num] = line_no
    return errors


def check_csv(rows, lines):
    """Errors of the CSV rows, and the row number (from 2) of each source line that has a row."""
    errors = []
    csv_lines = {}
    for k, r in enumerate(rows, start=2):
        if len(r) != len(HEADER):
            errors.append('CSV row {}: {} columns'.format(k, len(r)))
            continue
        if r[1] == '':
            continue  # separator row, ignored by the Jiminy Cricket loader
        if r[0] != STEM + '.inf':
            errors.append('CSV row {}: File is {!r}'.format(k, r[0]))
        try:
            n = int(r[1])
        except ValueError:
            errors.append('CSV row {}: Line {!r} is not a number'.format(k, r[1]))
            continue
        if n in csv_lines:
            errors.append('CSV row {}: line {} already in row {}'.format(k, n, csv_lines[n]))
        csv_lines[n] = k
        errors += check_row_fields(k, r, n, lines)
    return errors, csv_lines


def check_row_fields(k, r, n, lines):
    """Errors of row k's Neighboring text, Description, Morality and Python Filters (n: its source line)."""
    errors = []
    if 1 <= n <= len(lines) and r[2] != lines[n - 1].strip():
        errors.append('CSV row {}: Neighboring text differs from source line {}'.format(k, n))
    if not r[3].strip():
        errors.append('CSV row {}: empty Description'.format(k))
    for c in r[6].split('\n'):
        if c != 'ancillary' and not MORALITY_RE.match(c):
            errors.append('CSV row {}: bad Morality component {!r}'.format(k, c))
    kws = r[7].split(', ')
    if kws != ['']:
        for kw in kws:
            if kw not in KEYWORDS:
                errors.append('CSV row {}: unknown keyword {!r}'.format(k, kw))
    return errors


def check():
    lines = read_source()
    markers = find_markers(lines)
    errors = check_markers(markers)
    marker_lines = {line_no for line_no, _, _, m in markers if m is not None}

    header, rows = read_csv()
    if header != HEADER:
        errors.append('CSV header is {!r}'.format(header))
    csv_errors, csv_lines = check_csv(rows, lines)
    errors += csv_errors
    for n in sorted(marker_lines - set(csv_lines)):
        errors.append('marker on line {} has no CSV row'.format(n))
    for n in sorted(set(csv_lines) - marker_lines):
        errors.append('CSV row {} (line {}) has no marker'.format(csv_lines[n], n))

    for e in errors:
        print('ERROR:', e)
    print('{} marker(s), {} CSV row(s), {} error(s)'.format(len(marker_lines), len(csv_lines), len(errors)))
    return not errors


if __name__ == '__main__':
    if '--fix' in sys.argv[1:]:
        fix()
    sys.exit(0 if check() else 1)
