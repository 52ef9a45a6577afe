"""Figures out of the benchmark: percentiles, the printed table, the PNG.

Percentiles interpolate linearly between the two nearest samples (numpy's default), so the p99
of 50 orders lies between the worst and second-worst order.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

Summary = dict[str, float | int | None]


def percentile(ordered: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of an already sorted, non-empty sequence."""
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Iterable[float]) -> Summary:
    """n, mean, min, p50, p90, p99, max of ``values`` (rounded to 0.01); Nones when empty."""
    ordered = sorted(values)
    if not ordered:
        return dict.fromkeys(("mean", "min", "p50", "p90", "p99", "max"), None) | {"n": 0}
    return {
        "n": len(ordered),
        "mean": round(sum(ordered) / len(ordered), 2),
        "min": round(ordered[0], 2),
        "p50": round(percentile(ordered, 50), 2),
        "p90": round(percentile(ordered, 90), 2),
        "p99": round(percentile(ordered, 99), 2),
        "max": round(ordered[-1], 2),
    }


def _num(value: Any, width: int = 8) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:.1f}".rjust(width)
    return str(value).rjust(width)


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("MET" if ok else "MISSED")


def latency_row(
    scenario: str, what: str, s: Summary, target: str = "", ok: bool | None = None
) -> str:
    return (
        f"{scenario:<11} {what:<44}{_num(s['n'])}{_num(s['p50'])}{_num(s['p90'])}"
        f"{_num(s['p99'])}{_num(s['max'])}   {target:<16}{_verdict(ok)}"
    )


def _wrapped(label: str, text: str, indent: int = 12) -> list[str]:
    return textwrap.wrap(
        text, width=100, initial_indent=" " * indent + label, subsequent_indent=" " * (indent + 2)
    )


def _ratio_row(what: str, p50: float | None, p99: float | None) -> str:
    return f"{'ratio':<11} {what:<44}{'':>8}{_num(p50)}{'':>8}{_num(p99)}"


