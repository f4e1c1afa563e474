"""Mutation testing of the critical modules with cosmic-ray; writes docs/mutation.md.

    make mutation                       # every target, all ~600 mutants (about two hours on two cores)
    make mutation MUTATION_SAMPLE=40    # a random sample of 40 mutants per target (about 35 minutes)
    make mutation TARGETS="identity"    # some targets (names or parts of names below)

``make`` runs two copies side by side (``--jobs 2``, each with its own database).

Each target is a few modules (optionally only some of their functions) and the tests that cover
them. cosmic-ray changes one thing at a time in the source (a comparison, an operator, a constant,
a ``not``, a loop that runs zero times ...) and runs the target's tests; a mutant the tests do not
notice "survives". The score is killed / (killed + survived).

It works on a copy of the project under ``var/mutation/tree`` (cosmic-ray edits the files it
mutates, so the checkout itself is never touched) with a database of its own
(``<EGOV_DATABASE_NAME or egovsad_test>_mutation``), built once and kept between mutants
(``EGOV_TEST_KEEP_DATABASE=1``, see tests/conftest.py).

Two choices keep the number of mutants down (docs/mutation.md says which and why):

* per operator site one representative replacement instead of every other operator: a comparison
  is moved across its boundary (``a < b`` becomes ``a <= b``, ``==`` becomes ``!=``, ``in`` becomes
  ``not in``), ``a + b`` becomes ``a - b`` and so on; a test that notices the off-by-one notices
  the cruder replacements as well;
* in large modules only the functions that carry the rule (``functions`` below).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "mutation"
TREE = WORK / "tree"  # per worker: tree-<n> (see main)
REPORT = ROOT / "docs" / "mutation.md"
COPY_EXCLUDES = {".git", ".venv", ".venv-superset", "node_modules", "var", "test-artifacts", "__pycache__",
                 ".pytest_cache", ".ruff_cache", ".hypothesis"}


@dataclass(frozen=True)
class Target:
    name: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]
    #: module -> function (or ``Class.method``) names to mutate; a module not named here is mutated whole.
    functions: dict | None = None


TARGETS = (
    Target("tenant context and access", ("tenants/context.py", "portal/access.py", "portal/tenancy.py"),
           ("tests/test_tenant_context.py", "tests/test_tenant_urls.py", "tests/test_access.py",
            "tests/test_access_scripts.py", "tests/test_isolation_matrix.py",
            "tests/auth/test_route_matrix.py")),
    Target("confidentiality", ("tenants/confidentiality.py",),
           ("tests/test_confidentiality_rules.py", "tests/opendata/test_confidentiality.py",
            "tests/benchmark/test_contributor_rules.py", "tests/benchmark/test_properties.py")),
    Target("loader validation", ("tenants/ingest/loader.py", "tenants/ingest/privacy.py"),
           ("tests/ingest/test_canonical_and_privacy.py", "tests/ingest/test_loader.py",
            "tests/ingest/test_partitions_on_demand.py", "tests/ingest/test_day_boundaries.py"),
           {"tenants/ingest/loader.py": ("_day_exists", "_parsed", "_required", "_optional", "_vocabulary",
                                         "_service_key", "_step_no", "_free_text", "_value_rules", "_error_case",
                                         "months_of", "_move", "_latest", "_cube_problems")}),
    Target("identity", ("tenants/identity.py",),
           ("tests/auth/test_identity_inputs.py", "tests/auth/test_first_admin.py",
            "tests/auth/test_unverified_email.py", "tests/auth/test_oidc_login.py", "tests/auth/test_user_admin.py",
            "tests/auth/test_cli_identity.py"),
           {"tenants/identity.py": ("parse_domains", "email_domain", "_check_url", "_claim_values", "map_role",
                                    "_checked_email", "admit_user", "_has_admin", "admit_operator")}),
    Target("push tokens", ("tenants/ingest/sources.py", "portal/views/api.py"),
           ("tests/ingest/test_push_scoping.py", "tests/ingest/test_upload_and_api.py"),
           {"tenants/ingest/sources.py": ("get_source", "get_run", "issue_token", "revoke_token", "token_matches"),
            "portal/views/api.py": ("_authorised_source", "_json_body", "push_batch", "batch_status")}),
    Target("Open Data publication", ("tenants/opendata/publication.py", "tenants/opendata/datasets.py"),
           ("tests/opendata/test_dataset_values.py", "tests/opendata/test_month_boundaries.py",
            "tests/opendata/test_confidentiality.py", "tests/opendata/test_publication.py",
            "tests/opendata/test_refresh.py"),
           {"tenants/opendata/publication.py": ("Publication.is_published", "publications", "publish", "withdraw",
                                                "build_snapshot", "preview", "_public_tenant", "public_snapshot",
                                                "published_entries", "all_published_entries"),
            "tenants/opendata/datasets.py": ("_since", "_ratio", "_usage_protection", "_usage_like", "build_usage",
                                             "build_completion", "_breakdown_protection", "build_breakdown",
                                             "build_satisfaction", "dataset_rows")}),
)

#: One replacement per operator site (see the module docstring). Operators not named keep all mutants.
KEEP_BINARY = {"Add": "Sub", "Sub": "Add", "Mult": "Div", "Div": "Mult", "FloorDiv": "Mult", "Mod": "FloorDiv",
               "Pow": "Mult", "BitOr": "BitAnd", "BitAnd": "BitOr", "BitXor": "BitOr", "LShift": "RShift",
               "RShift": "LShift", "MatMult": "Mult"}
KEEP_COMPARISON = {"Lt": {"LtE"}, "LtE": {"Lt"}, "Gt": {"GtE"}, "GtE": {"Gt"}, "Eq": {"NotEq"},
                   "NotEq": {"Eq"}, "Is": {"IsNot"}, "IsNot": {"Is"}, "In": {"NotIn"}, "NotIn": {"In"}}


def representative(operator: str) -> bool:
    match = re.fullmatch(r"core/Replace(Binary|Comparison)Operator_(\w+?)_(\w+)", operator)
    if not match:
        return True
    kind, old, new = match.groups()
    if kind == "Binary":
        return KEEP_BINARY.get(old) == new
    return new in KEEP_COMPARISON.get(old, set())


def function_lines(path: Path, names) -> list[tuple[int, int]]:
    """Line ranges of the named functions (``name`` or ``Class.method``) of a module."""
    tree = ast.parse(path.read_text())
    ranges, found = [], set()

    def visit(node, prefix=""):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qualified = prefix + child.name
                if qualified in names:
                    first = min([child.lineno] + [d.lineno for d in getattr(child, "decorator_list", [])])
                    ranges.append((first, child.end_lineno))
                    found.add(qualified)
                visit(child, qualified + ".")

    visit(tree)
    missing = set(names) - found
    if missing:
        raise SystemExit(f"{path}: no function {', '.join(sorted(missing))} (update scripts/mutation.py)")
    return ranges


def annotation_spans(path: Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where a module's type annotations are: mutants there change nothing (``from __future__ import
    annotations`` keeps them as strings), so ``int | None`` -> ``int & None`` is not run."""
    spans = []
    for node in ast.walk(ast.parse(path.read_text())):
        annotations = []
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            annotations.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            annotations.append(node.returns)
        spans += [((a.lineno, a.col_offset), (a.end_lineno, a.end_col_offset)) for a in annotations]
    return spans


