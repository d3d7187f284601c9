"""``python -m benchmarks.chart``: the benchmark tables as one PNG, next to the README.

Reads the tables of ``benchmarks/README.md`` (the published numbers) or, with
``--results``, the JSON that ``python -m benchmarks`` saves, and draws the ratios
the targets are stated in: per-token verification against the bare-signature floor
(ours beside PyJWT, authlib and plain joserfc), and the protected route against the
unprotected one (median and range over the rounds). Ratios, not times: they compare
across machines (see the README).

matplotlib comes with the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
CHART = HERE / "chart.png"

#: The targets from the README's "Against the targets" table.
VERIFY_TARGET = 1.45
HTTP_TARGETS = {"session cookie, memory store": 0.85}


@dataclass(frozen=True)
class VerifyRow:
    algorithm: str
    name: str
    micros: float
    ratio: float


@dataclass(frozen=True)
class HttpRow:
    case: str
    ratio: float
    low: float | None = None
    high: float | None = None


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _number(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text))


def parse_readme(text: str) -> tuple[list[VerifyRow], list[HttpRow]]:
    """The two result tables of the README, whatever their position."""
    verify: list[VerifyRow] = []
    http: list[HttpRow] = []
    for line in text.splitlines():
        if not line.startswith("|") or "---" in line:
            continue
        cells = _cells(line)
        if len(cells) == 4 and re.fullmatch(r"(RS|PS|ES|EdDSA)\d*", cells[0]):
            verify.append(VerifyRow(cells[0], cells[1], _number(cells[2]), _number(cells[3])))
        elif len(cells) >= 4 and cells[0] != "case" and "x to " in cells[-1]:
            # ... | ratio (median) | ratio range |, with or without a baseline column
            low, high = (_number(part) for part in cells[-1].split(" to "))
            http.append(HttpRow(cells[0], _number(cells[-2]), low, high))
    return verify, http


def load_results(path: Path) -> tuple[list[VerifyRow], list[HttpRow]]:
    """The JSON ``python -m benchmarks`` writes (``benchmarks/results/latest.json``)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    verify = [VerifyRow(**row) for row in data.get("verify", [])]
    http = [HttpRow(**row) for row in data.get("http", [])]
    return verify, http


def draw(verify: Sequence[VerifyRow], http: Sequence[HttpRow], output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    panels = (1 if verify else 0) + (1 if http else 0)
    if panels == 0:
        raise ValueError("no benchmark rows to draw")
    figure, axes_list = plt.subplots(
        1, panels, figsize=(7 * panels, 5.5), squeeze=False, constrained_layout=True
    )
    axes = iter(axes_list[0])
    if verify:
        _draw_verify(next(axes), verify)
    if http:
        _draw_http(next(axes), http)
    figure.suptitle("sanic-edge-auth benchmarks (ratios measured in the same run)")
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output


def _draw_verify(ax: Any, rows: Sequence[VerifyRow]) -> None:
    algorithms = list(dict.fromkeys(row.algorithm for row in rows))
    # The floor is 1.0 by definition and the cache hit is ~0: both say little as bars.
    names = [
        name
        for name in dict.fromkeys(row.name for row in rows)
        if "floor" not in name and "cache hit" not in name
    ]
    by_key = {(row.algorithm, row.name): row.ratio for row in rows}
    width = 0.8 / len(names)
    for index, name in enumerate(names):
        positions = [a + index * width - 0.4 + width / 2 for a in range(len(algorithms))]
        values = [by_key.get((algorithm, name), 0.0) for algorithm in algorithms]
        bars = ax.bar(positions, values, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(VERIFY_TARGET, color="tab:red", linestyle="--", linewidth=1)
    ax.text(-0.45, VERIFY_TARGET, f"target {VERIFY_TARGET}x", color="tab:red",
            va="bottom", ha="left", fontsize=8)  # fmt: skip
    ax.set_ylim(0, max(row.ratio for row in rows) * 1.12)
    ax.set_xticks(range(len(algorithms)), algorithms)
    ax.set_ylabel("time per token / bare signature check (lower is better)")
    ax.set_title("Per-token verification")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2)


def _draw_http(ax: Any, rows: Sequence[HttpRow]) -> None:
    labels = [row.case for row in rows]
    values = [row.ratio for row in rows]
    bars = ax.barh(labels, values, color=["tab:gray", "tab:blue", "tab:orange"][: len(rows)])
    for row, bar in zip(rows, bars, strict=True):
        center = bar.get_y() + bar.get_height() / 2
        right = row.ratio
        if row.low is not None and row.high is not None:
            ax.plot([row.low, row.high], [center, center], color="black", linewidth=1.5)
            right = max(right, row.high)
        ax.text(right + 0.02, center, f"{row.ratio:.2f}x", va="center", fontsize=9)
        target = HTTP_TARGETS.get(row.case)
        if target is not None:
            ax.plot([target, target], [bar.get_y(), bar.get_y() + bar.get_height()],
                    color="tab:red", linestyle="--")  # fmt: skip
    ax.invert_yaxis()
    ax.set_xlim(0, max(1.2, max((row.high or row.ratio) for row in rows) + 0.15))
    ax.set_xlabel("requests/s / unprotected (higher is better; line: range, dashes: target)")
    ax.set_title("Protected route over HTTP")


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chart", description=__doc__)
    parser.add_argument("--results", type=Path, help="a results JSON instead of the README")
    parser.add_argument("--output", type=Path, default=CHART, help="default: %(default)s")
    args = parser.parse_args(argv)
    if args.results:
        verify, http = load_results(args.results)
    else:
        verify, http = parse_readme(README.read_text(encoding="utf-8"))
    output = draw(verify, http, args.output)
    print(f"wrote {output} ({len(verify)} verification rows, {len(http)} HTTP rows)")
    return output


if __name__ == "__main__":
    main()