def table(results: dict[str, Any]) -> str:
    """The human-readable report of ``results`` (the dict also written as JSON)."""
    meta = results["meta"]
    lines = [
        f"Bangban benchmark, {meta['started']}",
        f"machine: {meta['cpus']} CPUs, Python {meta['python']}, websockets {meta['websockets']},"
        f" client frames {meta['compression']}",
        *_wrapped("server: ", meta["server"], 0),
        *_wrapped("backends: ", meta["backends"], 0),
        *_wrapped("clients: ", meta["clients"], 0),
        "latencies in ms (percentiles interpolated); clock: time.time() shared by all processes",
        "",
        f"{'scenario':<11} {'measurement':<44}{'n':>8}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}"
        f"   {'target':<16}verdict",
    ]
    fan = results.get("fanout")
    if fan:
        meets = fan["meets"]
        what = f"POST sent -> offer at LAST of {fan['agents']} agents"
        ok = meets["p50"] and meets["p99"]
        lines += [
            latency_row("fan-out", what, fan["last_agent_ms"], "p50<=30 p99<=80", ok),
            latency_row("fan-out", "POST sent -> offer, every agent", fan["per_agent_ms"]),
            latency_row("fan-out", "order created_at -> offer at LAST agent", fan["created_ms"]),
            latency_row("fan-out", "POST sent -> 201 answer", fan["post_ms"]),
            *_wrapped("setup: ", fan["setup"]),
        ]
    ceiling = results.get("ceiling")
    if ceiling:
        what = f"trigger sent -> frame at LAST of {ceiling['agents']}"
        lines += [
            latency_row("ceiling", what, ceiling["last_agent_ms"]),
            latency_row("ceiling", "trigger sent -> frame, every agent", ceiling["per_agent_ms"]),
            *_wrapped("setup: ", ceiling["setup"]),
        ]
    ratio = results.get("fanout_vs_ceiling")
    if ratio:
        lines += [
            _ratio_row("fan-out / ceiling, LAST agent (p50, p99)", *ratio["last"]),
            _ratio_row("fan-out / ceiling, every agent (p50, p99)", *ratio["per_agent"]),
        ]
    bare_fan = results.get("bare_fanout")
    if bare_fan:
        what = f"POST sent -> offer at LAST of {bare_fan['agents']} agents"
        lines += [
            latency_row("bare fan", what, bare_fan["last_agent_ms"]),
            latency_row("bare fan", "POST sent -> offer, every agent", bare_fan["per_agent_ms"]),
            latency_row("bare fan", "POST sent -> 201 answer", bare_fan["post_ms"]),
        ]
    ratio = results.get("fanout_vs_bare")
    if ratio:
        last = ratio["last"]
        ok = None if None in last else all(r <= 1.2 for r in last)
        lines += [
            _ratio_row("fan-out / bare fan-out, LAST agent (p50, p99)", *last)
            + f"   {'<=1.2x':<16}{_verdict(ok)}",
            _ratio_row("fan-out / bare fan-out, every agent (p50, p99)", *ratio["per_agent"]),
        ]
    for key, label in (("contention", "contention"), ("contention_2p", "contention2")):
        con = results.get(key)
        if con:
            lines += _contention_rows(label, con)
    thr = results.get("throughput") or {}
    if "won" in thr:
        lines += [
            f"{'throughput':<11} {'orders filed AND won, per second':<44}{_num(thr['won'])}"
            f"{_num(thr['orders_per_s'])}{'':>24}   {'>=1000/s':<16}{_verdict(thr['meets'])}",
            f"{'throughput':<11} {'orders filed (201), per second':<44}{_num(thr['filed'])}"
            f"{_num(thr['filed_per_s'])}",
            latency_row("throughput", "POST sent -> won at the claimer", thr["e2e_ms"]),
            latency_row("throughput", "POST sent -> 201 answer", thr["post_ms"]),
            latency_row("throughput", "POST sent -> offer at the claimer", thr["offer_ms"]),
            latency_row("throughput", "claim sent -> won", thr["claim_ms"]),
            *_wrapped("setup: ", thr["setup"]),
            *_wrapped(
                "",
                f"unfinished at the end of the window: {thr['backlog_at_end']}; orders won "
                f"twice: {thr['won_twice']}; claim answers: {thr['claim_results']}; HTTP "
                f"statuses: {thr['http_statuses']}",
            ),
        ]
    lines += _costs_table(thr)
    cpu = {
        name: part["cpu_percent"]
        for name, part in results.items()
        if isinstance(part, dict) and part.get("cpu_percent")
    }
    if (thr.get("bare") or {}).get("cpu_percent"):
        cpu["bare"] = thr["bare"]["cpu_percent"]  # the bare server counts as "server"
    if cpu:
        groups = ["server", "postgres", "redis", "ceiling", "clients", "bench", "other", "busy"]
        lines += [
            "",
            f"CPU during each scenario, % of one core ({meta['cpus']} cores ="
            f" {100 * (meta['cpus'] or 1)}%; 'other' = processes outside the bench)",
            f"{'scenario':<11} " + "".join(f"{g:>10}" for g in groups),
        ]
        for name, usage in cpu.items():
            values = {**usage, "busy": usage.get("machine_busy")}
            lines.append(f"{name:<11} " + "".join(_num(values.get(g), 10) for g in groups))
    server_log = results.get("server_log") or {}
    if server_log.get("lines"):
        lines += ["", f"server log: {server_log['lines']} warning/error lines; most frequent:"]
        lines += [f"  {item['count']:>6} x {item['line'][:150]}" for item in server_log["top"][:4]]
    for name, part in results.items():
        if isinstance(part, dict):
            lines += [f"note ({name}): {note}" for note in part.get("notes", [])]
    return "\n".join(lines)


