"""`make mutation`: how many wrong versions of the product the tests catch.

    python scripts/mutation.py [--python] [--script] [--only ID ...]

--python   mutmut over the pure modules ([tool.mutmut] in pyproject.toml), then the score of
           each module: killed / (mutants - equivalent). scripts/mutation-equivalents.json
           lists the mutants judged equivalent (same behaviour), each with why.
--script   each hand-made mutation of nat/instance/nat-bootstrap.sh (scripts/script-mutations.json)
           applied to a copy of the repository, whose script tests then run (root: they build
           network namespaces); killed when they fail.
Neither: both. The figures go to docs/mutation-scores.json, and their summary to the README
(between its mutation-scores markers; tests/test_docs_sync.py keeps the two in step).
Not in CI: about 45 minutes on two cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "nat/instance/nat-bootstrap.sh"
SCORES = ROOT / "docs" / "mutation-scores.json"
README = ROOT / "README.md"
README_START, README_END = "<!-- mutation-scores -->\n", "<!-- /mutation-scores -->\n"
EQUIVALENTS = ROOT / "scripts" / "mutation-equivalents.json"
SCRIPT_MUTATIONS = ROOT / "scripts" / "script-mutations.json"
TARGET = 0.90
# mutmut's record of each mutant's test run: 1 and 3 are a failing test, the others a timeout;
# 0 is survived, 33 no test reaches it, None not run yet: none of those counts as killed
CAUGHT = {1, 3, -24, 36, 152, 255}


def python_scores() -> dict[str, Any]:
    subprocess.run([sys.executable, "-m", "mutmut", "run"], cwd=ROOT, check=False)
    equivalents = json.loads(EQUIVALENTS.read_text())["equivalent"]
    modules: dict[str, dict[str, Any]] = {}
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        results: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        module = str(meta.relative_to(ROOT / "mutants")).removesuffix(".meta")
        equivalent = {key for key in results if key in equivalents}
        counted = {k: v for k, v in results.items() if k not in equivalent}
        killed = sum(1 for v in counted.values() if v in CAUGHT)
        survivors = sorted(k for k, v in counted.items() if v not in CAUGHT)
        modules[module] = {
            "mutants": len(results), "equivalent": len(equivalent), "killed": killed,
            "score": round(killed / len(counted), 3) if counted else 1.0,
            "survivors": survivors}
    return modules


def repository_copy(destination: Path) -> None:
    """The tracked files, and the TypeScript parser the example tests use."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    modules = ROOT / "tests" / "ts" / "node_modules"
    if modules.exists():
        (destination / "tests" / "ts" / "node_modules").symlink_to(modules)


