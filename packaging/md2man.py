#!/usr/bin/env python3
"""Turns docs/config.md into the man page distd.toml(5), so the page cannot drift from the doc.

Usage: md2man.py CONFIG_MD VERSION > distd.toml.5

Handles what config.md uses: '#'/'##' headings, paragraphs, '- ' lists, '|' tables (each row becomes a
.TP entry: the key in bold, type and default, then the meaning), ``` blocks, `code`, **bold** and
[text](link). Anything else is copied as text.
"""
import re
import sys


def esc(text):
    """Roff-escapes plain text: backslashes, dashes, non-ASCII (as \\[uXXXX]), a leading dot."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = "".join(c if ord(c) < 128 else "\\[u%04X]" % ord(c) for c in text)
    return re.sub(r"^([.'])", r"\\&\1", text)


def inline(text):
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1", text)
    out, pos = [], 0
    for m in re.finditer(r"`([^`]+)`|\*\*([^*]+)\*\*", text):
        out.append(esc(text[pos:m.start()]))
        out.append("\\fB" + esc(m.group(1) or m.group(2)) + "\\fR")
        pos = m.end()
    out.append(esc(text[pos:]))
    line = "".join(out)
    return "\\&" + line if line.startswith((".", "'")) else line


def cells(row):
    return [c.strip() for c in row.strip().strip("|").split("|")]


def convert(lines, version):
    out = ['.TH DISTD.TOML 5 "" "distd %s" "File Formats"' % version,
           ".SH NAME", "distd.toml \\- configuration file of distd and distctl",
           ".SH SYNOPSIS", "\\fI/etc/distd/distd.toml\\fR"]
    i, header, para = 0, None, False
    while i < len(lines):
        line = lines[i].rstrip("\n")
        if not line.startswith("|"):
            header = None
        if line.startswith("```"):
            out += [".PP", ".nf"]
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                out.append("\\&" + esc(lines[i].rstrip("\n")))
                i += 1
            out.append(".fi")
        elif line.startswith("# "):
            out.append(".SH DESCRIPTION")
        elif line.startswith("## "):
            out.append(".SH " + esc(line[3:].strip().upper()))
        elif line.startswith("|"):
            row = cells(line)
            if header is None:
                header = [h.lower() for h in row]
            elif not all(re.fullmatch(r":?-+:?", c) for c in row):
                fields = dict(zip(header, row))
                key = fields.get("key") or fields.get("section.key") or row[0]
                extra = [inline(fields[f]) for f in ("type", "where") if f in fields]
                if "default" in fields:
                    extra.append("default: " + inline(fields["default"]))
                out.append(".TP")
                out.append(inline(key) + (" (" + "; ".join(extra) + ")" if extra else ""))
                out.append(inline(fields.get("meaning", row[-1])))
        elif re.match(r"^\s*[-*] ", line):
            out += [".IP \\(bu 2", inline(re.sub(r"^\s*[-*] ", "", line))]
            para = True
            i += 1
            continue
        elif line.strip():
            if not para:
                out.append(".PP")
            out.append(inline(line.strip()))
        para = bool(line.strip()) and not line.startswith(("#", "|", "```"))
        i += 1
    out += [".SH FILES", "/etc/distd/distd.toml", ".br",
            "/usr/share/doc/distd/examples/hq.toml, center.toml (examples)",
            ".SH SEE ALSO", "\\fBdistd\\fR(8), \\fBdistctl\\fR(1), /usr/share/doc/distd/config.md"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(convert(f.readlines(), sys.argv[2]))
