#!/usr/bin/env python3
"""Walks every distctl subcommand's --help (CLI11's format) and writes, from it:

  cli_walk.py roff DISTCTL > commands.h2m   the [COMMANDS] section help2man adds to distctl(1)
  cli_walk.py bash DISTCTL > distctl        bash completion: subcommands, options, files after
                                            options that take a value

So the man page and the completion list exactly the commands and options the binary has.
"""
import re
import subprocess
import sys

SECTION = re.compile(r"^(Options|Subcommands|Positionals):\s*$")
ENTRY = re.compile(r"^  (\S.*?)(?:\s{2,}(.*))?$")  # an item begins two columns in


def help_text(distctl, path):
    r = subprocess.run([distctl, *path, "--help"], capture_output=True, text=True, check=True)
    return r.stdout


def parse(text):
    """Returns (subcommands, options): options as (names, takes_value)."""
    subs, opts, section = [], [], None
    for line in text.splitlines():
        m = SECTION.match(line)
        if m:
            section = m.group(1)
            continue
        if not line.startswith(" "):
            if line.strip():
                section = None  # a line at column 0 (a footer, an example's title) ends it
            continue
        m = ENTRY.match(line)
        if not m:
            continue
        head = m.group(1).split()
        if section == "Subcommands":
            subs.append(head[0])
        elif section == "Options":
            names = [n for n in head[0].split(",") if n.startswith("-")]
            takes = len(head) > 1 and not head[1].startswith("Excludes") and head[1] != "Needs"
            opts.append((names, takes))
    return subs, opts


def walk(distctl, path=()):
    """Yields (path, help text, subcommands, options) for distctl and every subcommand, depth first."""
    text = help_text(distctl, list(path))
    subs, opts = parse(text)
    yield path, text, subs, opts
    for s in subs:
        yield from walk(distctl, path + (s,))


def roff_escape(line):
    line = line.replace("\\", "\\e").replace("-", "\\-")
    line = "".join(c if ord(c) < 128 else "\\[u%04X]" % ord(c) for c in line)
    return "\\&" + line


def roff(distctl):
    out = ["[COMMANDS]",
           "Each command's own \\fB\\-\\-help\\fR, as printed by this version of distctl",
           "(without the exit status table they all end with: it is shown under OPTIONS)."]
    for path, text, subs, _ in walk(distctl):
        if not path:
            continue
        out.append('.SS "distctl %s"' % " ".join(path))
        out += [".nf", ".RS 4"]
        for line in text.splitlines():
            if line.startswith("Exit status:"):
                break
            out.append(roff_escape(line))
        out += [".RE", ".fi"]
    out += ["[FILES]", "/etc/distd/distd.toml (see \\fBdistd.toml\\fR(5))",
            "[SEE ALSO]", "\\fBdistd\\fR(8), \\fBdistd.toml\\fR(5), /usr/share/doc/distd/cli.md"]
    return "\n".join(out) + "\n"


def bash(distctl):
    words, valued = {}, set()
    for path, _, subs, opts in walk(distctl):
        names = [n for o, _ in opts for n in o]
        words[" ".join(("distctl",) + path)] = " ".join(subs + names)
        valued.update(n for o, takes in opts if takes for n in o)
    table = "\n".join('    ["%s"]="%s"' % (k, v) for k, v in sorted(words.items()))
    return """# bash completion for distctl (generated from distctl --help by packaging/cli_walk.py)
_distctl() {
  local cur prev path=distctl w i
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  declare -A words=(
%s
  )
  local valued=" %s "  # options followed by a value: complete file names
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    if [[ -n ${words["$path $w"]+x} ]]; then path="$path $w"; fi
  done
  if [[ $valued == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
    return
  fi
  COMPREPLY=($(compgen -W "${words[$path]}" -- "$cur"))
  [[ $cur != -* && ${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
complete -o filenames -F _distctl distctl
""" % (table, " ".join(sorted(valued)))


if __name__ == "__main__":
    mode, binary = sys.argv[1], sys.argv[2]
    sys.stdout.write(roff(binary) if mode == "roff" else bash(binary))
