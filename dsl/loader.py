"""A rules folder -> checked, compiled campaigns: parse, check, compile, in that order."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import attrs

from points.dsl import ast, limits
from points.dsl.compiler import Plan, compile_campaign
from points.dsl.errors import Diagnostic, RulesError
from points.dsl.parser import parse_recovering, read_source


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

    def campaign(self, name: str) -> LoadedCampaign | None:
        return next((c for c in self.campaigns if c.name == name), None)


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rules_files(rules_dir: Path) -> list[Path]:
    # Not only regular files: a FIFO or a link out of the folder is reported (dsl.limits),
    # never skipped in silence.
    return sorted(p for p in rules_dir.glob("*.rules") if not p.is_dir())


def check_files(paths: list[Path], rules_dir: Path | None = None) -> tuple[list, list[Diagnostic], dict[str, str]]:
    """Parse and check files; returns (parsed files with their tables, diagnostics, sources)."""
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
    campaigns, kinds, hashes = [], [], {}
    for path, rules, tables in parsed:
        digest = file_hash(path)
        hashes[path.name] = digest
        kinds.extend(rules.kinds)
        for c in rules.campaigns:
            used = {t.name: tables[t.name] for t in c.tables}
            campaigns.append(LoadedCampaign(c.name, compile_campaign(c, used), path.name, digest, rules.source))
    campaigns.sort(key=lambda c: c.name)
    return RuleSet(rules_dir, tuple(campaigns), tuple(kinds), hashes)
