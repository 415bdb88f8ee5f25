"""What user data carries: the bootstrap script without its comments, the agent without its
docstrings, both still the same programs."""

from __future__ import annotations

import ast
import subprocess

from nat.userdata import (
    AGENT_PATH,
    BOOTSTRAP_SCRIPT_PATH,
    agent_script,
    bootstrap_script,
    strip_shell_comments,
)


def test_only_whole_line_comments_go() -> None:
    source = BOOTSTRAP_SCRIPT_PATH.read_text().splitlines()
    shipped = bootstrap_script().splitlines()
    assert shipped[0] == source[0] == "#!/bin/bash"
    # the shipped lines are the source's, in order; every line left out is a comment
    remaining = iter(shipped)
    expected: str | None = next(remaining)
    dropped = []
    for line in source:
        if line == expected:
            expected = next(remaining, None)
        else:
            dropped.append(line)
    assert expected is None, "a shipped line is not in the source, or out of order"
    assert dropped and all(line.lstrip().startswith("#") for line in dropped)
    # the sysctl file's own comment (inside a heredoc) is part of the file it writes
    assert any(line.startswith("# Written by nat-bootstrap.sh") for line in shipped)
    assert subprocess.run(["bash", "-n"], input=bootstrap_script(), text=True).returncode == 0


def test_heredoc_bodies_are_kept_verbatim() -> None:
    script = ("#!/bin/bash\n# a comment\ncat >f <<EOF\n# kept: part of the file\n  # kept\nEOF\n"
              "cat >g <<'END_OF_IT'\n# kept too\nEND_OF_IT\n    # gone\necho done # stays\n"
              "read -r -a x <<<\"$y\"\n# gone\n")
    assert strip_shell_comments(script) == (
        "#!/bin/bash\ncat >f <<EOF\n# kept: part of the file\n  # kept\nEOF\n"
        "cat >g <<'END_OF_IT'\n# kept too\nEND_OF_IT\necho done # stays\n"
        "read -r -a x <<<\"$y\"\n")


def test_the_shipped_agent_is_the_same_program() -> None:
    """Same statements, minus docstrings and function annotations."""
    def skeleton(tree: ast.AST) -> list[str]:
        return sorted(type(node).__name__ + ":" + getattr(node, "name", "")
                      for node in ast.walk(tree)
                      if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign,
                                           ast.Call, ast.If, ast.For, ast.While, ast.Try)))
    assert skeleton(ast.parse(agent_script())) == skeleton(ast.parse(AGENT_PATH.read_text()))
    assert '"""' not in agent_script()