COSTS = (
    ("orders_per_s", "orders filed and won per second", ">=1000/s"),
    ("server_cpu_ms_per_order", "server CPU ms per order", "<=1.3x bare"),
    ("redis_commands_per_order", "Redis commands per order", "<=10"),
    ("postgres_cpu_ms_per_order", "Postgres CPU ms per order", ""),
)


def _costs_table(thr: dict[str, Any]) -> list[str]:
    """Bangban and the bare server side by side, per order, with the ratios; then the
    scale-out runs."""
    bare = thr.get("bare") or {}
    if "orders_per_s" not in thr and "orders_per_s" not in bare:
        return []
    ratios = thr.get("vs_bare") or {}

    def num(value: Any, width: int = 10) -> str:
        return f"{value:.2f}".rjust(width) if isinstance(value, float) else _num(value, width)

    lines = [
        "",
        f"{'throughput':<11} {'per order, over the measured window':<44}{'Bangban':>10}"
        f"{'bare':>10}{'us/bare':>10}   {'target':<16}verdict",
    ]
    for key, what, target in COSTS:
        us, floor, ratio = thr.get(key), bare.get(key), ratios.get(key)
        ok: bool | None = None
        if key == "orders_per_s" and us is not None:
            ok = us >= 1000
        elif key == "server_cpu_ms_per_order" and ratio is not None:
            ok = ratio <= 1.3
        elif key == "redis_commands_per_order" and us is not None:
            ok = us <= 10
        lines.append(
            f"{'throughput':<11} {what:<44}{num(us)}{num(floor)}{num(ratio)}"
            f"   {target:<16}{_verdict(ok)}"
        )
    for label, part in (("Bangban", thr), ("bare", bare)):
        by_name = part.get("redis_commands_per_order_by_name") or {}
        if by_name:
            top = ", ".join(f"{k} {v:g}" for k, v in list(by_name.items())[:10])
            lines += _wrapped(f"Redis per order, {label}: ", top)
    scale = thr.get("scale_out") or []
    if scale:
        lines += [
            "",
            f"{'scale-out':<11} {'processes':>9}{'orders/s':>10}{'server ms':>10}"
            f"{'Redis cmd':>10}{'PG ms':>10}   server ms per order, by process",
        ]
        for row in scale:
            each = ", ".join(
                _num(x, 0) for x in row.get("server_cpu_ms_per_order_by_process") or []
            )
            lines.append(
                f"{'scale-out':<11} {_num(row['processes'], 9)}{_num(row['orders_per_s'], 10)}"
                f"{num(row['server_cpu_ms_per_order'])}"
                f"{num(row['redis_commands_per_order'])}"
                f"{num(row['postgres_cpu_ms_per_order'])}   {each}"
            )
    return lines


def _cdf(ax: Any, values: Sequence[float], label: str, **style: Any) -> None:
    if not values:
        return
    ordered = sorted(values)
    n = len(ordered)
    ax.plot(ordered, [(i + 1) / n for i in range(n)], label=f"{label} (n={n})", **style)


