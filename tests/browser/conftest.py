"""Fixtures of the browser tests: the real stack (Kafka, Postgres, the engine's worker processes,
the projector, the API on a loopback port serving the UI at /ui), keys per role, and Debian's
Chromium driven by Selenium through Debian's chromedriver (`make browser` installs both).

One engine and one API serve the whole package; each test module has its own browser session.
A missing Chromium FAILS the tests, like a missing Kafka or Postgres.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import yaml
from confluent_kafka import Producer
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException, NoSuchElementException, StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from bench.api_latency import served_api
from bend.cli.demo import EXAMPLE
from bend.contracts.topics import topic_name
from bend.devstack.engine import Engine, running_engine
from bend.settings import Settings
from projections.db import database_url
import contextlib

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = ROOT / ".bend" / "screenshots"  # gitignored; the tests write here every run
DOCS_UI = ROOT / "docs" / "ui"  # committed copies for the README, with BEND_UPDATE_SCREENSHOTS=1
README_SHOTS = {"run": "run.png", "runs": "runs.png", "editor": "editor.png",
                "trigger": "trigger.png"}
AXE = Path(__file__).parent / "vendor" / "axe" / "axe.min.js"  # axe-core, vendored (MPL-2.0)
BLOCKING = ("serious", "critical")  # axe impacts a page may not have
WAIT_S = 20.0  # an explicit wait's bound
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")
WIDE = (1280, 900)
NARROW = (390, 844)

SLEEPY: dict[str, Any] = {
    "name": "sleepy",
    "description": "Naps for an hour, then wakes.",
    "steps": [{"id": "nap", "type": "delay", "duration": "1h"},
              {"id": "after_nap", "type": "transform", "expression": "'woke'",
               "after": ["nap"]}],
}
SCHEDULE = {"type": "schedule", "schedule": {"cron": "0 9 * * 1-5", "timezone": "Europe/Paris"}}
BROKEN: dict[str, Any] = {
    "name": "broken",
    "description": "Calls a port nothing listens on, once.",
    "steps": [{"id": "call", "type": "http", "method": "GET", "url": "http://127.0.0.1:9/none",
               "retry": {"max_attempts": 1}}],
}

_written: list[Path] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say where the screenshots went."""
    if _written:
        terminalreporter.write_line(f"browser screenshots ({len(_written)}): {SCREENSHOTS}")


# --- the stack -----------------------------------------------------------------------------


@dataclass
class Stack:
    """The served API (and UI) at `url`, an admin client on it, keys per role, the engine."""

    url: str
    engine: Engine
    settings: Settings  # the API's: the engine's topics, a read-model schema of its own
    client: httpx.Client
    keys: dict[str, str]
    workflows: dict[str, str] = field(default_factory=dict)  # name -> workflow_id

    def register(self, definition: dict[str, Any]) -> str:
        """Register `definition` (once per name) and wait until the read model shows it."""
        name = definition["name"]
        if name not in self.workflows:
            r = self.client.post("/api/workflows", json=definition)
            assert r.status_code in (200, 201), r.text
            body = r.json()
            seen = self.client.get(f"/api/workflows/{body['workflow_id']}",
                                   params={"wait_for": body["position"]["token"]})
            assert seen.status_code == 200, seen.text
            self.workflows[name] = body["workflow_id"]
        return self.workflows[name]

    def start(self, workflow_id: str, run_input: Any) -> str:
        """Start a run through the API; return its id once the read model has it."""
        r = self.client.post(f"/api/workflows/{workflow_id}/execute", json={"input": run_input})
        assert r.status_code == 202, r.text
        body = r.json()
        seen = self.client.get(f"/api/executions/{body['run_id']}",
                               params={"wait_for": body["position"]["token"]})
        assert seen.status_code == 200, seen.text
        return body["run_id"]

    def asleep(self) -> str:
        """A new run of SLEEPY, once its 1 h delay's timer is set (the step shows `scheduled`)."""
        run_id = self.start(self.register(SLEEPY), {})
        self.until(run_id, {"running"}, step=("nap", "scheduled"))
        return run_id

    def run(self, run_id: str) -> dict[str, Any]:
        """`GET /api/executions/{run_id}`."""
        r = self.client.get(f"/api/executions/{run_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def until(self, run_id: str, statuses: set[str], timeout_s: float = 60.0,
              step: tuple[str, str] | None = None) -> dict[str, Any]:
        """Poll the run until its status is one of `statuses` (and `step` = (step_id, status)
        holds, if given)."""
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.run(run_id)
            steps = {s["step_id"]: s["status"] for s in run["steps"]}
            if run["status"] in statuses and (step is None or steps.get(step[0]) == step[1]):
                return run
            assert time.monotonic() < deadline, f"run {run_id} not {statuses} {step}: {run}"
            time.sleep(0.2)


