#!/usr/bin/env python3
"""Lists C++ functions whose body is longer than a limit (default 60 lines).

A guide, not a gate (docs/design/README.md): it follows brace depth after
stripping comments, strings and character literals, so it is a heuristic.
A function is a `{` outside any function whose preceding text (since the last
`;`, `{` or `}`) has a `)` and is not a namespace, class or initializer; a
lambda counts as part of the function around it. Lines counted are those
between the braces (the body), blank lines and comments included.

Usage: scripts/long-functions.py [--limit N] [PATH ...]   (default: src)
Prints `file:line: Name: N lines`, longest first; exit status 0 always.
"""
import argparse
import os
import re
import sys


def strip_code(text):
    """Returns text with comments, string and char literals blanked out
    (newlines kept, so line numbers stay right)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = ")" + m.group(1) + '"'
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + re.sub(r"[^\n]", "", text[i:j]))
            i = j
        elif c == '"' or (c == "'" and not (i > 0 and text[i - 1].isalnum())):
            # A quote after an alphanumeric is a digit separator (1'000).
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
        elif c == "#" and (i == 0 or text[i - 1] == "\n"):
            # A preprocessor line (with its continuations) is not code here.
            j = i
            while True:
                k = text.find("\n", j)
                if k < 0:
                    j = n
                    break
                if text[k - 1] == "\\":
                    j = k + 1
                    continue
                j = k
                break
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def function_name(head):
    """The name before the first top-level `(` of a function head."""
    depth = 0
    for k, ch in enumerate(head):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "(" and depth == 0:
            m = re.search(r"([~\w:]+(?:operator\s*\S+?)?)\s*$", head[:k])
            return m.group(1) if m else "?"
    return "?"


CTOR_INIT = re.compile(r"\)\s*(?:noexcept\s*)?:(?!:)")


def long_functions(path, limit):
    with open(path, encoding="utf-8", errors="replace") as f:
        code = strip_code(f.read())
    found = []
    stack = []  # entries: (kind, line, name)
    head = []
    head_line = 1
    line = 1
    in_function = 0
    for ch in code:
        if ch == "\n":
            line += 1
        if in_function:
            if ch == "{":
                stack.append(("inner", line, ""))
            elif ch == "}":
                kind, start, name = stack.pop()
                if kind == "func":
                    in_function = 0
                    body = line - start - 1
                    if body > limit:
                        found.append((body, path, start, name))
                    head = []
            continue
        if ch == "{":
            text = "".join(head)
            kind = "other"
            if re.search(r"\bnamespace\b|\bextern\s*\"\"", text):
                kind = "ns"
            elif re.search(r"\b(class|struct|union|enum)\b", text) and "(" not in text.split("=")[0].split(":")[0]:
                kind = "class"
            elif CTOR_INIT.search(text) and re.search(r"[\w>]\s*$", text):
                kind = "init"  # a member's brace initializer in a ctor's list
            elif ")" in text and "=" not in text.split("(")[0]:
                kind = "func"
            if kind == "func":
                stack.append(("func", line, function_name(text.strip())))
                in_function = 1
            else:
                stack.append((kind, line, ""))
                if kind != "init":
                    head = []
            continue
        if ch == "}":
            kind = stack.pop()[0] if stack else "other"
            if kind != "init":
                head = []
            continue
        if ch == ";" and not (stack and stack[-1][0] == "init"):
            head = []
            continue
        if stack and stack[-1][0] == "other":
            continue  # inside an initializer at namespace scope
        if not head and ch.isspace():
            continue
        if not head:
            head_line = line
        head.append(ch)
    del head_line
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("paths", nargs="*", default=["src"])
    args = parser.parse_args()
    found = []
    for root in args.paths:
        files = [root] if os.path.isfile(root) else [
            os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith((".cc", ".h"))
        ]
        for path in sorted(files):
            found.extend(long_functions(path, args.limit))
    for body, path, start, name in sorted(found, key=lambda x: (-x[0], x[1])):
        print(f"{path}:{start}: {name}: {body} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