def script_scores(only: list[str] | None,
                  earlier: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Runs every mutation, or only those named, the others keeping their `earlier` results."""
    plan = json.loads(SCRIPT_MUTATIONS.read_text())
    source = (ROOT / SCRIPT).read_text()
    kept = {r["id"]: r for r in earlier or []}
    results = []
    for mutation in plan["mutations"]:
        if only and mutation["id"] not in only:
            if mutation["id"] in kept:
                results.append({**kept[mutation["id"]],
                                "equivalent": mutation.get("equivalent")})
            continue
        if source.count(mutation["find"]) != 1:
            raise SystemExit(f"script mutation {mutation['id']}: its text occurs "
                             f"{source.count(mutation['find'])} times in {SCRIPT}: update "
                             f"{SCRIPT_MUTATIONS.name}")
        mutated = source.replace(mutation["find"], mutation["replace"])
        # a mutant bash cannot even parse would be "killed" by any test: not a fair mutation
        if subprocess.run(["bash", "-n"], input=mutated, text=True,
                          capture_output=True).returncode != 0:
            raise SystemExit(f"script mutation {mutation['id']}: the mutated script is not "
                             f"valid bash: make its replacement keep the syntax (e.g. ':')")
        with tempfile.TemporaryDirectory(prefix="nat-mutation-") as scratch:
            copy = Path(scratch)
            repository_copy(copy)
            (copy / SCRIPT).write_text(mutated)
            run = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                 "-p", "no:warnings", *plan["tests"]], cwd=copy, capture_output=True,
                text=True, env={**os.environ, "CI": "true"})
        failed = re.findall(r"^FAILED (\S+)", run.stdout, re.M)
        errors = re.findall(r"^ERROR (\S+)", run.stdout, re.M)
        # killed: a test failed on the mutant (not a test that could not even start)
        outcome = "killed" if run.returncode == 1 and failed and not errors else \
            "survived" if run.returncode == 0 else \
            f"error (pytest exit {run.returncode}: {(errors or ['?'])[0]})"
        print(f"  {mutation['id']:<28} {outcome:<9} {failed[0] if failed else ''}",
              flush=True)
        results.append({"id": mutation["id"], "what": mutation["what"], "outcome": outcome,
                        "killed_by": failed[0] if failed else None,
                        "equivalent": mutation.get("equivalent")})
    counted = [r for r in results if not r["equivalent"]]
    killed = sum(r["outcome"] == "killed" for r in counted)
    return {"mutations": len(results), "equivalent": len(results) - len(counted),
            "killed": killed, "score": round(killed / len(counted), 3) if counted else 1.0,
            "results": results}


def scores_markdown(scores: dict[str, Any]) -> str:
    """The README's summary of docs/mutation-scores.json."""
    lines = []
    python = scores.get("python")
    if python:
        lines += [f"Python, mutmut over the pure modules ({python['date']}; the equivalent "
                  "mutants, listed with why in [`scripts/mutation-equivalents.json`]"
                  "(scripts/mutation-equivalents.json), are not counted):", "",
                  "| module | killed / counted | score | equivalent |", "|---|---|---|---|"]
        for module, found in python["modules"].items():
            counted = found["mutants"] - found["equivalent"]
            lines.append(f"| `{module}` | {found['killed']} / {counted} | "
                         f"{found['score']:.1%} | {found['equivalent']} |")
        lines.append("")
    script = scores.get("script")
    if script:
        counted = script["mutations"] - script["equivalent"]
        survivors = [r["id"] for r in script["results"]
                     if not r["equivalent"] and r["outcome"] != "killed"]
        lines.append(f"`{SCRIPT}`, hand-made mutations ({script['date']}): {script['killed']} of "
                     f"{counted} killed by the data-path tests"
                     + (f"; not killed: {', '.join(survivors)}" if survivors else "") +
                     f"; {script['equivalent']} judged equivalent, each with why in "
                     "[`scripts/script-mutations.json`](scripts/script-mutations.json).")
        lines.append("")
    return "\n".join(lines)


def write_readme(scores: dict[str, Any]) -> None:
    text = README.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    README.write_text(text[:start] + scores_markdown(scores) + text[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", action="store_true")
    parser.add_argument("--script", action="store_true")
    parser.add_argument("--only", nargs="*", help="script mutation ids to run again (the "
                        "others keep their recorded results)")
    args = parser.parse_args(argv)
    both = not args.python and not args.script
    scores: dict[str, Any] = json.loads(SCORES.read_text()) if SCORES.exists() else {}
    today = datetime.date.today().isoformat()
    if args.python or both:
        scores["python"] = {"date": today, "target": TARGET, "modules": python_scores()}
        print("module                 killed/counted  score  (equivalent)")
        for module, found in scores["python"]["modules"].items():
            counted = found["mutants"] - found["equivalent"]
            print(f"  {module:<22} {found['killed']:>5}/{counted:<5}  {found['score']:.0%}"
                  f"  ({found['equivalent']})")
    if args.script or both:
        print(f"script mutations of {SCRIPT}:")
        earlier = scores.get("script", {}).get("results") if args.only else None
        found = script_scores(args.only, earlier)
        if not args.only or earlier:
            scores["script"] = {"date": today, **found}
        print(f"  killed {found['killed']} of {found['mutations'] - found['equivalent']} "
              f"({found['equivalent']} equivalent)")
    SCORES.parent.mkdir(exist_ok=True)
    SCORES.write_text(json.dumps(scores, indent=2) + "\n")
    write_readme(scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