@pytest.fixture(scope="package")
def stack(kafka_bootstrap: str, database_url: str) -> Iterator[Stack]:
    """The engine, the projector and the API processes, an operator and a viewer key. The
    executors re-read a project's secrets every second (not 30 s), so a secret set in a test is
    used by its next run."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BEND_SECRETS__CACHE_S", "1")
        with running_engine() as engine:
            yield from _served(engine)


def _served(engine: Engine) -> Iterator[Stack]:
    with served_api(engine.settings) as served, \
            httpx.Client(base_url=served.url, headers=served.headers, timeout=30) as client:
        keys = {"admin": served.admin_key}
        for role in ("operator", "viewer"):
            r = client.post("/api/keys", json={"role": role, "name": f"browser {role}"})
            assert r.status_code == 201, r.text
            keys[role] = r.json()["key"]
        yield Stack(served.url, engine, served.settings, client, keys)


def example_definition() -> dict[str, Any]:
    """The README's example workflow, as a mapping."""
    return yaml.safe_load(EXAMPLE.read_text())


@pytest.fixture(scope="package")
def example_id(stack: Stack) -> str:
    """The example research workflow, registered."""
    return stack.register(example_definition())


@pytest.fixture(scope="package")
def example_run(stack: Stack, example_id: str) -> dict[str, Any]:
    """A finished run of the example workflow (started through the API)."""
    run_id = stack.start(example_id, {"topic": "durable execution",
                                      "llm_base_url": stack.engine.llm.base_url})
    run = stack.until(run_id, {"completed", "failed", "cancelled"})
    assert run["status"] == "completed", run
    return run


@pytest.fixture(scope="package")
def failed_run(stack: Stack) -> dict[str, Any]:
    """A failed run: its only step called a closed port."""
    run_id = stack.start(stack.register(BROKEN), {})
    run = stack.until(run_id, {"completed", "failed", "cancelled"})
    assert run["status"] == "failed", run
    return run


@pytest.fixture(scope="package")
def schedule(stack: Stack) -> dict[str, Any]:
    """A weekday-morning schedule on the sleepy workflow (no triggers worker fires it here)."""
    workflow_id = stack.register(SLEEPY)
    r = stack.client.post(f"/api/workflows/{workflow_id}/triggers", json={"definition": SCHEDULE})
    assert r.status_code == 201, r.text
    trigger_id = r.json()["trigger_id"]
    deadline = time.monotonic() + 20
    while True:
        view = stack.client.get(f"/api/triggers/{trigger_id}")
        if view.status_code == 200 and view.json()["state"]["next_due_at"]:
            return view.json()
        assert time.monotonic() < deadline, view.text
        time.sleep(0.2)


async def _dead_letter_id(stack: Stack, topic: str, offset: int) -> str | None:
    conn = await asyncpg.connect(database_url(stack.settings))
    try:
        return await conn.fetchval(
            f'SELECT event_id FROM "{stack.settings.database.schema_name}".dead_letters '
            "WHERE source_topic = $1 AND source_offset = $2", topic, offset)
    finally:
        await conn.close()


@pytest.fixture(scope="package")
def dead_letter(stack: Stack, failed_run: dict[str, Any]) -> str:
    """The event id of the dead letter of a record no one can decode, once projected; keyed by
    a run of the operator's project (dead letters are scoped by their run's project)."""
    topic = topic_name("commands", stack.settings)
    landed: list[Any] = []
    producer = Producer({"bootstrap.servers": stack.settings.kafka.bootstrap})
    producer.produce(topic, b"\xc3\x01not-an-avro-body", key=failed_run["run_id"].encode(),
                     on_delivery=lambda err, msg: landed.append((err, msg)))
    assert producer.flush(30) == 0 and landed and landed[0][0] is None, landed
    offset = landed[0][1].offset()
    deadline = time.monotonic() + 30
    while (event_id := asyncio.run(_dead_letter_id(stack, topic, offset))) is None:
        assert time.monotonic() < deadline, f"no dead letter of {topic}@{offset} projected"
        time.sleep(0.3)
    return event_id



