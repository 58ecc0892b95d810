"""docs/PERFORMANCE.md from bench/results.json: the tables, the machine, the targets, how to reproduce."""

from __future__ import annotations

import json

from common import REPO, RESULTS


def _row(name: str, s: dict | None) -> str:
    return f"| {name} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} |" if s else f"| {name} | — | — |"


def build(r: dict) -> str:
    m = r.get("machine", {})
    out = ["# Performance", "",
           f"Measured on {m.get('cpu', '?')} ({m.get('cores', '?')} cores), Python {m.get('python', '?')}, "
           f"{m.get('date', '?')}, all figures from one `make bench` run (`bench/results.json`). Reproduce with "
           "`make bench` (about 13 minutes; `make bench-quick` takes about 3). Medians and p99 of each "
           "measurement; ratios are computed within the same run.", ""]
    targets = []
    if "pipeline" in r:
        out += ["## One planning tick by stage (`bench/pipeline.py`)", "",
                f"{r['pipeline']['ticks']} ticks per grid, source grid at 0.05 m, a costmap with every tick, p50 / p99 "
                "in ms. `session.tick` is the whole tick of `PlannerSession` (`planner: onnx`); tensors, inference "
                "and safety are its stages.", "",
                "| grid | convert | set costmap | tensors | inference | safety + rollout | session.tick | messages "
                "| total |", "|---|---|---|---|---|---|---|---|---|"]
        for grid, st in r["pipeline"]["grids"].items():
            stages = ("convert", "costmap", "tensors", "inference", "safety", "tick", "messages", "total")
            cells = " | ".join(f"{st[k]['p50_ms']:.3f} / {st[k]['p99_ms']:.3f}" if k in st else "—" for k in stages)
            out.append(f"| {grid} | {cells} |")
        p99 = r["pipeline"]["grids"]["200x200"]["total"]["p99_ms"]
        targets.append(("pipeline p99 at 200×200", "< 2 ms", f"{p99:.2f} ms", p99 < 2.0))
        out.append("")
    if "inference" in r:
        out += ["## ONNX Runtime vs PyTorch eager (`bench/inference.py`)", "",
                f"Batch 1, the shipped model; the variants take turns in blocks of {r['inference'].get('block', 1)} "
                "runs, so machine drift hits all alike and each runs warm. p50 / p99 in ms.", "",
                "| threads | PyTorch | ORT disable | ORT basic | ORT extended | ORT all | speedup (p50) |",
                "|---|---|---|---|---|---|---|"]
        for th, st in r["inference"]["results"].items():
            cells = " | ".join(f"{st[k]['p50_ms']:.3f} / {st[k]['p99_ms']:.3f}"
                               for k in ("pytorch", "ort_disable", "ort_basic", "ort_extended", "ort_all"))
            out.append(f"| {th.split('_')[0]} | {cells} | {st['speedup_p50']:.1f}× |")
        sp = r["inference"]["results"]["1_thread"]["speedup_p50"]
        targets.append(("ONNX Runtime vs PyTorch, batch 1", "≥ 3×", f"{sp:.1f}×", sp >= 3.0))
        out.append("")
    if "ga_vs_nn" in r:
        g = r["ga_vs_nn"]
        out += ["## GA expert vs network (`bench/ga_vs_nn.py`)", "", "| planner | p50 ms | p99 ms |", "|---|---|---|",
                _row("GA expert", g["ga"]), _row("network (ONNX Runtime)", g["network"]), "",
                f"The network plans **{g['speedup_p50']:.0f}×** faster (p50), each planner timed in its own loop "
                "over the same inputs."]
        if "interleaved" in g:
            i = g["interleaved"]
            out += [f"Alternating the two on every input (the GA's arrays evict the network's weights from the "
                    f"cache): GA {i['ga']['p50_ms']:.2f} ms, network {i['network']['p50_ms']:.3f} ms, "
                    f"{i['speedup_p50']:.0f}×."]
        out.append("")
        targets.append(("network vs GA expert, time per plan", "≥ 100×", f"{g['speedup_p50']:.0f}×",
                        g["speedup_p50"] >= 100))
    if "hybrid" in r:
        out += hybrid_section(r["hybrid"])
    if "e2e" in r:
        e = r["e2e"]
        out += ["## Over DDS on loopback (`bench/e2e.py`)", "",
                "A planner process fed 50 Hz odometry and a 5 Hz costmap by a driver process; latency from an "
                "odometry message to the trajectory computed from it (matched by a unique pose in each message).", "",
                "| mode | rate asked | achieved | error | jitter (std) | odom→trajectory p50 / p99 | CPU of one core |",
                "|---|---|---|---|---|---|---|"]
        for st in e.values():
            if not isinstance(st, dict) or "achieved_hz" not in st:
                continue
            lat = st["odom_to_trajectory"]
            out.append(f"| {st.get('mode', 'timer')} | {st['frequency_hz']:g} Hz | {st['achieved_hz']:.2f} Hz | "
                       f"{100 * st['rate_error']:+.2f}% | {st['jitter_ms_std']:.1f} ms | "
                       f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} ms | {100 * st['cpu_share_of_one_core']:.1f}% |")
        out += ["", f"Highest sustained planning rate (within 5%): **{e['highest_sustained_hz']:.0f} Hz**.", ""]
        t20 = e.get("20Hz", {})
        o20 = e.get("20Hz_odometry", t20)
        if t20:
            targets.append(("achieved rate at 20 Hz", "within 1%", f"{100 * t20['rate_error']:+.2f}%",
                            abs(t20["rate_error"]) <= 0.01))
            targets.append(("node CPU at 20 Hz", "< 10% of a core", f"{100 * t20['cpu_share_of_one_core']:.1f}%",
                            t20["cpu_share_of_one_core"] < 0.10))
            lat = o20["odom_to_trajectory"]["p99_ms"]
            targets.append(("odometry → trajectory p99 (plan_on_odometry)", "< 10 ms", f"{lat:.1f} ms", lat < 10))
        targets.append(("sustained planning rate", "≥ 200 Hz", f"{e['highest_sustained_hz']:.0f} Hz",
                        e["highest_sustained_hz"] >= 200))
    if "cpu" in r:
        c = r["cpu"]
        load = " → ".join(f"{x:.1f}" for x in c.get("load_average", []))
        out += ["## CPU against a do-nothing node (`bench/cpu.py`)", "",
                "The planner (shipped model, default parameters: 20 Hz, `planner: hybrid`) and a do-nothing rclpy "
                "node with the same subscriptions (same QoS) and publications (same rates, constant messages of the "
                "same sizes) run side by side, fed by one driver (odometry 50 Hz, a free 6 m costmap at 0.05 m at "
                "5 Hz, a goal never reached); the driver subscribes to the same outputs of both. CPU is user + system "
                f"time per process over {len(c['windows'])} windows of {c['window_s']:g} s; medians.", "",
                "| planner | do-nothing node | ratio (median of windows) | plans/s | load average |",
                "|---|---|---|---|---|",
                f"| {100 * c['planner_cpu']:.1f}% | {100 * c['baseline_cpu']:.1f}% | **{c['ratio']:.2f}×** | "
                f"{c['planner_plans_hz']:.1f} | {load} |", ""]
        targets.append(("node CPU vs a do-nothing node at 20 Hz", "≤ 1.3×", f"{c['ratio']:.2f}×", c["ratio"] <= 1.3))
    if "soak" in r:
        s = r["soak"]
        out += ["## Soak (`bench/soak.py`)", "",
                f"{s['minutes']:g} minutes at 20 Hz with inputs streaming: resident memory "
                f"{s['rss_after_warmup_mb']:.1f} MB after warm-up, largest growth after that "
                f"**{s['growth_mb']:.2f} MB**; {s['plans_per_s']:.2f} plans/s.",
                ""]
        targets.append(("memory growth in the soak", "< 5 MB", f"{s['growth_mb']:.2f} MB", s["growth_mb"] < 5))
    if "scaling" in r:
        out += scaling_section(r["scaling"])
        ratio = r["scaling"]["dask_vs_local_2"]
        targets.append(("Dask vs local processes, episodes/s on 2 workers", "≥ 85%", f"{ratio:.0%}", ratio >= 0.85))
    out += ["## Targets", "", "| target | wanted | measured | met |", "|---|---|---|---|"]
    out += [f"| {n} | {w} | {v} | {'yes' if ok else '**no**'} |" for n, w, v, ok in targets]
    return "\n".join(out) + "\n"


