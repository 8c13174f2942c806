"""Reports: every figure of a run and a sweep written as PNG and SVG, one self-contained
HTML page that opens in a headless browser, the figure functions on their own, bad input."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from mailnet.output import write_run
from mailnet.report import (
    attempts_figure,
    latency_figure,
    listings_figure,
    load_run,
    make_report,
    outcomes_figure,
    queue_figure,
    reasons_figure,
    reputation_figure,
    sweep_figure,
    sweep_panels_figure,
)
from mailnet.report.delivery import reply_label
from mailnet.report.inputs import kind_of
from mailnet.report.sweeps import headline_metrics, parameter_axis, swept_groups
from mailnet.report.timelines import step_means
from mailnet.scenario import Scenario, load_scenario
from mailnet.simulate import simulate
from tests.conftest import ONE_MX_TOML, one_mx_world

ROOT = Path(__file__).resolve().parent.parent
SHARED_IP = ROOT / "experiments" / "scenarios" / "shared_ip_spam.toml"
CHROMIUM = Path("/usr/bin/chromium")
RUN_FIGURES = (
    "over_time",
    "outcomes",
    "latency",
    "attempts",
    "reasons",
    "queues_mta",
    "queues_servers",
    "listings",
    "reputation",
    "domain_reputation",
)

SWEEP_BASE = ONE_MX_TOML.replace('duration = "2h"\n', 'duration = "2h"\nwarmup = "10m"\n')
SWEEP_EXPERIMENT = textwrap.dedent("""
    description = "sessions x outage repair time"
    base = "base.toml"
    replications = 3
    seed = 3
    [grid]
    'servers."mx.dest.example".sessions' = [1, 2, 4]
    [linked]
    'servers."mx.dest.example".outages.mttr' = ["5m", "20m"]
""")


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "mailnet.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Six simulated hours of the shared-IP scenario, the spammer's list holding 1 %
    UCEPROTECT traps: listings of every address and of the /24."""
    overrides = [
        "simulation.duration=6h",
        "simulation.warmup=1h",
        "blocklists.uceprotect.traps.spammer=0.01",
    ]
    scenario = load_scenario(SHARED_IP, overrides=overrides)
    result = simulate(scenario, base_dir=SHARED_IP.parent)
    assert len(result.listings)
    assert len(result.reputation)
    return write_run(result, tmp_path_factory.mktemp("report") / "run")


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """A sweep directory from ``mailnet.sweep`` (3 x 2 points, 3 replications, in process),
    or, where the sweep package is not available, the same tables made by hand."""
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "base.toml").write_text(SWEEP_BASE)
    (folder / "experiment.toml").write_text(SWEEP_EXPERIMENT)
    out = folder / "results"
    try:
        from mailnet.sweep import sweep
    except ImportError:
        return _fake_sweep(out)
    sweep(folder / "experiment.toml", workers=1, out=out, progress=False)
    return out


def _fake_sweep(out: Path) -> Path:
    out.mkdir(parents=True)
    rows = []
    for point, (sessions, mttr) in enumerate((s, m) for s in (1, 2, 4) for m in ("5m", "20m")):
        row = {
            "point": point,
            'servers."mx.dest.example".sessions': sessions,
            'servers."mx.dest.example".outages.mttr': mttr,
            "runs": 3,
            "ok": 3,
            "failed": 0,
        }
        for metric, value in (
            ("delivery_rate", 0.9 + 0.02 * sessions),
            ("bounce_rate", 0.01),
            ("latency_s.p90", 600.0 / sessions),
            ("queue_time_average.mta:isp:deferred", 3.0 / sessions),
        ):
            row.update(
                {
                    f"{metric}.mean": value,
                    f"{metric}.ci_low": value * 0.9,
                    f"{metric}.ci_high": value * 1.1,
                }
            )
        rows.append(row)
    pd.DataFrame(rows).to_parquet(out / "points.parquet")
    pd.DataFrame({"point": [0], "status": ["ok"]}).to_parquet(out / "runs.parquet")
    (out / "manifest.json").write_text(
        '{"experiment": {"grid": {"servers.\\"mx.dest.example\\".sessions": [1, 2, 4]}, '
        '"linked": {"servers.\\"mx.dest.example\\".outages.mttr": ["5m", "20m"]}}}'
    )
    return out


def _figures_in(html: str) -> dict[str, bytes]:
    """``{figure name: embedded PNG bytes}`` of a report page."""
    found = re.findall(r'<figure id="fig-([^"]+)"><img src="data:image/png;base64,([^"]+)"', html)
    return {name: base64.b64decode(data) for name, data in found}


def _check_written(out: Path, names) -> str:
    html = (out / "report.html").read_text(encoding="utf-8")
    embedded = _figures_in(html)
    for name in names:
        png, svg = out / f"{name}.png", out / f"{name}.svg"
        assert png.stat().st_size > 1000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert svg.stat().st_size > 1000, name
        assert b"<svg" in svg.read_bytes()[:2000], name
        assert embedded[name] == png.read_bytes(), name
    assert "<script" not in html.lower()
    assert not re.search(r'\s(src|href)="(https?:)?//', html), "the page must be self-contained"
    return html