def in_annotation(spans, mutation) -> bool:
    return any(start <= tuple(mutation.start_pos) and tuple(mutation.end_pos) <= end for start, end in spans)


def copy_tree() -> None:
    """The project as it is (committed or not) under var/mutation/tree, without caches and venvs."""
    if TREE.exists():
        shutil.rmtree(TREE)

    def ignore(directory, names):
        return [n for n in names if n in COPY_EXCLUDES or n.endswith((".pyc", ".sqlite"))]

    # Built assets and compiled translations come along (the tests need them).
    shutil.copytree(ROOT, TREE, ignore=ignore, symlinks=True)


def environment(worker: int = 0) -> dict[str, str]:
    env = dict(os.environ)
    base = env.get("EGOV_DATABASE_NAME", "egovsad_test")
    env.update({"EGOV_ENV": "test", "EGOV_DATABASE_NAME": f"{base}_mutation{worker or ''}",
                "EGOV_TEST_KEEP_DATABASE": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "HYPOTHESIS_STORAGE_DIRECTORY": str(WORK / "hypothesis")})
    # Redis database 14 (the tests use 15), so a test run beside it flushes nothing of the mutants'.
    redis = env.get("EGOV_TEST_REDIS_URL") or env.get("EGOV_REDIS_URL") or "redis://127.0.0.1:6379/0"
    redis = env.get("EGOV_MUTATION_REDIS_URL") or redis.rsplit("/", 1)[0] + "/14"
    env["EGOV_TEST_REDIS_URL"] = redis.rsplit("/", 1)[0] + f"/{int(redis.rsplit('/', 1)[1]) - worker}"
    return env


def test_command(target: Target) -> str:
    # -x: the first failing test kills the mutant; -p no:randomly etc. are not installed.
    return (f"{sys.executable} -m pytest -x -q -p no:cacheprovider --timeout=120 "
            f"-o addopts='' {' '.join(target.tests)}")


def _session(target: Target) -> Path:
    return WORK / (re.sub(r"\W+", "-", target.name.lower()).strip("-") + ".sqlite")


