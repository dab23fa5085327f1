"""curve.py's plots: a PNG per scenario beside its JSON (matplotlib, `pip install -e '.[bench]'`).

Drawn again from a result file: `.venv/bin/python benchmarks/curve_plot.py benchmarks/curve.json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def plot(result: dict[str, Any], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plots")
        return []
    made = []
    store = result["store"]
    if rows := result.get("points"):
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        x = [r["points"] for r in rows]
        for key, label in (("stats_ms", "stats over all"), ("latest_10k_ms", "latest 10,000"),
                           ("day_range_ms", "one-day raw range")):  # fmt: skip
            ax[0].plot(x, [r[key] for r in rows], "o-", label=label)
        ax[0].set(
            xscale="log", xlabel="stored points", ylabel="ms (median)", title=f"reads ({store})"
        )
        ax[0].legend()
        ax[1].plot(x, [r["disk"]["bytes_per_point"] for r in rows], "o-")
        ax[1].set(xscale="log", xlabel="stored points", ylabel="bytes/point", title="disk")
        made.append(_save(fig, out, "points"))
    stores: list[tuple[str, list[dict[str, Any]], str]] = []
    if rows := result.get("series"):
        stores.append((f"Sensorbase ({store})", rows, "o-"))
    if (peer := result.get("series_victoria")) and peer["rows"]:
        stores.append((peer["name"], peer["rows"], "s--"))
    if stores:
        fig, ax = plt.subplots(2, 2, figsize=(11, 8))
        for name, rows, style in stores:
            x = [r["series"] for r in rows]
            # (a store told by its line style; a figure by its colour, the same in both)
            lines = {
                (0, 0, "series known", "C0"): [r["ingest_points_per_s"] for r in rows],
                (0, 0, "creating them", "C1"): [r["creating_points_per_s"] for r in rows],
                (0, 1, "server", "C0"): [r["rss_peak_bytes"]["server"] / 2**20 for r in rows],
                (0, 1, "helpers", "C1"): [r["rss_peak_bytes"]["helpers"] / 2**20 for r in rows],
                (1, 0, "stopped, caches apart", "C0"): [
                    r["disk"].get("store_bytes_per_point", r["disk"]["bytes_per_point"])
                    for r in rows
                ],
            }
            if "disk_force_merged" in rows[0]:
                lines[1, 0, "force-merged", "C2"] = [
                    r["disk_force_merged"]["store_bytes_per_point"] for r in rows
                ]
            for (i, j, what, colour), ys in lines.items():
                if any(ys):
                    ax[i][j].plot(x, ys, style, color=colour, label=f"{name}: {what}")
            for n, r in enumerate(rows):
                got = [p for p in r["samples"] if p["read_ms"]]
                ax[1][1].plot([p["t_s"] for p in got], [p["read_ms"] for p in got], style[0],
                              color=f"C{n}", label=f"{name}: {r['series']:,}")  # fmt: skip
        ax[0][0].set(xscale="log", xlabel="series", ylabel="points/s", title="ingest")
        ax[0][1].set(xscale="log", xlabel="series", ylabel="MiB", title="peak RSS")
        ax[1][0].set(
            xscale="log", yscale="log", xlabel="series", ylabel="bytes/point", title="disk"
        )
        ax[1][1].axhline(20, color="grey", lw=0.5)
        ax[1][1].set(yscale="log", xlabel="s since ingest began", ylabel="ms",
                     title="one-series read, during and after ingest")  # fmt: skip
        for a in (ax[0][0], ax[0][1], ax[1][0], ax[1][1]):
            a.legend(fontsize="small")
        made.append(_save(fig, out, "series"))
    return made


def _save(fig: Any, out: Path, name: str) -> Path:
    path = out.with_name(f"{out.stem}-{name}.png")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(*plot(json.loads(Path(name).read_text()), Path(name)), sep="\n")
