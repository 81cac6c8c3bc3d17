"""lrtrain explore: the page's data, the page itself driven in headless Chromium, the command.

The page's numbers are checked against lrtrain's own runs: its exact full-batch path against
``fit`` in float64 (to 1e-9), its verdicts against ``sweep-lr`` for the lesson's six rates, its
expected mini-batch loss against :func:`lrtrain.theory.minibatch.expected_losses`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lrtrain import api
from lrtrain.cli.app import app
from lrtrain.config.schema import load_config
from lrtrain.theory import minibatch as mb
from lrtrain.workflows.explore import batch_choices, explore, from_config, page_html

pytest.importorskip("plotly", reason="the explore extra (plotly) is not installed")
LESSON_RATES = [0.0005, 0.001, 0.005, 0.025, 0.028, 0.03]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package: .ci/run installs it when absent)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) missing")
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium here: install Debian's chromium package (.ci/run does)")
    with sync_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Page:
    """One page in the browser, offline: any request but file:// is refused and recorded."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.url = path.resolve().as_uri()
        self.page = browser.new_page(viewport={"width": 1300, "height": 1000})
        self.fetched: list[str] = []
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith("file:"):
            route.continue_()
        else:
            self.fetched.append(url)
            route.abort()

    def open(self, fragment: str = "") -> Page:
        """Follow the link ``page.html#fragment``: the first time a fresh load, then the same
        document's hash changes (the page reads a changed fragment as a new visitor's link,
        settings it leaves out at the config's own; one load of plotly.js saves ~1 s each)."""
        if self.page.url == "about:blank":
            self.page.goto(self.url + fragment)
            self.page.wait_for_function("document.body.dataset.draws === '1'")
            return self
        before = self.page.evaluate("document.body.dataset.draws")
        self.page.evaluate(
            """f => { const old = location.hash; location.hash = f;
                      if (location.hash === old) dispatchEvent(new HashChangeEvent("hashchange"));
                    }""",
            fragment or "#",
        )
        self.page.wait_for_function(f"document.body.dataset.draws !== '{before}'")
        return self

    def verdict(self) -> str:
        return str(self.page.inner_text("#verdict"))

    def final(self) -> dict[str, str]:
        return dict(self.page.eval_on_selector("#final", "el => ({...el.dataset})"))

    def theta(self) -> np.ndarray:
        return np.asarray(json.loads(self.final()["theta"]))

    def fragment(self) -> dict[str, str]:
        hash_ = str(self.page.evaluate("location.hash"))
        return dict(part.split("=", 1) for part in hash_.lstrip("#").split("&"))


@pytest.fixture(scope="module")
def lesson_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("page") / "lesson.html"
    return explore(load_config(None, ["device=cpu"]), out).path


# --------------------------------------------------------------------------- the page's data


def test_the_lesson_page_data_is_the_analysis() -> None:
    config = load_config(None, ["device=cpu"])
    data = from_config(config)
    _, dataset, analysis, _ = api.prepare(config)
    assert data["eigenvalues"] == analysis.eigenvalues
    assert data["theta_star"] == analysis.theta_star
    assert data["theta0"] == [0.0, 0.0]
    assert data["parameters"] == ["w", "b"]
    assert data["defaults"] == {"lr": 0.001, "momentum": 0.0, "nesterov": False, "steps": 100,
                                "batch": None}  # fmt: skip
    assert data["batches"] == [1, 2, 4, 8, 16, 32, 64, None]
    minibatch = data["minibatch"]
    assert minibatch is not None
    from lrtrain.workflows.prediction import minibatch_moments

    moments, _ = minibatch_moments(config, dataset, analysis, False)
    assert moments is not None
    for key, batch, momentum, nesterov in [("4|0|0", 4, 0.0, False), ("1|0.9|1", 1, 0.9, True)]:
        expected = mb.critical_lr(moments, batch, momentum, nesterov)
        assert minibatch["critical"][key] == pytest.approx(expected, rel=1e-4)
    assert minibatch["critical"]["4|0|0"] == pytest.approx(0.0249, rel=1e-3)  # issue 16's value


def test_batch_choices_are_powers_of_two_the_own_size_and_full() -> None:
    assert batch_choices(100, None) == [1, 2, 4, 8, 16, 32, 64, None]
    assert batch_choices(100, 10) == [1, 2, 4, 8, 10, 16, 32, 64, None]
    assert batch_choices(3, None) == [1, 2, None]
    assert len(batch_choices(10**9, None)) == 13