def run_target(target: Target, env: dict[str, str], sample: int = 0, resume: bool = False) -> dict:
    session = _session(target)
    config = session.with_suffix(".toml")
    if not (resume and session.exists()):
        session.unlink(missing_ok=True)
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(list(target.modules))}\n"
        "timeout = 300.0\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(test_command(target))}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n')
    cosmic = [str(Path(sys.executable).parent / "cosmic-ray")]
    if not session.exists():
        subprocess.run(cosmic + ["init", str(config), str(session)], cwd=TREE, env=env, check=True)
    skipped = _skip_outside_scope(target, session)
    if sample:
        _keep_a_sample(session, sample)
    subprocess.run(cosmic + ["exec", str(config), str(session)], cwd=TREE, env=env, check=True)
    return {"target": target, "session": session, "skipped": skipped}


def _skip_outside_scope(target: Target, session: Path) -> int:
    """Mark the mutants outside the scoped functions, and the non-representative ones, as skipped."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    ranges = {module: function_lines(TREE / module, names) for module, names in (target.functions or {}).items()}
    annotations = {module: annotation_spans(TREE / module) for module in target.modules}
    skipped = 0
    with use_db(str(session), mode=WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            mutation = item.mutations[0]
            module = str(mutation.module_path)
            line = mutation.start_pos[0]
            in_scope = module not in ranges or any(a <= line <= b for a, b in ranges[module])
            if not (in_scope and representative(mutation.operator_name)) or in_annotation(annotations[module],
                                                                                           mutation):
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED,
                                                      output="outside the scope of scripts/mutation.py"))
                skipped += 1
    return skipped


SAMPLED_OUT = "not in the sample (--sample)"


def _keep_a_sample(session: Path, size: int) -> None:
    """Leave ``size`` mutants of the target to run (those run already count), chosen at random."""
    import random

    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), mode=WorkDB.Mode.open) as db:
        done = sum(1 for _, r in db.completed_work_items if r.worker_outcome != WorkerOutcome.SKIPPED)
        pending = sorted(db.pending_work_items, key=lambda item: item.job_id)
        random.Random(19).shuffle(pending)
        for item in pending[max(size - done, 0):]:
            db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=SAMPLED_OUT))


def baseline(env: dict[str, str], targets) -> None:
    """Build the mutation database once and check that the targets' tests pass unmutated."""
    tests = sorted({t for target in targets for t in target.tests})
    build = {k: v for k, v in env.items() if k != "EGOV_TEST_KEEP_DATABASE"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                             *tests], cwd=TREE, env=build)
    if result.returncode != 0:
        raise SystemExit("The tests fail without any mutation; fix them before mutation testing.")


