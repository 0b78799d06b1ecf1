"""The UI at scale (issue 14), measured in headless Chromium (Playwright, /usr/bin/chromium):

    python bench/ui_scale.py --tasks 1000000 --luigi-tasks 100000

For each daemon and size (ours at --tasks; luigi and ours at --luigi-tasks, from the same
luigi-written state; 0 skips), from a state file written by that size's scheduler
(bench/ui_state.py: bench/workload.py's pipelines plus failures, disables and a
5,000-task DAG):

* time to first useful paint of the task list, from navigation start: every status count
  a number (no "?"), family counts, and rows in the table (--paints samples, fresh page each);
* the 5,000-task DAG's graph: navigation start to every node drawn, and the frame times
  while its view is panned 90 frames (our page's layout runs in a Web Worker; its own
  layout and SVG-building times are read off the page);
* get_work p50/p99 of a worker looping get_work -> add_task(DONE), first with no browser
  (--seconds), then while 5 headless browsers (--browsers) keep the task list open, each on
  another view, refreshing itself every 10 s as the page does (--poll-every N also presses
  refresh every N seconds); only for ours, and for luigi with --luigi-fleet.

Prints a Markdown table (the one in docs/performance.md, "The UI at scale") and writes
bench/results/ui-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.daemon import LUIGI_TEMPLATE, OURS_TEMPLATE, Daemon, DaemonSpec, ensure_luigi_venv  # noqa: E402
from bench.ui_state import DISABLED_EVERY, FAILED_EVERY, GRAPH_NODES, GRAPH_ROOT, build_state  # noqa: E402
from bench.wire import RpcClient, RpcError  # noqa: E402
from bench.workload import PIPELINE_SIZE, add_task_pending, pipeline  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
OURS_PAGE = "static/visualiser/index.html"
LUIGI_PAGE = "static/visualiser/index.html"
PROBE_WORKER = "Worker(salt=000000000, workers=1, host=bench-ui, username=bench, pid=10000)"

# Each is polled every animation frame and records, once, when it first held.
USEFUL = {
    "ours": """() => {
      const nums = [...document.querySelectorAll('.count-box .count-number')].map(e => e.textContent);
      const ok = nums.length === 9 && nums.every(t => /^[0-9,]+$/.test(t))
        && document.querySelectorAll('#family-list .family-count').length > 0
        && document.querySelectorAll('#task-table tr.task-row').length > 0;
      if (ok && window.__at === undefined) window.__at = performance.now();
      return ok;
    }""",
    "luigi": """() => {
      const nums = [...document.querySelectorAll('.status-info .info-box-number')]
        .map(e => e.textContent.trim());
      const ok = nums.length === 8 && nums.every(t => t !== '?' && t !== '')
        && document.querySelectorAll('#familySidebar li').length > 0
        && document.querySelectorAll('#taskTable tbody tr td:not(.dataTables_empty)').length > 0;
      if (ok && window.__at === undefined) window.__at = performance.now();
      return ok;
    }""",
}
DRAWN = {
    "ours": f"""() => {{
      const ok = document.querySelectorAll('#graph-svg g.node').length === {GRAPH_NODES};
      if (ok && window.__at === undefined) window.__at = performance.now();
      return ok;
    }}""",
    "luigi": f"""() => {{
      const ok = document.querySelectorAll('svg g.node').length >= {GRAPH_NODES};
      if (ok && window.__at === undefined) window.__at = performance.now();
      return ok;
    }}""",
}
GRAPH_URL = {"ours": f"#tab=graph&task={GRAPH_ROOT}", "luigi": f"#tab=graph&taskId={GRAPH_ROOT}"}
SCROLLER = {"ours": "#graph-scroll", "luigi": "#graphContainer"}
PAN = """async (selector) => {
  const el = document.querySelector(selector) || document.scrollingElement;
  const gaps = [];
  let last = performance.now();
  for (let i = 0; i < 90; i++) {
    el.scrollLeft += 40;
    el.scrollTop += 15;
    await new Promise((r) => requestAnimationFrame(r));
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }
  gaps.sort((a, b) => a - b);
  return {p50: gaps[45], p95: gaps[85], max: gaps[89]};
}"""
FLEET_VIEWS = [
    "",
    "status=PENDING",
    "status=FAILED,UPSTREAM_FAILED",
    "status=PENDING&sort=name",
    "search=p00012",
]
#: how often our page refreshes itself (luigid/web/static/visualiser/js/app.js)
PAGE_REFRESH_S = 10.0
#: pipelines whose extract tasks the probe worker schedules (as a worker does on starting)
CLAIMED_PIPELINES = 6000


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]  # nearest rank


def ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def paint_times(browser: Any, base: str, kind: str, samples: int, timeout_s: float) -> list[float | None]:
    """Milliseconds from navigation start to the first useful paint, one fresh page each."""
    out: list[float | None] = []
    for _ in range(samples):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        try:
            page.goto(base + OURS_PAGE if kind == "ours" else base + LUIGI_PAGE, wait_until="commit")
            page.wait_for_function(USEFUL[kind], polling="raf", timeout=timeout_s * 1000)
            out.append(page.evaluate("window.__at"))
        except Exception as exc:  # a timeout: the page never became useful
            print(f"[ui] {kind}: no useful paint within {timeout_s:.0f} s ({type(exc).__name__})", flush=True)
            out.append(None)
        finally:
            context.close()
    return out


def graph_times(browser: Any, base: str, kind: str, samples: int, timeout_s: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _ in range(samples):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        try:
            page.goto(base + OURS_PAGE + GRAPH_URL[kind], wait_until="commit")
            page.wait_for_function(DRAWN[kind], polling="raf", timeout=timeout_s * 1000)
            row: dict[str, Any] = {"drawn_ms": page.evaluate("window.__at")}
            if kind == "ours":
                row["layout_ms"] = float(page.get_attribute("#graph-scroll", "data-layout-ms") or "nan")
                row["svg_ms"] = float(page.get_attribute("#graph-scroll", "data-draw-ms") or "nan")
            row["pan"] = page.evaluate(PAN, SCROLLER[kind])
            out.append(row)
        except Exception as exc:
            print(f"[ui] {kind}: graph not drawn within {timeout_s:.0f} s ({type(exc).__name__})", flush=True)
            out.append({"drawn_ms": None})
        finally:
            context.close()
    return out


class GetWorkProbe(threading.Thread):
    """A worker looping get_work -> add_task(DONE), timing each get_work."""

    def __init__(self, port: int, worker: str) -> None:
        super().__init__(daemon=True)
        self.client = RpcClient(port, timeout=120)
        self.worker = worker
        self.latencies: list[float] = []
        self.errors = 0
        self.handed_out = 0
        self.stop = threading.Event()

    def run(self) -> None:
        args = {"worker": self.worker, "host": "bench-ui", "assistant": False, "current_tasks": None}
        while not self.stop.is_set():
            try:
                seconds, reply = self.client.timed_call("get_work", args)
                self.latencies.append(seconds * 1000)
                task_id = (reply or {}).get("task_id")
                if task_id:
                    self.handed_out += 1
                    self.client.call(
                        "add_task", {"worker": self.worker, "task_id": task_id, "status": "DONE"}
                    )
            except RpcError:
                self.errors += 1
            time.sleep(0.005)
        self.client.close()


def claim(port: int, tasks: int) -> int:
    """Have the probe worker add (PENDING, runnable) the extract tasks of the first pipelines,
    as a luigi worker does on starting: the state's own workers are long gone (pruned after
    worker_disconnect_delay), so their tasks have no runner left. Pipelines with a failed or
    disabled extract are left alone. Returns how many tasks it added."""
    client = RpcClient(port, timeout=120)
    added = 0
    for index in range(min(CLAIMED_PIPELINES, tasks // PIPELINE_SIZE)):
        if index % FAILED_EVERY == 0 or index % DISABLED_EVERY == 1:
            continue
        for task in pipeline(index, PROBE_WORKER):
            if task.family == "ExtractShard":
                client.call("add_task", add_task_pending(task))
                added += 1
    client.close()
    return added


def get_work_phase(port: int, seconds: float) -> dict[str, Any]:
    probe = GetWorkProbe(port, PROBE_WORKER)
    probe.start()
    time.sleep(seconds)
    return _stopped(probe)


def _stopped(probe: Any) -> dict[str, Any]:
    """Stop a get_work probe and summarise what it saw."""
    probe.stop.set()
    probe.join(timeout=120)
    lat = probe.latencies
    return {
        "calls": len(lat),
        "tasks_handed_out": probe.handed_out,
        "errors": probe.errors,
        "p50_ms": ms(percentile(lat, 50)),
        "p99_ms": ms(percentile(lat, 99)),
        "max_ms": ms(max(lat) if lat else None),
    }


def fleet(pw: Any, base: str, kind: str, browsers: int, seconds: float, poll_every: float) -> dict[str, Any]:
    """get_work while ``browsers`` headless browsers keep the task list open and refresh it."""
    opened = []
    try:
        for i in range(browsers):
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            view = FLEET_VIEWS[i % len(FLEET_VIEWS)]
            page.goto(base + OURS_PAGE + (f"#{view}" if view and kind == "ours" else ""), wait_until="commit")
            opened.append((browser, page))
        late = 0
        for _, page in opened:
            try:
                page.wait_for_function(USEFUL[kind], polling=500, timeout=300_000)
            except Exception:  # measured anyway: a page still loading is polling too
                late += 1
        probe = GetWorkProbe(int(base.rsplit(":", 1)[1].strip("/")), PROBE_WORKER)
        probe.start()
        end = time.monotonic() + seconds
        refreshes = 0
        if not poll_every and kind == "luigi":
            poll_every = (
                PAGE_REFRESH_S  # luigi's page never refreshes itself: reload it as often as ours refreshes
            )
        while time.monotonic() < end:
            if not poll_every:  # our pages refresh themselves every 10 s
                time.sleep(max(0.0, end - time.monotonic()))
                break
            for _, page in opened:
                # what pressing the page's refresh button does, without Playwright's waits
                if kind == "ours":
                    page.evaluate("document.querySelector('#refresh-now').click()")
                else:  # a reload, as a reader of luigi's page presses F5
                    page.reload(wait_until="commit", timeout=120_000)
                refreshes += 1
            time.sleep(max(0.0, min(poll_every, end - time.monotonic())))
        return {
            "browsers": browsers,
            "not_useful_within_300_s": late,
            "refreshes": refreshes,
            **_stopped(probe),
        }
    finally:
        for browser, _ in opened:
            browser.close()


def measure(
    pw: Any,
    spec: DaemonSpec,
    state: Path,
    workdir: Path,
    venv: Path,
    args: argparse.Namespace,
    with_fleet: bool,
) -> dict[str, Any]:
    rundir = workdir / f"{spec.name}-{int(time.time() * 1000)}"
    rundir.mkdir()
    daemon = Daemon(spec, rundir, venv)
    shutil.copy(state, daemon.state_path)
    daemon.start()
    result: dict[str, Any] = {"daemon": spec.name}
    try:
        result["ready_s"] = round(daemon.wait_ready(timeout=1800), 1)
        result["rss_mb_loaded"] = round(daemon.rss_bytes() / 2**20)
        base = f"http://127.0.0.1:{daemon.port}/"
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            print(f"[ui] {spec.name}: first useful paint ...", flush=True)
            paints = paint_times(browser, base, spec.name, args.paints, args.page_timeout)
            result["paint_ms"] = [ms(p) for p in paints]
            print(f"[ui] {spec.name}: paints {result['paint_ms']}; graph ...", flush=True)
            graphs = args.luigi_graphs if spec.name == "luigi" else args.graphs
            result["graph"] = graph_times(browser, base, spec.name, graphs, args.page_timeout)
            print(f"[ui] {spec.name}: graph {result['graph']}", flush=True)
        finally:
            browser.close()
        if with_fleet:
            result["probe_claimed"] = claim(daemon.port, args.luigi_tasks if spec.name == "luigi" else 10**9)
            print(f"[ui] {spec.name}: get_work alone for {args.seconds:.0f} s ...", flush=True)
            result["get_work_alone"] = get_work_phase(daemon.port, args.seconds)
            print(
                f"[ui] {spec.name}: {result['get_work_alone']}; with {args.browsers} browsers ...", flush=True
            )
            try:
                result["get_work_fleet"] = fleet(
                    pw, base, spec.name, args.browsers, args.seconds, args.poll_every
                )
            except Exception as exc:
                result["fleet_error"] = f"{type(exc).__name__}: {exc}"[:500]
            print(
                f"[ui] {spec.name}: {result.get('get_work_fleet') or result.get('fleet_error')}", flush=True
            )
        result["rss_mb_end"] = round(daemon.rss_bytes() / 2**20)
    finally:
        daemon.terminate(timeout=600)
        daemon.kill()
    result.update(daemon.logged_stalls())
    # the daemon's own warnings (stalls over 50 ms, slow requests), for where a stall came from
    log = daemon.logdir / "luigi-server.log"
    if log.exists():
        result["warnings"] = [
            line for line in log.read_text(errors="replace").splitlines() if "WARNING" in line
        ][:40]
    return result


def _cell(values: list[Any]) -> str:
    got = [v for v in values if v is not None]
    if not values:
        return "-"  # not measured
    if not got:
        return "never (timed out)"
    text = f"{statistics.median(got):,.0f} ms"
    if len(got) < len(values):
        text += f" ({len(values) - len(got)} of {len(values)} timed out)"
    return text


def table(rows: list[dict[str, Any]]) -> str:
    head = "| | " + " | ".join(f"{r['daemon']} at {r['tasks']:,}" for r in rows) + " |"
    lines = [head, "|---|" + "---|" * len(rows)]

    def line(label: str, cell: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in rows) + " |")

    line("ready after start (state file load)", lambda r: f"{r.get('ready_s', '?')} s")
    line("first useful paint, median", lambda r: _cell(r.get("paint_ms", [])))
    line(
        "first useful paint, slowest",
        lambda r: (
            f"{max(v for v in r['paint_ms'] if v is not None):,.0f} ms"
            if any(v is not None for v in r.get("paint_ms", []))
            else "never (timed out)"
        ),
    )
    line(
        f"{GRAPH_NODES:,}-task graph drawn, median",
        lambda r: _cell([g.get("drawn_ms") for g in r.get("graph", [])]),
    )
    line(
        "... of which layout (Web Worker) / building the SVG",
        lambda r: (
            " / ".join(
                f"{statistics.median(v):,.0f} ms"
                for v in (
                    [g[k] for g in r.get("graph", []) if g.get(k) is not None]
                    for k in ("layout_ms", "svg_ms")
                )
                if v
            )
            or "-"
        ),
    )
    line(
        "panning the graph: frame time p50 / p95 / max",
        lambda r: (
            " / ".join(
                f"{statistics.median(g['pan'][k] for g in r['graph'] if 'pan' in g):.0f}"
                for k in ("p50", "p95", "max")
            )
            + " ms"
            if any("pan" in g for g in r.get("graph", []))
            else "-"
        ),
    )

    def work(key: str) -> Any:
        def cell(r: dict[str, Any]) -> str:
            w = r.get(key)
            if not w:
                return "-"
            browsers = f", {w['browsers']} browsers" if "browsers" in w else ""
            return f"{w['p50_ms']} / {w['p99_ms']} ms ({w['calls']:,} calls{browsers}; max {w['max_ms']} ms)"

        return cell

    line("get_work p50 / p99, no browser", work("get_work_alone"))
    line("get_work p50 / p99, browsers polling the task list", work("get_work_fleet"))
    line(
        "longest event-loop stall (own monitor) / of it on the loop's CPU",
        lambda r: (
            f"{r['loop_stall_max_ms']} / {r['loop_stall_on_cpu_max_ms']} ms"
            if r.get("loop_stall_max_ms") is not None
            else "-"
        ),
    )
    line(
        "RSS loaded / at the end", lambda r: f"{r.get('rss_mb_loaded', '?')} / {r.get('rss_mb_end', '?')} MB"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1_000_000, help="ours alone at this size (0: skip)")
    parser.add_argument(
        "--luigi-tasks", type=int, default=100_000, help="luigi and ours at this size (0: skip)"
    )
    parser.add_argument("--paints", type=int, default=5)
    parser.add_argument("--graphs", type=int, default=3)
    parser.add_argument(
        "--luigi-graphs", type=int, default=1, help="luigi's page takes minutes per graph, if it draws"
    )
    parser.add_argument("--page-timeout", type=float, default=120.0, help="seconds a page may take")
    parser.add_argument("--browsers", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0, help="each get_work phase")
    parser.add_argument(
        "--poll-every",
        type=float,
        default=0.0,
        help="also press every page's refresh button this often (seconds); 0: its own 10-s refresh only",
    )
    parser.add_argument("--luigi-fleet", action="store_true", help="also run the browser fleet against luigi")
    parser.add_argument("--luigi-venv", type=Path, default=BENCH / ".venv-luigi")
    parser.add_argument(
        "--stall-trace",
        action="store_true",
        help="start ours with [scheduler] stall_trace on, so that its log names what held the loop",
    )
    args = parser.parse_args(argv)
    ours = DaemonSpec("ours", OURS_TEMPLATE, "[scheduler]\nstall_trace = true\n" if args.stall_trace else "")

    from playwright.sync_api import sync_playwright

    env = dict(os.environ, PYTHONPATH=str(BENCH.parent))
    rows: list[dict[str, Any]] = []
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=BENCH
    )
    meta: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": "python bench/ui_scale.py " + " ".join(argv),
        "commit": commit.stdout.strip(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "loadavg_at_start": os.getloadavg(),
    }
    out = BENCH / "results" / f"ui-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)

    def save() -> None:  # after each daemon, so that a later failure loses nothing
        meta["loadavg_at_end"] = os.getloadavg()
        out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))

    with tempfile.TemporaryDirectory(prefix="luigid-ui-") as folder, sync_playwright() as pw:
        workdir = Path(folder)
        (workdir / "empty.cfg").write_text("")
        env["LUIGI_CONFIG_PATH"] = str(workdir / "empty.cfg")  # both builders on defaults
        if args.luigi_tasks:
            ensure_luigi_venv(args.luigi_venv)
            state = workdir / "luigi-state.pickle"
            print(f"[ui] luigi's Scheduler builds {args.luigi_tasks:,} tasks ...", flush=True)
            python = args.luigi_venv / "bin" / "python"
            built = build_state(python, "luigi.scheduler", state, args.luigi_tasks, env)
            for spec in (DaemonSpec("luigi", LUIGI_TEMPLATE), ours):
                with_fleet = spec.name == "ours" or args.luigi_fleet
                row = measure(pw, spec, state, workdir, args.luigi_venv, args, with_fleet)
                rows.append({"tasks": built, **row})
                save()
        if args.tasks:
            state = workdir / "ours-state.pickle"
            print(f"[ui] luigid's Scheduler builds {args.tasks:,} tasks ...", flush=True)
            built = build_state(sys.executable, "luigid.scheduler", state, args.tasks, env)
            print(f"[ui] {built:,} tasks, {state.stat().st_size / 2**20:.0f} MB state file", flush=True)
            row = measure(pw, ours, state, workdir, args.luigi_venv, args, True)
            rows.append({"tasks": built, **row})
            save()
    print(json.dumps(meta))
    print(table(rows))
    print(f"[ui] raw results: {out.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
