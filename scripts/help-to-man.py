#!/usr/bin/env python3
"""Man pages and bash completion for graft, generated from the command's own help.

The one source is `graft --help` and `graft SUB --help` (CLI11's text): this script turns it into
graft(1), one graft-SUB(1) per subcommand and a bash completion script, at build time (the root
CMakeLists.txt runs it on the command it just built), so the pages cannot drift from the command.

  help-to-man.py --graft PATH --version V --man-dir DIR [--completion FILE]
  help-to-man.py --graft PATH --version V --check DIR   # the pages in DIR (.1 or .1.gz) agree
                                                       # with PATH's --help; exit 1 if not
"""
import argparse
import gzip
import os
import re
import subprocess
import sys

PROG = "graft"
SEE_ALSO = ("docs/commands.md, docs/patch-authors-guide.md and docs/limitations.md in graft's "
            "sources (/usr/share/doc/graft/ when installed from the Debian package)")


def help_text(graft, sub=None):
    """The help of `graft [SUB] --help`, run with argv[0] = graft (its usage line names it)."""
    argv = [PROG] + ([sub] if sub else []) + ["--help"]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    r = subprocess.run(argv, executable=graft, capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        sys.exit(f"help-to-man: {' '.join(argv)} exited with {r.returncode}: {r.stderr}")
    return r.stdout


def parse(text):
    """CLI11's help: a description, `Usage: ...`, then sections (`Options:`) of indented entries
    `  NAME  DESCRIPTION` (a long NAME puts the description on the next, deeper indented line)."""
    lines = text.rstrip("\n").split("\n")
    h = {"description": [], "usage": "", "sections": []}
    section = None
    for line in lines:
        if line.startswith("Usage: "):
            h["usage"] = line[len("Usage: "):].strip()
        elif re.match(r"^\S.*:$", line) and h["usage"]:
            section = (line[:-1], [])
            h["sections"].append(section)
        elif not h["usage"]:
            if line.strip():
                d = line.strip()
                if not h["description"] and d.startswith(PROG + ": "):
                    d = d[len(PROG) + 2:]  # "graft: live-patch ...": the NAME line names it
                h["description"].append(d)
        elif section is not None and line.strip():
            m = re.match(r"^  (\S.*?)(?: {2,}(.*))?$", line)
            if line.startswith("   ") and section[1]:
                # a continuation: the description of the previous entry
                name, desc = section[1][-1]
                section[1][-1] = (name, (desc + " " + line.strip()).strip())
            elif m:
                section[1].append((m.group(1).strip(), (m.group(2) or "").strip()))
    return h


def esc(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    if s[:1] in (".", "'"):
        s = "\\&" + s
    return s


def page(name, section_title, version, h, sub=None, subs=None):
    """One man page, in roff."""
    title = name.upper()
    out = [f'.TH {title} 1 "" "{PROG} {version}" "User Commands"', ".SH NAME",
           f"{esc(name)} \\- {esc(' '.join(h['description']))}", ".SH SYNOPSIS"]
    usage = h["usage"].split(" ", 1)
    args = usage[1] if len(usage) > 1 else ""
    if sub and args.startswith(sub + " "):
        args = args[len(sub) + 1:]
    elif sub and args == sub:
        args = ""
    out += [f".B {PROG}{' ' + sub if sub else ''}", esc(args)]
    out += [".SH DESCRIPTION", esc(" ".join(h["description"])) + "."]
    for title_, entries in h["sections"]:
        out.append(f".SH {esc(title_.upper())}")
        for n, d in entries:
            out += [".TP", f".B {esc(n)}"]
            if title_ == "Subcommands":
                d = (d + " " if d else "") + f"(see {PROG}\\-{esc(n)}(1))"
                out.append(d if "\\" in d else esc(d))
            elif d:
                out.append(esc(d))
    out.append(".SH \"SEE ALSO\"")
    refs = [f"{PROG}(1)"] if sub else [f"{PROG}\\-{esc(s)}(1)" for s in subs or []]
    out.append(",\n".join(f".BR {r.replace('(', ' (', 1)}" for r in refs))
    out.append(esc(SEE_ALSO) + ".")
    out.append(f'.PP\nGenerated from "{PROG} {sub + " " if sub else ""}\\-\\-help" by '
               "scripts/help\\-to\\-man.py.")
    return "\n".join(out) + "\n"


def subcommands(h):
    for title, entries in h["sections"]:
        if title == "Subcommands":
            return [n for n, _ in entries]
    return []


def options(h):
    """Every option spelling (-o, --output) of a help."""
    opts = []
    for title, entries in h["sections"]:
        if title == "Options":
            for n, _ in entries:
                for spelling in n.split(" ")[0].split(","):
                    opts.append(spelling)
    return opts


def positionals(h):
    for title, entries in h["sections"]:
        if title == "Positionals":
            return [n.split(" ")[0] for n, _ in entries]
    return []


def choices(h, positional):
    for title, entries in h["sections"]:
        if title == "Positionals":
            for n, _ in entries:
                m = re.match(rf"^{re.escape(positional)} \S*:\{{([^}}]*)\}}", n)
                if m:
                    return m.group(1).split(",")
    return []


def completion(top, helps):
    """A bash completion script: subcommands, each one's options, files where a file is expected,
    the pids of `graft ps` for a pid, and the program's own completion after `graft run`."""
    subs = subcommands(top)
    lines = ["# bash completion for graft; generated from `graft SUB --help` by scripts/help-to-man.py",
             "_graft() {",
             "    local cur prev words cword",
             "    _init_completion || return",
             "    if ((cword == 1)); then",
             f"        COMPREPLY=($(compgen -W '{' '.join(subs + options(top))}' -- \"$cur\"))",
             "        return",
             "    fi",
             "    local sub=${words[1]} opts= pos=",
             "    case $sub in"]
    for s in subs:
        h = helps[s]
        lines.append(f"    {s}) opts='{' '.join(options(h))}' pos='{' '.join(positionals(h))}' ;;")
    lines += ["    *) return ;;",
              "    esac",
              "    if [[ $sub == run ]]; then",
              "        ((cword == 2)) && [[ $cur == -* ]] && { COMPREPLY=($(compgen -W \"$opts --\" -- \"$cur\")); return; }",
              "        local i=2; [[ ${words[2]} == -- ]] && i=3",
              "        _command_offset $i",
              "        return",
              "    fi",
              "    case $prev in",
              "    -o | --output | --target) _filedir; return ;;",
              "    --cc) COMPREPLY=($(compgen -c -- \"$cur\")); return ;;",
              "    --timeout | --cc-args) return ;;",
              "    esac",
              "    if [[ $cur == -* ]]; then",
              "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))",
              "        return",
              "    fi",
              "    # which positional is being completed: count the words before it that are not options",
              "    local i n=0",
              "    for ((i = 2; i < cword; i++)); do",
              "        case ${words[i]} in -o | --output | --target | --cc | --cc-args | --timeout) ((i++)) ;; -*) ;; *) ((n++)) ;; esac",
              "    done",
              "    local p=($pos) what",
              "    what=${p[n]:-${p[${#p[@]} - 1]}}",
              "    case $what in",
              "    pid) COMPREPLY=($(compgen -W \"$(graft ps 2>/dev/null | awk 'NR > 1 { print $1 }')\" -- \"$cur\")) ;;",
              "    patch | sources) _filedir ;;"]
    for s in subs:
        for p in positionals(helps[s]):
            c = choices(helps[s], p)
            if c:
                lines.append(f"    {p}) COMPREPLY=($(compgen -W '{' '.join(c)}' -- \"$cur\")) ;;")
    lines += ["    esac",
              "} && complete -F _graft graft",
              ""]
    return "\n".join(lines)


def pages(graft, version):
    top = parse(help_text(graft))
    subs = subcommands(top)
    if not subs:
        sys.exit("help-to-man: `graft --help` lists no subcommands")
    helps = {s: parse(help_text(graft, s)) for s in subs}
    out = {f"{PROG}.1": page(PROG, "", version, top, subs=subs)}
    for s in subs:
        out[f"{PROG}-{s}.1"] = page(f"{PROG}-{s}", "", version, helps[s], sub=s)
    return top, helps, out


def deroff(text):
    """The words of a roff page, for comparing with the help text."""
    text = re.sub(r"^\.(TH|SH|TP|PP|B|BR)\b ?", "", text, flags=re.M)
    text = text.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")
    return " ".join(text.split())


def check(graft, version, man_dir):
    top, helps, expected = pages(graft, version)
    failed = 0
    present = set()
    for f in os.listdir(man_dir):
        m = re.match(rf"^({re.escape(PROG)}(?:-[a-z-]+)?\.1)(\.gz)?$", f)
        if m:
            present.add(m.group(1))
    for extra in sorted(present - set(expected)):
        print(f"FAIL {extra}: a man page for no subcommand of `graft --help`")
        failed += 1
    for name, want in sorted(expected.items()):
        path = os.path.join(man_dir, name)
        if os.path.exists(path + ".gz"):
            got = gzip.open(path + ".gz", "rt").read()
        elif os.path.exists(path):
            got = open(path).read()
        else:
            print(f"FAIL {name}: missing (its subcommand is in `graft --help`)")
            failed += 1
            continue
        sub = name[len(PROG) + 1:-2] if name != f"{PROG}.1" else None
        h = helps[sub] if sub else top
        words = deroff(got)
        missing = []
        for _, entries in h["sections"]:
            for n, d in entries:
                for part in (n, d):
                    if part and " ".join(part.split()) not in words:
                        missing.append(part)
        if " ".join(h["description"]) not in words:
            missing.append(" ".join(h["description"]))
        if got != want:
            print(f"FAIL {name}: differs from the page generated from `graft {sub or ''} --help` now")
            failed += 1
        elif missing:
            print(f"FAIL {name}: the help's {missing!r} is not in the page")
            failed += 1
        else:
            print(f"ok   {name}: agrees with `graft {sub + ' ' if sub else ''}--help`")
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graft", required=True, help="the graft executable")
    ap.add_argument("--version", required=True)
    ap.add_argument("--man-dir", help="write graft.1 and graft-SUB.1 here")
    ap.add_argument("--completion", help="write the bash completion script here")
    ap.add_argument("--check", metavar="DIR", help="check the pages in DIR against the help")
    a = ap.parse_args()
    if a.check:
        sys.exit(1 if check(a.graft, a.version, a.check) else 0)
    top, helps, out = pages(a.graft, a.version)
    if a.man_dir:
        os.makedirs(a.man_dir, exist_ok=True)
        for name, text in out.items():
            with open(os.path.join(a.man_dir, name), "w") as f:
                f.write(text)
    if a.completion:
        os.makedirs(os.path.dirname(os.path.abspath(a.completion)), exist_ok=True)
        with open(a.completion, "w") as f:
            f.write(completion(top, helps))


if __name__ == "__main__":
    main()