# ------------------------------------------------------------------ reports


def test_run_report_writes_every_figure_and_the_page(run_dir, tmp_path):
    result = cli("report", str(run_dir), "--out", str(tmp_path / "rep"))
    assert result.returncode == 0, result.stderr
    html = _check_written(tmp_path / "rep", RUN_FIGURES)
    assert set(_figures_in(html)) == set(RUN_FIGURES)
    assert "<pre>" in html
    assert "[simulation]" in html
    assert "shared" in html
    assert "198.51.100.4" in html  # the listings table
    assert "Outcomes by sender class" in html


def test_run_report_defaults_to_a_report_folder_and_skips_empty_tables(tmp_path):
    scenario = Scenario.from_dict(one_mx_world())
    run = write_run(simulate(scenario), tmp_path / "quiet")
    page = make_report(run)
    assert page == run / "report" / "report.html"
    html = page.read_text(encoding="utf-8")
    assert "No blocklist listings in this run" in html
    assert "No reputation samples in this run" in html
    assert not (run / "report" / "listings.png").exists()
    assert not (run / "report" / "reputation.png").exists()
    _check_written(
        run / "report",
        ("outcomes", "latency", "attempts", "reasons", "queues_mta", "queues_servers"),
    )


def test_sweep_report_draws_the_headline_metrics_with_confidence_bands(sweep_dir, tmp_path):
    assert kind_of(sweep_dir) == "sweep"
    page = make_report(sweep_dir, tmp_path / "rep")
    points = pd.read_parquet(sweep_dir / "points.parquet")
    metrics = headline_metrics(points)
    assert {"delivery_rate", "bounce_rate", "latency_s.p90"} <= set(metrics)
    names = [
        f"metric_{re.sub(r'[^A-Za-z0-9]+', '_', m).strip('_')}"
        for m in metrics
        if not m.startswith("queue_time_average.")
    ] + ["metric_queue_time_average"]
    html = _check_written(page.parent, names)
    assert set(_figures_in(html)) == set(names)
    assert "servers.&quot;mx.dest.example&quot;.sessions" in html  # parameter table


def test_sweep_report_draws_chosen_metrics_only(sweep_dir, tmp_path):
    result = cli(
        "report",
        str(sweep_dir),
        "--out",
        str(tmp_path),
        "--metric",
        "latency_s.p50",
        "--metric",
        "no_such_metric",
    )
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert set(_figures_in(html)) == {"metric_latency_s_p50"}
    assert "no_such_metric" in html


@pytest.mark.parametrize("make", ["not_a_results_dir", "missing"])
def test_bad_directory_is_one_line_and_exit_code_2(tmp_path, make):
    target = tmp_path / make
    if make == "not_a_results_dir":
        target.mkdir()
        (target / "notes.txt").write_text("hello")
    result = cli("report", str(target))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(target) in lines[0]
    assert lines[0].startswith("mailnet: error:")
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------ browser


def _open_in_chromium(page: Path, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("CI") != "true",
    reason="/usr/bin/chromium is not installed (apt-get install chromium)",
)
def test_pages_open_in_headless_chromium_without_errors(run_dir, sweep_dir, tmp_path):
    for name, source in (("run", run_dir), ("sweep", sweep_dir)):
        page = make_report(source, tmp_path / name)
        html = page.read_text(encoding="utf-8")
        title = re.search(r"<title>(.*?)</title>", html).group(1)
        figures = _figures_in(html)
        shown = _open_in_chromium(page, tmp_path / f"profile-{name}")
        assert shown.returncode == 0, shown.stderr[-2000:]
        dom = shown.stdout
        assert f"<title>{title}</title>" in dom
        images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', dom)
        assert len(images) == len(figures) > 0
        for figure_name in figures:
            assert f'id="fig-{figure_name}"' in dom
        console = [line for line in shown.stderr.splitlines() if ":CONSOLE" in line]
        assert not console, console


# ------------------------------------------------------------------ figure functions


def _assert_readable(figure: Figure) -> None:
    """A title, and both axes labelled, on every panel shown (a panel sharing its y-axis
    with a labelled one counts as labelled)."""
    assert isinstance(figure, Figure)
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert figure.get_suptitle() or all(ax.get_title() for ax in axes)
    for ax in axes:
        siblings = ax.get_shared_y_axes().get_siblings(ax)
        assert any(other.get_ylabel() for other in siblings), ax.get_title()
    assert any(ax.get_xlabel() for ax in axes) or figure.get_supxlabel()