def hybrid_section(h: dict) -> list[str]:
    """The cost of a `planner: hybrid` tick by kind of tick, in held-out episodes (bench/hybrid.py)."""
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(h.get("outcomes", {}).items()))
    rows = [*h["kinds"].items(), *([("all executing", h["all"])] if h.get("all") else []),
            *([("stopped (planned, nothing executed)", h["stopped"])] if h.get("stopped") else [])]
    out = ["## Hybrid ticks by kind (`bench/hybrid.py`)", "",
           f"{h['episodes']} held-out episodes of `make train`'s config (seeds from {h['seed_base']}; {outcomes}) "
           f"in `planner: hybrid` with the shipped model at {h['rate_hz']:g} Hz, a period of {h['period_ms']:.0f} ms. "
           "The whole `PlannerSession.tick` of every tick that planned, by kind: the network alone; a comparison "
           "(the GA planned beside the network, whose plan was executed) every `fallback_compare_period`, or every "
           "tick once the goal is within one plan's reach (final approach); the GA fallback driving (with the tick "
           "a comparison takes over); a recovery. A comparison's GA starts cold (no warm start after the network "
           "drove). Share: of the executing ticks; > period: the share of ticks longer than the planning period.", "",
           "| tick | ticks | share | p50 ms | p99 ms | max ms | > period | GA p50 ms | cold GA |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name, s in rows:
        ga = f"{s['ga']['p50_ms']:.2f}" if "ga" in s else "—"
        out.append(f"| {name} | {s['ticks']} | {100 * s['share']:.1f}% | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
                   f"{s['max_ms']:.2f} | {100 * s['over_period']:.1f}% | {ga} | {s['cold']} |")
    if h.get("all"):
        a = h["all"]
        out += ["", f"Over all executing ticks: p95 {a['p95_ms']:.1f} ms, {100 * a['over_period']:.1f}% longer than "
                f"the period (the node WARNs when the p95 passes `compute_warn_fraction`, 50% of the period by "
                "default, and stops the robot past `max_tick_time`)."]
    out.append("")
    return out


def scaling_section(s: dict) -> list[str]:
    """Episode throughput on 1 and 2 local workers and on Dask (bench/scaling.py)."""
    names = {"local_1": "local, 1 worker (in process)", "local_2": "local, 2 worker processes",
             "dask_2": "Dask LocalCluster, 2 workers"}
    one = s["runs"]["local_1"]["episodes_per_s"]
    rows = [f"| {names[k]} | {v['episodes_per_s']:.3f} | {v['wall_s']:.1f} | {v['episodes_per_s'] / one:.2f}× | "
            f"`{v['content_hash'][:12]}` |" for k, v in s["runs"].items()]
    m, mach = s["marginal_task_ms"], s.get("machine", {})
    episode_ms = 1e3 / one  # one episode on one worker
    out = ["## Episodes in parallel: local processes and Dask (`bench/scaling.py`)", "",
            f"{s['episodes']} GA episodes of `make train`'s dataset (seeds 0–{s['episodes'] - 1}, at most "
            f"{s['max_time_s']:g} s each) through `dataset.generate`, shards written by the caller; measured on "
            f"{mach.get('cpu', '?')} ({s['cores']} cores), {mach.get('date', '?')}, load average "
            f"{' → '.join(f'{x:.1f}' for x in s.get('load_average', []))} (start → end).", "",
            "| backend | episodes/s | wall s | vs 1 worker | manifest hash |", "|---|---|---|---|---|", *rows, "",
            f"Scaling efficiency on 2 workers (throughput / twice one worker's): local processes "
            f"**{s['efficiency_local_2']:.0%}**, Dask **{s['efficiency_dask_2']:.0%}**; Dask reaches "
            f"**{s['dask_vs_local_2']:.0%}** of local multiprocessing's throughput. The same seeds made the same "
            f"dataset on every backend: {'yes' if s['same_hash'] else '**no**'}. Starting the 2-worker cluster took "
            f"{s['dask_cluster_start_s']:.1f} s (once per command). One more no-op task costs {m['dask']:.2f} ms of "
            f"wall time on Dask and {m['local']:.2f} ms on the local process pool, against {episode_ms / 1e3:.1f} s "
            f"for an episode ({100 * m['dask'] / episode_ms:.2f}% of it on Dask).", ""]
    if max(s.get("load_average", [0.0])) > 0.5 * s["cores"]:
        out += [f"Other work shared the machine during this run (load average up to "
                f"{max(s['load_average']):.1f} on {s['cores']} cores), so two workers did not have two free cores: "
                "the scaling efficiencies measure the machine, not the backends. The Dask / local ratio compares "
                "runs under similar load. Rerun `bench/scaling.py` on an idle machine for the efficiency.", ""]
    return out


def main() -> None:
    r = json.loads(RESULTS.read_text())
    path = REPO / "docs" / "PERFORMANCE.md"
    path.parent.mkdir(exist_ok=True)
    text = build(r)
    notes = REPO / "docs" / "PERFORMANCE_NOTES.md"
    if notes.exists():
        text += "\n" + notes.read_text()
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