def in_scope_count(session: Path) -> int:
    """Mutants in the target's scope (run or left out of a sample)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome

    with use_db(str(session), mode=WorkDB.Mode.open) as db:
        return sum(1 for _, r in db.completed_work_items
                   if r.worker_outcome != WorkerOutcome.SKIPPED or r.output == SAMPLED_OUT)


def outcomes(session: Path) -> tuple[list, list, int]:
    """(killed, survived, incompetent or timed out) work items of a finished session."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    killed, survived, other = [], [], 0
    spans: dict[str, list] = {}
    with use_db(str(session), mode=WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            module = str(item.mutations[0].module_path)
            if module not in spans:
                spans[module] = annotation_spans(ROOT / module)
            if result.worker_outcome == WorkerOutcome.SKIPPED or in_annotation(spans[module], item.mutations[0]):
                continue
            if (result.worker_outcome != WorkerOutcome.NORMAL or result.test_outcome == TestOutcome.INCOMPETENT
                    or result.output == "timeout"):
                other += 1
            elif result.test_outcome == TestOutcome.KILLED:
                killed.append(item)
            else:
                survived.append((item, result.diff))
    return killed, survived, other


def _note(notes: dict[str, str], item) -> str:
    mutation = item.mutations[0]
    return notes.get(f"{mutation.module_path}:{mutation.start_pos[0]} {mutation.operator_name}", "")


def _minutes() -> str:
    path = WORK / "minutes"
    return path.read_text() if path.exists() else "?"


def write_report(results: list[dict], notes: dict[str, str]) -> None:
    lines = ["# Mutation testing", "",
             "Written by `make mutation` (`scripts/mutation.py`, cosmic-ray). A mutant is one small change to the",
             "source; it is *killed* when a test of its target fails, and *survives* when none does. Score =",
             "killed / (killed + survived); mutants that crash on import or time out count as killed by cosmic-ray's",
             "rules and are listed apart. Scope and operator choice: see the docstring of `scripts/mutation.py`.",
             "", f"Run: {time.strftime('%Y-%m-%d %H:%M')} UTC, {_minutes()} minutes. Where *run* is smaller than "
             "*in scope*, the mutants run were a random sample (`--sample`) and the score is an estimate.",
             "*Score now* counts the survivors that a test added after the run kills (their note says so) as killed",
             "and leaves out the equivalent ones (a change no behaviour can show).", "",
             "| target | modules | tests (now) | mutants in scope | run | killed | survived | crashed/timeout "
             "| score | score now |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        killed, survived, other = outcomes(r["session"])
        total = len(killed) + len(survived)
        score = f"{100 * len(killed) / total:.0f} %" if total else "-"
        later = sum(1 for item, _ in survived if _note(notes, item).startswith("killed"))
        equivalent = sum(1 for item, _ in survived if _note(notes, item).startswith("equivalent"))
        now = f"{100 * (len(killed) + later) / (total - equivalent):.0f} %" if total - equivalent else "-"
        t = r["target"]
        lines.append(f"| {t.name} | {', '.join(f'`{m}`' for m in t.modules)} | "
                     f"{', '.join(f'`{x}`' for x in t.tests)} | {in_scope_count(r['session'])} | {total + other} | "
                     f"{len(killed)} | {len(survived)} | {other} | {score} | {now} |")
    lines += ["", "## Surviving mutants", "",
              "Each is either killed by a test added since, or listed with the reason it is harmless.", ""]
    for r in results:
        _, survived, _ = outcomes(r["session"])
        lines += [f"### {r['target'].name}", ""]
        if not survived:
            lines += ["None.", ""]
        for item, diff in survived:
            mutation = item.mutations[0]
            where = f"{mutation.module_path}:{mutation.start_pos[0]}"
            note = _note(notes, item)
            lines += [f"* `{where}` in `{mutation.definition_name}`, {mutation.operator_name.removeprefix('core/')}"
                      + (f": {note}" if note else ": not analysed yet"), "", "  ```diff"]
            lines += ["  " + line for line in (diff or "").splitlines() if line.startswith(("+", "-"))
                      and not line.startswith(("+++", "---"))]
            lines += ["  ```", ""]
    REPORT.write_text("\n".join(lines).rstrip() + "\n")


#: Reasons for survivors that are harmless, keyed "module:line Operator" (kept in docs by hand as well).
NOTES_FILE = ROOT / "scripts" / "mutation-notes.json"


def main() -> None:
    global TREE
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", help="names (or parts of names) of targets; default all")
    parser.add_argument("--report-only", action="store_true",
                        help="write docs/mutation.md from the sessions of an earlier run (var/mutation/*.sqlite)")
    parser.add_argument("--jobs", type=int, default=1, help="copies (each with its own database) run side by side")
    parser.add_argument("--sample", type=int, default=0,
                        help="run at most this many mutants per target, chosen at random (default: all)")
    parser.add_argument("--resume", action="store_true",
                        help="go on with the sessions in var/mutation and the databases there (no baseline)")
    parser.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    chosen = [t for t in TARGETS if not args.targets or any(a.lower() in t.name.lower() for a in args.targets)]
    if not chosen:
        raise SystemExit("No such target; targets: " + ", ".join(t.name for t in TARGETS))
    WORK.mkdir(parents=True, exist_ok=True)
    if args.worker:  # one of --jobs: its share of the targets, no report
        TREE = WORK / f"tree-{args.worker}"
        mine = chosen[args.worker - 1::args.jobs]
        copy_tree()
        env = environment(args.worker)
        if not args.resume:
            baseline(env, mine)
        for target in mine:
            run_target(target, env, args.sample, args.resume)
        return
    if not args.report_only:
        started = time.monotonic()
        if args.jobs > 1:
            names = [t.name for t in chosen]
            extra = (["--sample", str(args.sample)] if args.sample else []) + (["--resume"] if args.resume else [])
            workers = [subprocess.Popen([sys.executable, __file__, "--jobs", str(args.jobs), "--worker", str(n),
                                         *extra, *names]) for n in range(1, args.jobs + 1)]
            if any(w.wait() != 0 for w in workers):
                raise SystemExit("A mutation worker failed; see its output above.")
        else:
            copy_tree()
            env = environment()
            if not args.resume:
                baseline(env, chosen)
            for target in chosen:
                run_target(target, env, args.sample, args.resume)
        (WORK / "minutes").write_text(f"{(time.monotonic() - started) / 60:.0f}")
    results = [{"target": t, "session": _session(t)} for t in chosen if _session(t).exists()]
    notes = json.loads(NOTES_FILE.read_text()) if NOTES_FILE.exists() else {}
    write_report(results, notes)
    print(f"Wrote {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
