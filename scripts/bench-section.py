#!/usr/bin/env python3
"""Replace one `<!-- bench:PART:begin -->...<!-- bench:PART:end -->` section of BENCHMARKS.md with stdin."""
import sys

part, path = sys.argv[1], sys.argv[2]
body = sys.stdin.read().rstrip("\n")
begin, end = f"<!-- bench:{part}:begin -->", f"<!-- bench:{part}:end -->"
text = open(path).read()
if begin not in text or end not in text:
    text = text.rstrip("\n") + f"\n\n{begin}\n{end}\n"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(f"{head}{begin}\n{body}\n{end}{tail}")