def plot(raw: dict[str, Any], results: dict[str, Any], path: Path) -> None:
    """Latency distributions as CDFs, and the throughput timeline, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    (a, b), (c, d) = axes
    a.set_title("Fan-out: filing -> offer, every agent")
    _cdf(a, raw.get("fanout_per_agent", []), "Bangban", color="tab:blue")
    _cdf(a, raw.get("ceiling_per_agent", []), "bare websockets broadcast", color="tab:gray")
    _cdf(a, raw.get("bare_fanout_per_agent", []), "bare same-stack server", color="tab:olive")
    b.set_title("Fan-out: filing -> offer at the LAST agent, per order")
    _cdf(b, raw.get("fanout_last", []), "Bangban", color="tab:blue", marker=".")
    _cdf(b, raw.get("ceiling_last", []), "bare websockets broadcast", color="tab:gray", marker=".")
    _cdf(
        b, raw.get("bare_fanout_last", []), "bare same-stack server", color="tab:olive", marker="."
    )
    for ax in (a, b):
        if ax.lines:
            ax.axvline(30, color="tab:green", linestyle="--", linewidth=1, label="p50 target 30 ms")
            ax.axvline(80, color="tab:red", linestyle="--", linewidth=1, label="p99 target 80 ms")
    c.set_title("Contention: claim sent -> claim_result")
    _cdf(c, raw.get("claim_all", []), "every answer", color="black", linewidth=2)
    colours = {"won": "tab:orange", "taken": "tab:purple", "unavailable": "tab:red"}
    for outcome, values in sorted(raw.get("claim_by_result", {}).items()):
        style: dict[str, Any] = {"color": colours.get(outcome), "linewidth": 1}
        if len(values) < 100:
            style["marker"] = "o"
        _cdf(c, values, f"answered {outcome!r}", **style)
    if c.lines:
        c.axvline(100, color="tab:red", linestyle="--", linewidth=1, label="p99 target 100 ms")
    for ax in (a, b, c):
        if not ax.lines:
            continue
        ax.set_xlabel("ms")
        ax.set_ylabel("fraction")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    d.set_title("Durable throughput: orders won per second")
    wins: list[float] = raw.get("throughput_wins", [])
    thr = results.get("throughput")
    if wins and thr:
        origin = raw["throughput_origin"]
        buckets: dict[int, int] = {}
        for t in wins:
            k = int((t - origin) * 4)  # quarter seconds
            buckets[k] = buckets.get(k, 0) + 1
        xs = sorted(buckets)
        d.plot(
            [k / 4 for k in xs],
            [buckets[k] * 4 for k in xs],
            color="tab:blue",
            label="won/s (250 ms buckets)",
        )
        d.axvspan(
            thr["warmup_s"],
            thr["warmup_s"] + thr["duration_s"],
            color="tab:blue",
            alpha=0.08,
            label=f"measured: {thr['orders_per_s']:.0f}/s",
        )
        d.axhline(1000, color="tab:red", linestyle="--", linewidth=1, label="target 1000/s")
        d.set_xlabel("s since the filers started")
        d.set_ylabel("orders/s")
        d.grid(alpha=0.3)
        d.legend(fontsize=8, loc="lower right")
    for ax in (a, b, c, d):
        if not ax.lines:
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
    meta = results["meta"]
    fig.suptitle(
        f"Bangban bench {meta['started']}: {meta['cpus']} CPUs, one server process,"
        f" {meta['workers']} client processes"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _contention_rows(label: str, con: dict[str, Any]) -> list[str]:
    """The rows of a contention scenario (one process, or ``contention_2p``)."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(con["results"].items()))
    return [
        latency_row(
            label,
            "claim sent -> claim_result, every answer",
            con["answer_ms"],
            "p99<=100",
            con["meets"]["p99"],
        ),
        latency_row(label, "claim sent -> claim_result, the winner", con["won_ms"]),
        f"{label:<11} {'orders with exactly one `won`':<44}{_num(con['orders'])}"
        f"{_num(con['orders_with_one_winner'])}{'':>24}   {'all':<16}"
        f"{_verdict(con['meets']['one_winner'])}",
        latency_row(label, "POST sent -> the winner's `won`", con["won_arrival_ms"]),
        latency_row(
            label,
            "POST sent -> the median loser's `taken`",
            con["median_taken_arrival_ms"],
            "won p50 first",
            con["winner_first"]["meets"],
        ),
        *_wrapped(
            "",
            f"orders whose `won` came no later than their median `taken`: "
            f"{con['orders_winner_first']} of {con['orders']}",
        ),
        *_wrapped("answers: ", f"{counts} (of {con['answers_expected']} expected)"),
        *_wrapped("setup: ", con["setup"]),
    ]
