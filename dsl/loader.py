"""A rules folder -> checked, compiled campaigns: parse, check, compile, in that order."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import attrs

from points.dsl import ast, campaign_deps, limits
from points.dsl import symbols
from points.dsl.compiler import Plan, compile_campaign
from points.dsl.errors import Diagnostic, RulesError
from points.dsl.parser import parse_recovering, read_source
from points.ledger.event_catalogue import bundled_catalogue, load_catalogue, load_catalogue_leniently
from points.ledger.event_decl import Catalogue


@attrs.frozen
class LoadedCampaign:
    name: str
    plan: Plan
    file: str          # file name inside the rules folder, e.g. 'yearend-2025.rules'
    rules_hash: str    # sha256 of that file's bytes
    source: str


@attrs.frozen
class RuleSet:
    rules_dir: Path
    campaigns: tuple[LoadedCampaign, ...]
    kinds: tuple[ast.KindDecl, ...]
    hashes: dict[str, str]  # file name -> sha256 of its content
    # The event types of the folder (its *.events files over the bundled ones).
    catalogue: Catalogue = attrs.field(factory=bundled_catalogue)
    # The order a day's checkpoints settle the campaigns in: each after those whose awards
    # it reads (dsl.campaign_deps); empty: by name.
    run_order: tuple[str, ...] = ()

    def campaign(self, name: str) -> LoadedCampaign | None:
        return next((c for c in self.campaigns if c.name == name), None)


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rules_files(rules_dir: Path) -> list[Path]:
    # Not only regular files: a FIFO or a link out of the folder is reported (dsl.limits),
    # never skipped in silence.
    return sorted(p for p in rules_dir.glob("*.rules") if not p.is_dir())


def folder_catalogue(rules_dir: Path) -> tuple[Catalogue, list[Diagnostic], dict[str, str]]:
    """The event catalogue of a rules folder, and the problems of its *.events
    files (then the types declared without a problem stand in, so that the
    rules are still checked)."""
    catalogue, problems = load_catalogue_leniently(rules_dir)
    sources = {}
    for path, *_rest in problems:
        try:
            sources[path] = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass
    return catalogue, [Diagnostic(p, line, col, msg) for p, line, col, msg in problems], sources


def check_files(paths: list[Path], rules_dir: Path | None = None) -> tuple[list, list[Diagnostic], dict[str, str]]:
    """Parse and check files against the event declarations of their folder;
    returns (parsed files with their tables, diagnostics, sources)."""
    folder = rules_dir or (paths[0].parent if paths else Path("."))
    catalogue, diagnostics, sources = folder_catalogue(folder)
    with symbols.using(catalogue):
        parsed, found, more = _check_files(paths, rules_dir)
    sources.update(more)
    return parsed, diagnostics + found, sources


def _check_files(paths: list[Path], rules_dir: Path | None = None) -> tuple[list, list[Diagnostic], dict[str, str]]:
    from points.dsl import checker

    parsed, diagnostics, sources = [], [], {}
    for path in paths:
        label = str(path)
        try:
            if rules_dir is not None:
                limits.inside(path, rules_dir)
            source = read_source(path, label)
        except limits.FileRefused as exc:
            diagnostics.append(Diagnostic(label, 1, 1, str(exc)))
            continue
        except RulesError as exc:
            diagnostics.extend(exc.diagnostics)
            continue
        sources[label] = source
        rules, syntax, skipped = parse_recovering(source, label)
        if syntax:
            diagnostics.extend(syntax)
            if rules is not None:  # the rest of the file parsed: its own errors too
                found, _ = checker.check(rules, rules_dir or path.parent)
                diagnostics.extend(d for d in found if not _mentions(d, skipped))
            continue
        found, tables = checker.check(rules, rules_dir or path.parent)
        diagnostics.extend(found)
        parsed.append((path, rules, tables))
    if parsed:
        diagnostics.extend(checker.check_many([r for _, r, _ in parsed], rules_dir or paths[0].parent))
    return parsed, diagnostics, sources


def _mentions(d: Diagnostic, names) -> bool:
    """Whether a diagnostic names one of these (declared by a clause skipped as broken)."""
    return any(re.search(rf"\b{re.escape(n)}\b", d.message) for n in names)


def load_rules(rules_dir: str | Path) -> RuleSet:
    """Every `.rules` file of a folder, checked and compiled. RulesError lists every problem."""
    rules_dir = Path(rules_dir)
    if not rules_dir.is_dir():
        raise RulesError([Diagnostic(str(rules_dir), 1, 1, "rules folder not found")])
    paths = rules_files(rules_dir)
    if not paths:
        raise RulesError([Diagnostic(str(rules_dir), 1, 1, "no .rules files in this folder")])
    parsed, diagnostics, sources = check_files(paths, rules_dir)
    errors = [d for d in diagnostics if d.is_error]  # warnings are for `points check`
    if errors:
        raise RulesError(errors, sources)
    catalogue = load_catalogue(rules_dir)
    campaigns, kinds, hashes = [], [], {}
    with symbols.using(catalogue):
        for path, rules, tables in parsed:
            digest = file_hash(path)
            hashes[path.name] = digest
            kinds.extend(rules.kinds)
            for c in rules.campaigns:
                used = {t.name: tables[t.name] for t in c.tables}
                campaigns.append(LoadedCampaign(c.name, compile_campaign(c, used), path.name, digest, rules.source))
    campaigns.sort(key=lambda c: c.name)
    order = campaign_deps.run_order([c.plan.campaign for c in campaigns])
    return RuleSet(rules_dir, tuple(campaigns), tuple(kinds), hashes, catalogue, order)
