"""MkDocs hook: the command-line reference, generated from the package's own parser at build time.

``fakeballoons.cli.build_parser()`` is the parser the ``fakeballoons`` command runs, so the page
lists exactly the subcommands, options, choices and defaults of the installed code: it cannot
drift from ``fakeballoons SUBCOMMAND --help``. The page is added to the build as a generated file
(``reference/cli.md``) in place of the stub of that name in the repository (which only points
readers of the unbuilt sources to ``--help``); nothing is written into the source tree.
"""

from __future__ import annotations

import argparse
import os

from mkdocs.structure.files import File

PAGE = "reference/cli.md"

INTRO = """# Command line

This page is generated from the `fakeballoons` command's own parser (`fakeballoons.cli.build_parser()`)
each time the documentation is built, so every subcommand, option, choice and default below is the
installed code's. `fakeballoons SUBCOMMAND --help` prints the same text in a terminal.

A mistake (a bad option or configuration value, a missing or corrupt file, an output in a missing
or unwritable directory) exits with status 2 and one line on stderr that says what is wrong. A
training run stopped by SIGTERM or SIGINT writes a checkpoint and exits with 128 + the signal's
number (143, 130); run the same command again to continue it (see
[Training: stops, resumes and faults](../guides/training.md#stops-resumes-and-faults)).
Under `torchrun`, use `torchrun --nproc_per_node=N -m fakeballoons train ...`.
"""


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps no public list of subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        name = action.metavar or action.dest
        if action.choices and not action.metavar:
            name = "{" + ",".join(map(str, action.choices)) + "}"
        return name if action.nargs not in ("?", "*") else f"[{name}]"
    names = ", ".join(action.option_strings)
    if action.nargs == 0:
        return names
    if action.metavar:
        arg = action.metavar
    elif action.choices:
        arg = "{" + ",".join(map(str, action.choices)) + "}"
    else:
        arg = action.dest.upper()
    return f"{names} {arg}"


def _option(action: argparse.Action) -> str:
    text = (action.help or "").replace("%(default)s", str(action.default))
    if text == argparse.SUPPRESS:
        return ""
    extra = []
    if action.required and action.option_strings:
        extra.append("required")
    if action.option_strings and action.nargs != 0 and action.default not in (None, argparse.SUPPRESS):
        extra.append(f"default: `{action.default}`")
    if action.choices and action.metavar:
        extra.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    if extra:
        text = f"{text} ({'; '.join(extra)})" if text else "; ".join(extra).capitalize()
    # a definition list: no table cells, so metavars such as NAME|FILE need no escaping
    return f"`{_flags(action)}`\n:   {text or '&nbsp;'}\n"


def render_cli() -> str:
    from fakeballoons.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps usage lines at the terminal's width
    try:
        parser = build_parser()
        subs = _subparsers(parser)
        summaries = _summaries(parser)
        out = [INTRO, "", "## Subcommands", ""]
        out += [f"- [`{name}`](#{name}): {summaries.get(name, '')}" for name in subs]
        out.append("")
        for name, sub in subs.items():
            out += [f"## {name}", ""]
            if sub.description:
                out += [sub.description, ""]
            out += ["```text", sub.format_usage().strip(), "```", ""]
            for group in sub._action_groups:
                actions = [a for a in group._group_actions if not isinstance(a, argparse._HelpAction)]
                if not actions:
                    continue
                out += [f"**{group.title.capitalize()}**", ""]
                out += [_option(a) for a in actions if a.help != argparse.SUPPRESS]
                out.append("")
            if sub.epilog:
                out += [sub.epilog, ""]
        return "\n".join(out)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def on_files(files, config):
    stub = files.get_file_from_path(PAGE)
    if stub is not None:
        files.remove(stub)
    files.append(File.generated(config, PAGE, content=render_cli()))
    return files
