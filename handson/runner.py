"""Execute chapter notebooks top to bottom with a fresh kernel, headless, and report each one's result.

    python -m handson.runner                      # every chapter, profile from $HANDSON_PROFILE or "default"
    python -m handson.runner 2 4 --profile smoke   # chapters 2 and 4 only
    python -m handson.runner chapter02_simple_nn/01_fizzbuzz.ipynb
    python -m handson.runner --in-place 2          # maintainers: rewrite the committed notebooks (profile default)

Executed copies go to ``artifacts/executed/<profile>/`` unless ``--in-place``; the committed notebooks are never
touched otherwise. A notebook reports its headline by printing a line that starts with ``Headline result:``
(``handson.headline``). Exit status is 1 when any notebook fails; the table names the failing cell.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from tqdm import tqdm

from handson import ARTIFACTS_DIR, PROFILE_ENV, REPO_ROOT, get_profile

HEADLINE_PREFIX = "Headline result:"


def find_notebooks(selectors: list[str]) -> list[Path]:
    """Notebooks chosen by chapter numbers ("2"), chapter folders or notebook paths; all chapters when empty."""
    chapters = sorted(p for p in REPO_ROOT.glob("chapter*") if p.is_dir())
    if not selectors:
        selected = chapters
    else:
        selected = []
        for sel in selectors:
            path = Path(sel)
            if path.suffix == ".ipynb":
                if not path.exists():
                    raise SystemExit(f"no such notebook: {sel}")
                selected.append(path.resolve())
                continue
            matches = [c for c in chapters
                       if c.name == path.name or (sel.isdigit() and c.name.startswith(f"chapter{int(sel):02d}"))]
            if not matches:
                raise SystemExit(f"no chapter matches {sel!r}; chapters: {', '.join(c.name for c in chapters)}")
            selected += matches
    notebooks = []
    for item in selected:
        if item.suffix == ".ipynb":
            notebooks.append(item)
        else:
            notebooks += sorted(p for p in item.glob("*.ipynb"))
    return notebooks


def headline_of(nb) -> str:
    """The last ``Headline result:`` line printed by any cell, or ''."""
    found = ""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            for line in text.splitlines():
                if line.startswith(HEADLINE_PREFIX):
                    found = line[len(HEADLINE_PREFIX):].strip()
    return found


def failing_cell(nb) -> str:
    """Describe the first cell with an error output: its code-cell number, first source line and the error."""
    code_index = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code_index += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                return f"code cell {code_index} ({first[:40]!r}): {out.get('ename')}: {str(out.get('evalue'))[:120]}"
    return "unknown cell"


def coalesce_streams(nb) -> None:
    """Merge consecutive stream outputs of a cell and keep only what a terminal would show after each carriage return.

    Progress bars (tqdm) redraw their line with ``\\r``; the stored notebook keeps the final state of each line only.
    """
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                    and merged[-1]["name"] == out["name"]):
                merged[-1]["text"] += out["text"]
            else:
                merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream":
                out["text"] = "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in out["text"].split("\n"))
        if "outputs" in cell:
            cell["outputs"] = merged


def execute(path: Path, profile: str, in_place: bool, timeout: int, bar: tqdm) -> tuple[str, float, str]:
    """Run one notebook; return (status, seconds, headline or failure description)."""
    nb = nbformat.read(path, as_version=4)
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    done = [0]

    def on_cell_executed(cell, cell_index, execute_reply):  # progress inside the notebook
        if cell.cell_type == "code":
            done[0] += 1
            bar.set_postfix_str(f"{path.name} cell {done[0]}/{n_code}")

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_executed=on_cell_executed)
    start = time.perf_counter()
    status, detail = "ok", ""
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as exc:
        status = "FAILED"
        detail = failing_cell(nb) if not isinstance(exc, CellTimeoutError) else f"cell timed out after {timeout}s"
    seconds = time.perf_counter() - start
    coalesce_streams(nb)
    rel = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else Path(path.name)
    target = path if (in_place and status == "ok") else ARTIFACTS_DIR / "executed" / profile / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return status, seconds, detail or headline_of(nb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("select", nargs="*", help="chapter numbers, chapter folders or notebook paths (default: all)")
    parser.add_argument("--profile", default=None, help="smoke, default or book (default: $HANDSON_PROFILE or default)")
    parser.add_argument("--in-place", action="store_true", help="rewrite the committed notebooks (maintainers)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    os.environ[PROFILE_ENV] = profile  # the kernels inherit it
    notebooks = find_notebooks(args.select)
    if not notebooks:
        print("no notebooks found")
        return 2
    print(f"Executing {len(notebooks)} notebook(s) in profile {profile!r}"
          + (" in place" if args.in_place else f"; copies in {(ARTIFACTS_DIR / 'executed' / profile)}"))
    rows = []
    with tqdm(notebooks, unit="nb", file=sys.stdout, dynamic_ncols=True) as bar:
        for path in bar:
            rows.append((path, *execute(path, profile, args.in_place, args.timeout, bar)))
    width = max(len(str(p.relative_to(REPO_ROOT))) if p.is_relative_to(REPO_ROOT) else len(p.name) for p, *_ in rows)
    print(f"\n{'notebook':<{width}}  {'status':<6}  {'seconds':>7}  result")
    for path, status, seconds, detail in rows:
        name = str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else path.name
        print(f"{name:<{width}}  {status:<6}  {seconds:7.1f}  {detail}")
    failed = [r for r in rows if r[1] != "ok"]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} notebooks passed (profile {profile})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