# --- the browser ---------------------------------------------------------------------------


_READ = """
const [css, names, visibleOnly] = arguments;
return Array.from(document.querySelectorAll(css))
  .filter((e) => !visibleOnly || e.getClientRects().length > 0)
  .map((e) => names.map((n) => n === 'text' ? e.innerText : e.getAttribute(n)));
"""


_FOCUS = """
const e = document.activeElement, s = getComputedStyle(e), css = arguments[0];
return {id: e.id, tag: e.tagName.toLowerCase(), href: e.getAttribute('href'),
        matches: !!css && e.matches(css),
        visible: (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
                 || s.boxShadow !== 'none'};
"""


_AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]})
  .then((r) => done(r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}))))
  .catch((e) => done([{id: "axe-error", impact: "critical", help: String(e), nodes: []}]));
"""


@dataclass
class Browser:
    """A Chromium session on the UI at `base_url`, with bounded waits."""

    driver: webdriver.Chrome
    base_url: str

    def open(self, path: str) -> None:
        """Load `path` (relative to the UI's origin) and wait for the document to be ready."""
        self.driver.get(self.base_url + path)
        self.wait(lambda: self.driver.execute_script("return document.readyState") == "complete",
                  f"{path} to load")

    def path(self) -> str:
        """The current URL's path and query."""
        url = self.driver.current_url
        return url[len(self.base_url):] if url.startswith(self.base_url) else url

    def wait(self, condition: Callable[[], T], what: str, timeout_s: float = WAIT_S,
             poll_s: float = 0.1) -> T:
        """Wait until `condition()` is truthy and return it; fail saying `what` was awaited."""
        try:
            return WebDriverWait(self.driver, timeout_s, poll_frequency=poll_s,
                                 ignored_exceptions=(NoSuchElementException,
                                                     StaleElementReferenceException)).until(
                lambda _: condition())
        except TimeoutException:
            pytest.fail(f"waited {timeout_s:.0f} s for {what}; page {self.path()}", pytrace=True)

    def one(self, css: str) -> WebElement:
        """The element matching `css`, waited for."""
        return self.wait(lambda: self.driver.find_element(By.CSS_SELECTOR, css), css)

    def all(self, css: str) -> list[WebElement]:
        """Every element matching `css` now (none is an empty list)."""
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def absent(self, css: str) -> bool:
        """True when nothing in the DOM matches `css`."""
        return not self.all(css)

    def read(self, css: str, *names: str, visible: bool = False) -> list[list[str | None]]:
        """For each element matching `css` (shown ones only if `visible`), its attributes
        `names` (`text` for its rendered text), read in one script: live updates may replace
        elements between two WebDriver calls, never within one."""
        return self.driver.execute_script(_READ, css, list(names), visible)

    def attr(self, css: str, name: str) -> str | None:
        """Attribute `name` of the first element matching `css` (None if none)."""
        found = self.read(css, name)
        return found[0][0] if found else None

    def text(self, css: str) -> str | None:
        """The rendered text of the first element matching `css` (None if none)."""
        return self.attr(css, "text")

    def sign_out_all(self) -> None:
        """Forget every cookie of the UI's origin."""
        if not self.driver.current_url.startswith(self.base_url):
            self.driver.get(self.base_url + "/ui/login")
        self.driver.delete_all_cookies()

    def sign_in(self, key: str) -> None:
        """Sign in with `key` through the login form; wait to leave it."""
        self.sign_out_all()
        self.open("/ui/login")
        field_ = self.one("input#api-key")
        field_.clear()
        field_.send_keys(key)
        self.one("button#sign-in").click()
        self.wait(lambda: not self.path().startswith("/ui/login") or self.all("#login-error"),
                  "the login form to answer")
        errors = self.all("#login-error")
        assert not errors, f"sign-in refused: {errors[0].text}"

    def mark(self) -> None:
        """Put a marker on the window: it survives live updates, not a reload."""
        self.driver.execute_script("window.__bendMarker = 'kept';")

    def marked(self) -> bool:
        """True while the document marked by `mark()` is still the one shown."""
        return self.driver.execute_script("return window.__bendMarker === 'kept';")

    def press(self, *keys: str) -> None:
        """Press `keys` on whatever has the focus, as a keyboard would."""
        ActionChains(self.driver).send_keys(*keys).perform()

    def chord(self, modifier: str, key: str) -> None:
        """Press `key` with `modifier` held (Shift+Tab: the focus goes back)."""
        ActionChains(self.driver).key_down(modifier).send_keys(key).key_up(modifier).perform()

    def focused(self, css: str = "") -> dict[str, Any]:
        """The focused element: its id, tag, href, whether its focus shows and whether it
        matches `css`."""
        found: dict[str, Any] = self.driver.execute_script(_FOCUS, css)
        return found

    def tab_to(self, css: str, limit: int = 80) -> list[dict[str, Any]]:
        """Press Tab until the element matching `css` has the focus; the focus stops passed on
        the way."""
        seen: list[dict[str, Any]] = []
        for _ in range(limit):
            self.press(Keys.TAB)
            seen.append(self.focused(css))
            if seen[-1]["matches"]:
                return seen
        pytest.fail(f"{limit} Tabs never reached {css}: {[f['id'] or f['tag'] for f in seen]}")

    def accept_confirmation(self) -> None:
        """Accept a `confirm()` dialog if the page opened one."""
        with contextlib.suppress(NoAlertPresentException):
            self.driver.switch_to.alert.accept()

    def accessibility_violations(self, impacts: tuple[str, ...] = BLOCKING
                                 ) -> list[dict[str, Any]]:
        """axe-core's violations of the shown page with one of `impacts`: each rule's id, impact,
        help and (up to five of) the elements it found."""
        if not self.driver.execute_script("return !!window.axe"):
            self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        self.driver.set_script_timeout(60)
        try:
            found = self.driver.execute_async_script(_AXE_RUN)
        finally:
            self.driver.set_script_timeout(10)
        return [v for v in found if v["impact"] in impacts]

    def assert_accessible(self, what: str) -> None:
        """Fail listing axe-core's serious and critical violations of the shown page."""
        violations = self.accessibility_violations()
        assert not violations, f"{what} ({self.path()}) fails axe-core: {violations}"

    def set_width(self, size: tuple[int, int]) -> None:
        """Resize the window to `size` (width, height)."""
        self.driver.set_window_size(*size)

    def screenshot(self, name: str, max_height: int | None = None) -> Path:
        """Write the viewport to `.bend/screenshots/NAME.png` (and to `docs/ui/` for the
        README's pictures when BEND_UPDATE_SCREENSHOTS=1); with `max_height`, the window first
        grows to show the page down to that many pixels."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{name}.png"
        size = self.driver.get_window_size()
        if max_height:
            page = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(size["width"], min(max(page, size["height"]), max_height))
        try:
            assert self.driver.get_screenshot_as_file(str(target)), f"no screenshot of {name}"
        finally:
            if max_height:
                self.driver.set_window_size(size["width"], size["height"])
        _written.append(target)
        if os.environ.get("BEND_UPDATE_SCREENSHOTS") == "1" and name in README_SHOTS:
            DOCS_UI.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, DOCS_UI / README_SHOTS[name])
        return target


def _chromium_options(profile: str) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # never a browser Selenium Manager would fetch
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={WIDE[0]},{WIDE[1]}")
    return options


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
    """Debian's Chromium through Debian's chromedriver; fails when they are not installed."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: install Debian's chromium and "
                    "chromium-driver with `make browser` (as root)", pytrace=False)
    log_dir = stack.engine.settings.dev.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bend-chromium-") as profile:
        service = Service(executable_path=str(CHROMEDRIVER),
                          log_output=str(log_dir / f"chromedriver-{uuid.uuid4().hex[:6]}.log"))
        driver = webdriver.Chrome(service=service, options=_chromium_options(profile))
        try:
            driver.set_page_load_timeout(30)
            driver.set_script_timeout(10)
            yield Browser(driver, stack.url)
        finally:
            driver.quit()


def json_text(value: Any) -> str:
    """`value` as the JSON a user types into a form."""
    return json.dumps(value)