def test_the_page_is_one_self_contained_file(lesson_page: Path) -> None:
    text = lesson_page.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text)
    assert "@import" not in text and "url(http" not in text
    payload = re.search(r'id="lrtrain-data" type="application/json">(.*?)</script>', text, re.S)
    assert payload is not None and json.loads(payload.group(1))["name"] == "lecture"
    assert "Plotly" in text and "function fullBatch" in text


def test_a_run_directory_is_explored_from_its_files_without_torch(tmp_path: Path) -> None:
    config = load_config(None, ["device=cpu", "train.max_iter=5", "output.plots=[]",
                                "model.init=normal", "seed=3"])  # fmt: skip
    run = api.fit(config, out=tmp_path / "run")
    script = (
        "import sys; from lrtrain import explore; "
        f"page = explore({str(run.run_dir)!r}); "
        "assert 'torch' not in sys.modules, 'torch imported'; print(page.path)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    page = Path(done.stdout.strip())
    assert page == run.run_dir / "explore.html"
    text = page.read_text(encoding="utf-8")
    data = json.loads(re.search(r'application/json">(.*?)</script>', text, re.S).group(1))  # type: ignore[union-attr]
    start = run.result.theta[0, 0].tolist()
    assert data["theta0"] == pytest.approx(start, rel=1e-6)
    assert data["theta0"] == pytest.approx(from_config(config)["theta0"], rel=1e-6)
    assert data["batches"] == [None]
    assert any("fourth moments" in note for note in data["notes"])


def test_jupyter_shows_the_page_inline(lesson_page: Path) -> None:
    from lrtrain.workflows.explore import ExplorePage, PageData

    shown = ExplorePage(lesson_page, cast(PageData, {}))._repr_html_()
    assert shown.startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;')
    assert "&lt;script" in shown  # escaped into the attribute


# --------------------------------------------------------------------------- in the browser


def test_the_lesson_rates_give_the_sweeps_verdicts(browser: Any, lesson_page: Path) -> None:
    sweep = api.sweep_lr(load_config("lecture", ["device=cpu"]), out="sweep", draw=False)
    assert sweep.summary is not None
    observed = {row["lr"]: row["verdict"] for row in sweep.summary["results"]}
    page = Page(browser, lesson_page)
    for k, lr in enumerate(LESSON_RATES):
        page.open(f"#lr={lr}&steps=100")
        assert page.verdict().split(" — ")[0] == observed[lr], lr
        if observed[lr] != "diverged":  # the sweep trains in float32
            theta = sweep.result.final_theta[k].numpy()
            assert page.theta() == pytest.approx(theta, rel=1e-4)
    assert page.fetched == [] and page.errors == []


SETTINGS = [  # (overrides, fragment)
    (["optimizer.lr=0.02"], "#lr=0.02"),
    (["optimizer.lr=0.028"], "#lr=0.028"),
    (["optimizer.lr=0.005", "optimizer.momentum=0.9", "optimizer.nesterov=true"],
     "#lr=0.005&momentum=0.9&nesterov=1"),
    (["optimizer.lr=0.01", "optimizer.momentum=0.5"], "#lr=0.01&momentum=0.5"),
    (["optimizer.lr=0.031"], "#lr=0.031"),
]  # fmt: skip


def test_the_full_batch_path_is_training_in_float64(browser: Any, lesson_page: Path) -> None:
    page = Page(browser, lesson_page)
    for overrides, fragment in SETTINGS:
        config = load_config(None, ["device=cpu", "train.dtype=float64", "train.max_iter=150",
                                    "output.plots=[]", *overrides])  # fmt: skip
        run = api.fit(config, out=f"fit{len(fragment)}{fragment[4:9]}", overwrite=True, draw=False)
        page.open(fragment + "&steps=150")
        step = int(page.final()["step"])
        assert step == run.result.stop_steps[0], fragment  # the same divergence guard
        trained = run.result.final_theta[0].numpy()
        assert page.theta() == pytest.approx(trained, rel=1e-9, abs=1e-12), fragment
        assert float(page.final()["loss"]) == pytest.approx(
            run.summary["final"]["loss"], rel=1e-9
        ), fragment
    assert page.errors == []


def test_weight_decay_and_a_random_start(browser: Any, tmp_path: Path) -> None:
    overrides = ["device=cpu", "train.dtype=float64", "train.max_iter=80", "output.plots=[]",
                 "optimizer.weight_decay=0.5", "optimizer.lr=0.01", "optimizer.momentum=0.3",
                 "model.init=normal", "seed=5"]  # fmt: skip
    config = load_config(None, overrides)
    path = explore(config, tmp_path / "wd.html").path
    run = api.fit(config, out=tmp_path / "wd", draw=False)
    page = Page(browser, path).open()
    trained = run.result.final_theta[0].numpy()
    assert page.theta() == pytest.approx(trained, rel=1e-9)
    assert "ridge target" in page.page.inner_text("#contour")
    # mini-batches with weight decay and momentum: about the ridge target, from the random start
    from lrtrain.engine.model import normal_start
    from lrtrain.workflows.prediction import minibatch_moments

    _, dataset, analysis, _ = api.prepare(config)
    moments, _ = minibatch_moments(config, dataset, analysis, False)
    assert moments is not None
    page.open("#batch=4&steps=50")
    theta_star = torch.tensor(analysis.theta_star, dtype=torch.float64)
    rule = mb.Rule(0.01, 0.3, False, 0.5)
    expected = mb.expected_losses(
        moments, analysis.loss_star, theta_star, normal_start(1, 5), rule, 4, [50]
    )
    assert float(page.final()["expectedLoss"]) == pytest.approx(expected.expected_loss[0], rel=1e-9)


def test_the_expected_minibatch_loss_is_the_recursion(browser: Any, lesson_page: Path) -> None:
    config = load_config(None, ["device=cpu"])
    from lrtrain.workflows.prediction import minibatch_moments

    _, dataset, analysis, _ = api.prepare(config)
    moments, _ = minibatch_moments(config, dataset, analysis, False)
    assert moments is not None
    page = Page(browser, lesson_page)
    for fragment, rule, batch in [
        ("#lr=0.01&batch=4&steps=300", mb.Rule(0.01), 4),
        ("#lr=0.003&momentum=0.8&nesterov=1&batch=1&steps=200", mb.Rule(0.003, 0.8, True), 1),
    ]:
        page.open(fragment)
        theta_star = torch.tensor(analysis.theta_star, dtype=torch.float64)
        steps = int(page.final()["expectedStep"])
        start = torch.zeros(2, dtype=torch.float64)
        expected = mb.expected_losses(
            moments, analysis.loss_star, theta_star, start, rule, batch, [steps]
        )
        assert float(page.final()["expectedLoss"]) == pytest.approx(
            expected.expected_loss[0], rel=1e-9
        ), fragment
    page.open("#lr=0.026&batch=4")  # above B = 4's mean-square critical lr 0.0249
    assert page.verdict().startswith("diverged")
    said = re.search(r"mean-square critical lr ([0-9.]+) for batches of 4", page.verdict())
    assert said is not None
    assert float(said.group(1)) == pytest.approx(mb.critical_lr(moments, 4), rel=1e-4)


def test_moving_a_slider_rewrites_the_link(browser: Any, lesson_page: Path) -> None:
    page = Page(browser, lesson_page).open()
    assert page.fragment()["lr"] == "0.001"
    page.page.fill("#lr", "0.028")
    page.page.dispatch_event("#lr", "change")
    assert page.fragment()["lr"] == "0.028"
    assert page.verdict().startswith("oscillating")
    page.page.eval_on_selector(
        "#lr-slider",
        "el => { el.value = String(Math.log10(0.03)); el.dispatchEvent(new Event('input')); }",
    )
    assert float(page.fragment()["lr"]) == pytest.approx(0.03, rel=2e-3)  # a slider's stop
    assert page.verdict().startswith("diverged")
    page.page.select_option("#batch", "16")
    assert page.fragment()["batch"] == "16"
    link = page.page.url
    again = browser.new_page()
    again.goto(link)
    again.wait_for_function("document.body.dataset.draws === '1'")
    assert again.inner_text("#verdict") == page.verdict()  # a link reproduces the view
    marks = page.page.eval_on_selector_all("#lr-marks .mark", "els => els.map(e => e.textContent)")
    assert sorted(marks) == sorted(["1/λmax", "η*", "2/λmax", "mean-square B=16"])


def test_several_features_view_two_eigen_directions(browser: Any, tmp_path: Path) -> None:
    path = explore(load_config("multivariate", ["device=cpu"]), tmp_path / "mv.html").path
    page = Page(browser, path).open("#modes=1,3")
    assert page.page.input_value("#mode-x") == "1" and page.page.input_value("#mode-y") == "3"
    page.page.select_option("#mode-x", "0")
    assert page.fragment()["modes"] == "0,3"
    assert "v0 (λ=" in page.page.inner_text("#contour-bg")
    assert page.errors == []


def test_a_path_along_one_axis_still_shows_the_level_sets(
    browser: Any, lesson_page: Path, tmp_path: Path
) -> None:
    """A standardised lesson's path runs along w alone (the centred bias stays at 0): its b
    axis was framed over ±0.05 against w's 0…9, the round (κ = 1) level sets drawn as
    vertical lines. It is widened as plots.contours frames it; the lesson's own frame, whose
    path spreads 13 % along b, is not."""
    ranges = "(() => { const l = document.getElementById('contour-bg').layout; " \
        "return [l.xaxis.range, l.yaxis.range]; })()"  # fmt: skip
    config = load_config(None, ["device=cpu", "data.standardize=true"])
    page = Page(browser, explore(config, tmp_path / "std.html").path).open()
    (x0, x1), (y0, y1) = page.page.evaluate(ranges)
    assert 0.4 * (x1 - x0) <= y1 - y0 <= 0.7 * (x1 - x0)
    (x0, x1), (y0, y1) = Page(browser, lesson_page).open().page.evaluate(ranges)
    assert y1 - y0 < 0.2 * (x1 - x0)
    assert page.errors == []


# --------------------------------------------------------------------------- the command


def test_cli_writes_the_page_without_opening_it() -> None:
    result = CliRunner().invoke(app, ["explore", "device=cpu", "-o", "p/lesson.html", "--no-open"])
    assert result.exit_code == 0, result.output
    assert result.output == "wrote p/lesson.html\n"
    assert Path("p/lesson.html").stat().st_size > 1_000_000  # plotly.js inline


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nonsense"], "neither a run directory nor a KEY=VALUE override"),
        (["optimizer.lr=-1"], "optimizer.lr"),
        (["-o", "out.png"], "must end in .html"),
        (["data.stream=true"], "data.stream"),
    ],
)
def test_cli_errors_are_one_message(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["explore", "--no-open", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_page_html_never_reads_placeholders_inside_what_it_inserts() -> None:
    data = from_config(load_config(None, ["device=cpu"]))
    data["notes"] = ["/*@SCRIPT@*/ stays text"]
    text = page_html(data)
    assert text.count("/*@SCRIPT@*/ stays text") == 1


def test_cli_opens_the_page_in_the_users_browser(tmp_path: Path, monkeypatch) -> None:
    """webbrowser honours $BROWSER: a stand-in records the address it is given."""
    opened = tmp_path / "opened.txt"
    monkeypatch.setenv(
        "BROWSER",
        f"{sys.executable} -c \"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\" %s",
    )
    result = CliRunner().invoke(app, ["explore", "device=cpu", "-o", "page.html"])
    assert result.exit_code == 0, result.output
    assert opened.read_text() == (Path.cwd() / "page.html").as_uri()


def test_without_plotly_the_message_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)
    result = CliRunner().invoke(app, ["explore", "device=cpu", "--no-open"])
    assert result.exit_code == 2
    assert "pip install 'lrtrain[explore]'" in result.output
    assert not Path("runs").exists() or not any(Path("runs").iterdir())


def test_a_problem_too_wide_for_a_page_is_refused() -> None:
    wide = "data.true_w=[" + ",".join(["1"] * 300) + "]"
    normal = "data.x={kind: normal, mean: 0.0, std: 1.0}"
    result = CliRunner().invoke(app, ["explore", "--no-open", wide, normal, "data.n_samples=500"])
    assert result.exit_code == 2
    assert "explore: 301 parameters" in result.output and "up to 200" in result.output


def test_a_config_of_another_optimizer_opens_on_sgd_at_the_optimal_rate() -> None:
    config = load_config("optimizers", ["device=cpu"])
    data = from_config(config)
    _, _, analysis, _ = api.prepare(config)
    assert config.optimizer.name == "adam"
    assert data["defaults"]["lr"] == analysis.asymptotically_optimal_lr
    assert data["defaults"]["momentum"] == 0.0 and not data["defaults"]["nesterov"]
    assert any("trains with adam" in note for note in data["notes"])