def test_run_figure_functions_take_frames_and_return_figures(run_dir):
    run = load_run(run_dir)
    figures = [
        outcomes_figure(run.messages),
        latency_figure(run.messages),
        attempts_figure(run.messages),
        reasons_figure(run.attempts, run.messages),
        queue_figure(run.queues, "mta", end=run.duration, warmup=run.warmup),
        queue_figure(run.queues, "server", end=run.duration),
        listings_figure(run.listings, end=run.duration),
        reputation_figure(run.reputation, end=run.duration, warmup=run.warmup),
    ]
    for figure in figures:
        _assert_readable(figure)
    # more than one series: a legend, and series differ in line style, not colour alone
    latency = figures[1]
    lines = [line for line in latency.axes[0].get_lines() if line.get_label()[:1] != "_"]
    assert len(lines) == 3
    assert latency.axes[0].get_legend() is not None
    assert len({line.get_linestyle() for line in lines}) == 3
    assert len({line.get_marker() for line in lines}) == 3
    assert latency.axes[0].get_xscale() == "log"
    empty = run.listings.iloc[:0]
    assert listings_figure(empty) is None
    assert reputation_figure(run.reputation.iloc[:0]) is None
    domains = reputation_figure(run.reputation, kind="domain", end=run.duration)
    _assert_readable(domains)
    assert "sending domain" in domains.get_suptitle()
    labels = {line.get_label() for line in domains.axes[0].get_lines()}
    assert "isp.example" in labels
    # a table from before domain samples: an ip column and no kind
    old = run.reputation[run.reputation["kind"] == "ip"].drop(columns="kind")
    old = old.rename(columns={"key": "ip"})
    assert reputation_figure(old) is not None
    assert reputation_figure(old, kind="domain") is None


def test_sweep_figure_puts_durations_in_hours_and_draws_a_band_per_line(sweep_dir):
    points = pd.read_parquet(sweep_dir / "points.parquet")
    figure = sweep_figure(points, "latency_s.p90", x='servers."mx.dest.example".outages.mttr')
    ax = figure.axes[0]
    _assert_readable(figure)
    assert "hours" in ax.get_xlabel()
    assert len(ax.collections) == 3  # one confidence band per value of sessions
    assert figure.legends
    assert len(figure.legends[0].get_texts()) == 3
    means = [line for line in ax.get_lines() if line.get_label()[:1] != "_"]
    assert sorted(means[0].get_xdata()) == pytest.approx([5 / 60, 20 / 60])
    panels = sweep_panels_figure(points, ["delivery_rate", "bounce_rate"])
    assert len([a for a in panels.axes if a.get_visible()]) == 2


def test_parameter_axes_numbers_durations_rates_and_categories():
    numbers = parameter_axis(pd.Series([1, 4, 2], name="sessions"))
    assert list(numbers.values) == [1, 4, 2]
    assert numbers.ticks is None
    hours = parameter_axis(pd.Series(["30m", "4h", "1d"], name="mtbf"))
    assert list(hours.values) == pytest.approx([0.5, 4, 24])
    assert "hours" in hours.label
    rates = parameter_axis(pd.Series(["20/h", "0.01"], name="rate"))
    assert list(rates.values) == pytest.approx([20, 36])
    assert "per hour" in rates.label
    names = parameter_axis(pd.Series(["round-robin", "sender-hash", "round-robin"], name="sel"))
    assert list(names.values) == [0, 1, 0]
    assert names.ticks == {0: "round-robin", 1: "sender-hash"}


def test_linked_and_constant_parameters_are_grouped():
    points = pd.DataFrame(
        {
            "a": [1, 1, 2, 2],
            "b": ["x", "y", "x", "y"],
            "c": ["1h", "2h", "1h", "2h"],
            "d": [5, 5, 5, 5],
        }
    )
    assert swept_groups(points, ["a", "b", "c", "d"]) == [["a"], ["b", "c"]]


def test_step_means_are_exact_time_weighted_averages():
    # 0 until t=1, then 2 until t=3, then 1 (two changes at t=3: the last counts)
    times = np.array([1.0, 3.0, 3.0])
    values = np.array([2.0, 5.0, 1.0])
    means = step_means(times, values, np.array([0.0, 2.0, 4.0, 6.0]))
    assert means == pytest.approx([(0 * 1 + 2 * 1) / 2, (2 * 1 + 1 * 1) / 2, 1.0])


def test_make_report_does_not_need_a_display_or_pyplot(run_dir, tmp_path):
    code = (
        "import sys; from mailnet.report import make_report; "
        f"make_report({str(run_dir)!r}, {str(tmp_path / 'report')!r}); "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_reply_labels_name_any_enhanced_code_by_rfc_3463():
    """A reply a new policy adds is labelled by its subject, without an entry of its own."""
    assert reply_label(550, "5.1.1") == "550 5.1.1 bad destination mailbox"
    assert reply_label(450, "4.7.25") == "450 4.7.25 security or policy status"
    assert reply_label(451, "4.4.3") == "451 4.4.3 directory server failure"
    assert reply_label(450, "4.2.0") == "450 4.2.0 other or undefined mailbox status"
    assert reply_label(None, None) == "unknown"
