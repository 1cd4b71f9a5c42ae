"""``streamq completion bash|zsh``: a completion script generated from the parser itself, so
it never drifts from the commands. zsh reuses the bash function through bashcompinit."""

from __future__ import annotations

import argparse
import shlex


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


def bash(parser: argparse.ArgumentParser) -> str:
    cases = "\n".join(
        f"        {shlex.quote(path or '_')}) words={shlex.quote(' '.join(words))} ;;"
        for path, words in _table(parser).items()
    )
    return f"""# streamq bash completion: eval "$(streamq completion bash)"
_streamq_complete() {{
    local cur path="" w i words
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        case "$w" in -*) continue ;; esac
        if [[ -z "$path" ]]; then candidate="$w"; else candidate="$path $w"; fi
        case "$candidate" in
{_known_paths(parser)}) path="$candidate" ;;
        esac
    done
    case "${{path:-_}}" in
{cases}
        *) words="" ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _streamq_complete streamq
"""


def _known_paths(parser: argparse.ArgumentParser) -> str:
    paths = [p for p in _table(parser) if p]
    return "            " + "|".join(shlex.quote(p) for p in paths)


def zsh(parser: argparse.ArgumentParser) -> str:
    return (
        '# streamq zsh completion: eval "$(streamq completion zsh)"\n'
        "autoload -U +X bashcompinit && bashcompinit\n" + bash(parser)
    )


SHELLS = {"bash": bash, "zsh": zsh}
