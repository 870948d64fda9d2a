"""The bench's report: one table of figures, goals and verdicts."""

from __future__ import annotations

import os

from .common import (
    GOAL_BROWSER_P95_MS,
    GOAL_KB_PER_IDLE_STREAM,
    GOAL_KB_PER_STREAM,
    GOAL_P50_MS,
    GOAL_P99_MS,
    GOAL_STREAMS,
    HEARTBEAT_EVERY,
    percentile,
)
from .load import Latency

# -- report ---------------------------------------------------------------------------------


def fmt(value, digits=1, unit="") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []

    def section(self, title: str) -> None:
        self.rows.append((f"[{title}]", "", "", ""))

    def add(self, name: str, value: str, goal: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        self.rows.append((name, value, goal, verdict))

    def print(self) -> None:
        widths = [max(len(r[i]) for r in self.rows) for i in range(4)]
        widths = [
            max(w, len(h)) for w, h in zip(widths, ("figure", "value", "goal", ""), strict=True)
        ]
        line = "  ".join("-" * w for w in widths)
        print(line)
        print(
            "  ".join(
                h.ljust(w)
                for h, w in zip(("figure", "value", "goal", "verdict"), widths, strict=True)
            )
        )
        print(line)
        for row in self.rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        print(line)


def quartet(values: list[float]) -> str:
    if not values:
        return "-"
    return " / ".join(f"{percentile(values, q):.1f}" for q in (50, 95, 99)) + (
        f" / {max(values):.1f} ms"
    )


def latency_rows(table: Table, lat: Latency, goals: bool) -> None:
    """p50/p95/p99/max on one line; with goals, p50 and p99 and delivery get verdicts."""
    table.add(f"{lat.name}", quartet(lat.values_ms))
    if lat.at:
        seconds: dict[int, list[float]] = {}
        start = min(lat.at)
        for at, value in zip(lat.at, lat.values_ms, strict=True):
            seconds.setdefault(int(at - start), []).append(value)
        p99s = sorted(percentile(v, 99) for v in seconds.values() if len(v) >= 10)
        if p99s:
            table.add(
                "    p99 of each second: median / worst",
                f"{percentile(p99s, 50):.1f} / {p99s[-1]:.1f} ms ({len(p99s)} seconds)",
            )
    table.add(
        "    events received / expected",
        f"{lat.received} / {lat.expected}",
        "all" if goals else "",
        (lat.expected > 0 and lat.received == lat.expected) if goals else None,
    )
    if goals:
        p50, p99 = lat.q(50), lat.q(99)
        table.add(
            "    p50",
            fmt(p50, 1, " ms"),
            f"<= {GOAL_P50_MS:g} ms",
            p50 is not None and p50 <= GOAL_P50_MS,
        )
        table.add(
            "    p99",
            fmt(p99, 1, " ms"),
            f"<= {GOAL_P99_MS:g} ms",
            p99 is not None and p99 <= GOAL_P99_MS,
        )


def load_rows(table: Table, name: str, result: dict, events: int) -> None:
    load, published = result["load"], result["published"]
    table.add(f"  {name}: CPU while publishing (cores)", load.describe())
    others = max(0.0, load.machine - load.ours) / load.seconds
    table.add(
        f"  {name}: machine busy / not the bench's processes (others, kernel)",
        f"{load.machine / load.seconds:.2f} / {others:.2f} cores"
        + ("  << other work competed: latencies inflated" if others > 0.5 else ""),
    )
    table.add(
        f"  {name}: publishes / lateness p99 vs schedule",
        f"{len(published.records)} in {published.seconds:.1f} s / "
        f"{(percentile(published.late, 99) or 0) * 1000:.1f} ms",
    )
    if load.worker is not None and events:
        per = load.worker * 1000 / events
        table.add(
            f"  {name}: worker CPU per event delivered",
            f"{per:.2f} ms (one worker saturates near {1000 / per:,.0f} events/s)",
        )


def report(args, cap, cap_user, cap_floor, prod, floor_alone, fsse, web, loadavg: str) -> None:
    table = Table()
    table.section(f"machine: {os.cpu_count()} cores, load average at start {loadavg}")
    if cap:
        table.section(
            f"1. capacity: one gevent worker, {args.streams} streams over "
            f"{min(args.sessions, args.streams)} sessions"
        )
        got = cap["opened"]["snapshots"]
        goal = min(args.streams, GOAL_STREAMS)
        table.add(
            "streams open that received the snapshot",
            f"{got} / {args.streams}",
            f">= {goal}",
            got >= goal,
        )
        table.add(
            "  open when measured: server gauge / client at stop",
            f"{cap['gauge']} (incl. 5 warm-up) / {cap['stop']['open_at_stop']}",
        )
        table.add("  update round: events received / sent", "{} / {}".format(*cap["round"]))
        errors = {**cap["opened"]["errors"], **cap["stop"]["errors"]}
        if errors:
            table.add("  client errors", ", ".join(f"{k}: {v}" for k, v in errors.items()))
        table.add(
            "  time to open them all / worker CPU per stream opened",
            f"{cap['opened']['seconds']:.1f} s / {cap['cpu_open'] * 1000 / max(got, 1):.2f} ms",
        )
        table.add("  Redis connections (all clients) while held", str(cap["redis_clients"]))
        table.add("  worker still the same process", str(cap["worker_survived"]))
        if cap["gc"]:
            g = cap["gc"]
            table.add(
                "  worker garbage collections while opening and holding",
                f"{g['count']}, {g['full']} full; longest full {g['full_max']:.0f} ms, "
                f"{g['total'] * 1000:.0f} ms in all",
            )
        mb = [cap["before_kb"], cap["half_kb"], cap["opened_kb"], cap["after_kb"]]
        label = "worker RSS: before / half, updated / all open / all, updated"
        if cap["idle_kb"]:
            mb.append(cap["idle_kb"])
            label += " / idle"
        table.add(label, " / ".join(f"{v / 1024:.0f}" for v in mb) + " MB")
        per = (cap["after_kb"] - cap["before_kb"]) / max(got, 1)
        table.add(
            "memory per stream (each just past an update)",
            fmt(per, 1, " KB"),
            f"<= {GOAL_KB_PER_STREAM:g} KB",
            per <= GOAL_KB_PER_STREAM,
        )
        slope = (cap["after_kb"] - cap["half_kb"]) / max(got - cap["half"], 1)
        table.add(f"  marginal: streams {cap['half']} -> {got}", fmt(slope, 1, " KB"))
        if cap["idle_kb"]:
            table.add(
                "  memory per stream once idle (last write a heartbeat)",
                fmt((cap["idle_kb"] - cap["before_kb"]) / max(got, 1), 1, " KB"),
            )
    if cap_user:
        got = cap_user["opened"]["snapshots"]
        table.section(f"1b. idle dashboards: {args.streams} x GET /sync/stream, no sync running")
        table.add(
            "streams open (first heartbeat received)",
            f"{got} / {args.streams}",
            str(args.streams),
            got == args.streams,
        )
        per = (cap_user["idle_kb"] - cap_user["before_kb"]) / max(got, 1)
        table.add(
            "memory per idle stream",
            fmt(per, 1, " KB"),
            f"<= {GOAL_KB_PER_IDLE_STREAM:g} KB",
            per <= GOAL_KB_PER_IDLE_STREAM,
        )
        busy = cap_user["cpu_quiet"] / cap_user["quiet"]
        beats = got * cap_user["quiet"] / HEARTBEAT_EVERY
        table.add(
            "worker CPU while they wait: share of a core / per heartbeat",
            f"{busy * 100:.2f} % / {cap_user['cpu_quiet'] / max(beats, 1) * 1e6:.0f} us",
        )
    if cap_floor:
        got = cap_floor["opened"]["snapshots"]
        table.add(
            "floor: bare WSGI generator, same worker (bench/sse_floor_app.py)",
            f"{got} streams, "
            f"{(cap_floor['after_kb'] - cap_floor['before_kb']) / max(got, 1):.1f} KB "
            f"per stream, {cap_floor['opened']['seconds']:.1f} s to open",
        )
    if prod or fsse:
        table.section(
            f"2. latency: {args.sessions} sessions x 1 update/s x {args.seconds} s "
            "(p50 / p95 / p99 / max)"
        )
    if prod:
        table.add(
            "expense_sync streams open (snapshot received)",
            f"{prod['opened']['snapshots']} / {args.sessions}",
        )
        load_rows(table, "expense_sync", prod, prod["hires"].received)
        latency_rows(table, prod["ms"], True)
        latency_rows(table, prod["hires"], False)
        latency_rows(table, prod["excess"], False)
        if prod["gc"]:
            g = prod["gc"]
            table.add(
                "  worker garbage collections during the run (gc.callbacks)",
                f"{g['count']}, {g['full']} full; longest {g['max']:.1f} ms, longest "
                f"full {g['full_max']:.1f} ms, {g['total'] * 1000:.0f} ms in all",
            )
    if fsse:
        table.add("Flask-SSE streams subscribed", f"{fsse['subscribed']} / {args.sessions}")
        load_rows(table, "Flask-SSE", fsse, fsse["lat"].received)
        latency_rows(table, fsse["lat"], False)
    if prod:
        latency_rows(table, prod["floor"], False)
    if floor_alone:
        load_rows(table, "floor alone", floor_alone, 0)
        latency_rows(table, floor_alone["floor"], False)
        latency_rows(table, floor_alone["floor_ms"], False)
    if web:
        table.section(f"3. browser: Chromium, {web['sent']} updates at 5/s")
        morph, cpu = web["morph"], web["morph_cpu"]
        table.add(
            "updates applied / published",
            f"{len(morph)} / {web['sent']}",
            "all",
            len(morph) >= web["sent"],
        )
        table.add(
            "swap + style + layout, wall (performance.now): p50 / p95",
            f"{fmt(percentile(morph, 50), 2)} / {fmt(percentile(morph, 95), 2)} ms",
        )
        p95 = percentile(morph, 95)
        table.add(
            "  p95 wall",
            fmt(p95, 2, " ms"),
            f"<= {GOAL_BROWSER_P95_MS:g} ms",
            p95 is not None and p95 <= GOAL_BROWSER_P95_MS,
        )
        table.add(
            "swap + style + layout, main-thread CPU (trace): p50 / p95",
            f"{fmt(percentile(cpu, 50), 2)} / {fmt(percentile(cpu, 95), 2)} ms "
            f"({len(cpu)} updates)",
        )
        p95 = percentile(cpu, 95)
        table.add(
            "  p95 CPU",
            fmt(p95, 2, " ms"),
            f"<= {GOAL_BROWSER_P95_MS:g} ms",
            p95 is not None and p95 <= GOAL_BROWSER_P95_MS,
        )
        table.add(
            "whole update (message to swapped): wall p50 / p95, CPU p50 / p95",
            f"{fmt(percentile(web['apply'], 50), 2)} / "
            f"{fmt(percentile(web['apply'], 95), 2)}, "
            f"{fmt(percentile(web['apply_cpu'], 50), 2)} / "
            f"{fmt(percentile(web['apply_cpu'], 95), 2)} ms",
        )
        n = max(len(morph), 1)
        cdp = web["cdp"]
        total = (
            (cdp["ScriptDuration"] + cdp["RecalcStyleDuration"] + cdp["LayoutDuration"]) * 1000 / n
        )
        table.add(
            "CDP getMetrics per update: script + style + layout (mean)",
            f"{total:.2f} ms = {cdp['ScriptDuration'] * 1000 / n:.2f}"
            f"{' (not reported)' if not cdp['ScriptDuration'] else ''} + "
            f"{cdp['RecalcStyleDuration'] * 1000 / n:.2f} + "
            f"{cdp['LayoutDuration'] * 1000 / n:.2f}",
        )
        table.add(
            "  CDP per update: style recalcs / layouts / all main-thread tasks",
            f"{cdp['RecalcStyleCount'] / n:.1f} / {cdp['LayoutCount'] / n:.1f} / "
            f"{cdp['TaskDuration'] * 1000 / n:.2f} ms (animations included)",
        )
    table.print()
    profile = prod and prod.get("profile")
    if profile:
        print(
            f"\nworker CPU during the product latency run, py-spy ({profile['samples']} "
            "samples, idle excluded): share of samples whose stack holds\n"
            "(py-spy's own CPU competes with the run: its latency figures are disturbed)"
        )
        for name, share in profile["parts"].items():
            print(f"  {share * 100:5.1f} %  {name}")
        print("busiest functions (own time):")
        for name, share in profile["top"]:
            print(f"  {share * 100:5.1f} %  {name}")
