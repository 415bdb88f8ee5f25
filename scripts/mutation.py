"""`make mutation`: how many wrong versions of the product the tests catch.

    python scripts/mutation.py [--python] [--script] [--only ID ...]

--python   mutmut over the pure modules ([tool.mutmut] in pyproject.toml), then the score of
           each module: killed / (mutants - equivalent). scripts/mutation-equivalents.json
           lists the mutants judged equivalent (same behaviour), each with why.
--script   each hand-made mutation of nat/nat-bootstrap.sh (scripts/script-mutations.json)
           applied to a copy of the repository, whose script tests then run (root: they build
           network namespaces); killed when they fail.
Neither: both. The figures go to docs/mutation-scores.json (the README quotes them).
Not in CI: hours on two cores.
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
SCRIPT = "nat/nat-bootstrap.sh"
SCORES = ROOT / "docs" / "mutation-scores.json"
EQUIVALENTS = ROOT / "scripts" / "mutation-equivalents.json"
SCRIPT_MUTATIONS = ROOT / "scripts" / "script-mutations.json"
TARGET = 0.90
KILLED, SURVIVED = 1, 0  # mutmut's exit codes of a mutant's test run


def python_scores() -> dict[str, Any]:
    subprocess.run([sys.executable, "-m", "mutmut", "run"], cwd=ROOT, check=False)
    equivalents = json.loads(EQUIVALENTS.read_text())["equivalent"]
    modules: dict[str, dict[str, Any]] = {}
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        results: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        module = str(meta.relative_to(ROOT / "mutants")).removesuffix(".meta")
        equivalent = {key for key in results if key in equivalents}
        counted = {k: v for k, v in results.items() if k not in equivalent}
        killed = sum(1 for v in counted.values() if v not in (SURVIVED, None))
        survivors = sorted(k for k, v in counted.items() if v in (SURVIVED, None))
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


def script_scores(only: list[str] | None) -> dict[str, Any]:
    plan = json.loads(SCRIPT_MUTATIONS.read_text())
    source = (ROOT / SCRIPT).read_text()
    results = []
    for mutation in plan["mutations"]:
        if only and mutation["id"] not in only:
            continue
        if source.count(mutation["find"]) != 1:
            raise SystemExit(f"script mutation {mutation['id']}: its text occurs "
                             f"{source.count(mutation['find'])} times in {SCRIPT}: update "
                             f"{SCRIPT_MUTATIONS.name}")
        with tempfile.TemporaryDirectory(prefix="nat-mutation-") as scratch:
            copy = Path(scratch)
            repository_copy(copy)
            (copy / SCRIPT).write_text(source.replace(mutation["find"], mutation["replace"]))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", action="store_true")
    parser.add_argument("--script", action="store_true")
    parser.add_argument("--only", nargs="*", help="script mutation ids")
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
        found = script_scores(args.only)
        if not args.only:
            scores["script"] = {"date": today, **found}
        print(f"  killed {found['killed']} of {found['mutations'] - found['equivalent']} "
              f"({found['equivalent']} equivalent)")
    SCORES.parent.mkdir(exist_ok=True)
    SCORES.write_text(json.dumps(scores, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
