"""``streamq completion bash|zsh``: a completion script generated from the parser itself, so
it never drifts from the commands. zsh reuses the bash function through bashcompinit."""

from __future__ import annotations

import argparse
import shlex
import sys


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(s for a in parser._actions for s in a.option_strings if s.startswith("--"))


def _table(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Command path ("", "inspect", "inspect queue") -> words that may follow it."""
    out: dict[str, list[str]] = {}

    def walk(path: str, p: argparse.ArgumentParser) -> None:
        subs = _subparsers(p)
        out[path] = sorted(subs) + _options(p)
        for name, child in subs.items():
            walk(f"{path} {name}".strip(), child)

    walk("", parser)
    return out


def _value_options(parser: argparse.ArgumentParser) -> list[str]:
    """Options that take a value (the next word is not a command or positional)."""
    found: set[str] = set()

    def walk(p: argparse.ArgumentParser) -> None:
        for a in p._actions:
            if a.option_strings and a.nargs != 0:
                found.update(a.option_strings)
        for child in _subparsers(p).values():
            walk(child)

    walk(parser)
    return sorted(found)


def _queue_paths(parser: argparse.ArgumentParser) -> list[str]:
    """Commands whose first positional argument is a queue name."""
    out = []

    def walk(path: str, p: argparse.ArgumentParser) -> None:
        positionals = [a for a in p._actions if not a.option_strings and a.dest != "==SUPPRESS=="]
        if positionals and positionals[0].dest == "queue":
            out.append(path)
        for name, child in _subparsers(p).items():
            walk(f"{path} {name}".strip(), child)

    walk("", parser)
    return out


def _alternatives(words: list[str]) -> str:
    return "|".join(shlex.quote(w) for w in words) or "''"


def bash(parser: argparse.ArgumentParser) -> str:
    cases = "\n".join(
        f"        {shlex.quote(path or '_')}) words={shlex.quote(' '.join(words))} ;;"
        for path, words in _table(parser).items()
    )
    return f"""# streamq bash completion: eval "$(streamq completion bash)"
# Queue names come from `streamq inspect queues --names` when a server is known (from
# $STREAMQ_REDIS_URL, --redis-url on the line, or a running embedded server here).
_streamq_complete() {{
    local cur path="" w i words candidate npos=0 skip=0 url=""
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        if ((skip)); then
            skip=0
            continue
        fi
        case "$w" in
            --redis-url) url="${{COMP_WORDS[i + 1]}}"; skip=1; continue ;;
            {_alternatives(_value_options(parser))}) skip=1; continue ;;
            -*) continue ;;
        esac
        if [[ -z "$path" ]]; then candidate="$w"; else candidate="$path $w"; fi
        case "$candidate" in
            {_alternatives([p for p in _table(parser) if p])}) path="$candidate"; npos=0 ;;
            *) npos=$((npos + 1)) ;;
        esac
    done
    case "${{path:-_}}" in
{cases}
        *) words="" ;;
    esac
    if [[ $npos -eq 0 && "$cur" != -* ]]; then
        case "$path" in
            {_alternatives(_queue_paths(parser))})
                if [[ -n "$url" ]]; then
                    words="$words $("${{COMP_WORDS[0]}}" inspect queues --names --redis-url "$url" 2>/dev/null)"
                elif [[ -n "$STREAMQ_REDIS_URL" || -f .streamq/server.json ]]; then
                    words="$words $("${{COMP_WORDS[0]}}" inspect queues --names 2>/dev/null)"
                fi ;;
        esac
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _streamq_complete streamq
"""


def zsh(parser: argparse.ArgumentParser) -> str:
    return (
        '# streamq zsh completion: eval "$(streamq completion zsh)"\n'
        "autoload -U +X bashcompinit && bashcompinit\n" + bash(parser)
    )


SHELLS = {"bash": bash, "zsh": zsh}


def command(args: argparse.Namespace) -> int:
    from streamq.cli._parser import build_parser  # the parser names this module

    sys.stdout.write(SHELLS[args.shell](build_parser()))
    return 0
