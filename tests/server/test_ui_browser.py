"""The dashboard in a real browser: the system's chromium driven through its chromedriver.

Without chromium and chromedriver these tests skip and say why; ``STREAMQ_REQUIRE_BROWSER=1``
(set by CI) makes that a failure. Each test writes screenshots of the pages it visits, at
1280 and 800 px wide, under ``tests/.screenshots/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from server_support import secret, token_spec

import streamq
from server import ServerSettings, create_app, running_server
from streamq import App, Context

CHROMIUM = os.environ.get("STREAMQ_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("STREAMQ_CHROMEDRIVER", "/usr/bin/chromedriver")
SHOTS = Path(__file__).resolve().parents[1] / ".screenshots"
WAIT = 20.0


def _browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(path)):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


_missing = _browser_missing()
if _missing and os.environ.get("STREAMQ_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"STREAMQ_REQUIRE_BROWSER=1 but {_missing}")
pytestmark = pytest.mark.skipif(_missing is not None, reason=f"no browser: {_missing}")


class Slow(msgspec.Struct, frozen=True, kw_only=True):
    steps: int = 10
    pause: float = 0.3


class Strict(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool


# While set, "flaky" jobs fail fatally; a test clears it before it retries them.
FLAKY_FAILS = threading.Event()


def register(app: App, queue: str) -> None:
    @app.task("slow", queue=queue, max_attempts=1)
    async def slow(ctx: Context, req: Slow) -> int:
        for i in range(req.steps):
            await asyncio.sleep(req.pause)
            await ctx.progress((i + 1) * 100 / req.steps, f"step {i + 1} of {req.steps}")
        return req.steps

    @app.task("flaky", queue=queue, max_attempts=1)
    async def flaky(ctx: Context, req: Strict) -> str:
        if FLAKY_FAILS.is_set():
            raise streamq.Fatal("RuntimeError: the service is down")
        return "recovered"

    # Public: the dead-letter editor replays an edited payload through the generic enqueue
    # route, which takes public tasks only.
    @app.task("strict", queue=queue, max_attempts=1, public=True)
    async def strict(ctx: Context, req: Strict) -> str:
        if not req.ok:
            raise streamq.Fatal("ValueError: ok must be true for order 1234")
        return "accepted"


@dataclass
class Site:
    """A server (and optionally a worker) running in a thread with its own event loop."""

    url: str
    app: App
    queues: list[str]
    loop: asyncio.AbstractEventLoop
    # The server's per-minute series (``server.ui.live.SeriesTracker``).
    tracker: Any

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)


@contextlib.contextmanager
def site(redis_url: str, queues: list[str], tokens: str = "") -> Iterator[Site]:
    loop = asyncio.new_event_loop()
    ready: dict[str, Any] = {}
    stop = asyncio.Event()
    started = threading.Event()

    async def main() -> None:
        app = App("ui-browser", redis_url=redis_url)
        register(app, queues[0])
        app.schedule("slow", Slow(steps=1), every=3600, queue=queues[0], id="hourly-slow")
        settings = ServerSettings(rate_limit_per_second=0, stats_sample_seconds=1)
        if tokens:
            settings = settings.with_tokens(tokens)
        try:
            asgi = create_app(settings, app)
            async with running_server(asgi) as url:
                ready.update(url=url, app=app, tracker=asgi.state.streamq.rates)
                started.set()
                await stop.wait()
        finally:
            started.set()
            await app.close()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    started.wait(30)
    assert "url" in ready, "the server did not start"
    try:
        yield Site(
            url=ready["url"], app=ready["app"], queues=queues, loop=loop, tracker=ready["tracker"]
        )
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


@contextlib.asynccontextmanager
async def _worker_ctx(app: App, queues: list[str]) -> Any:
    worker = streamq.Worker(app, queues, concurrency=4, handle_signals=False)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


class WorkerThread:
    """A worker on the site's loop, started and stopped from the test's thread."""

    def __init__(self, s: Site, queues: list[str]) -> None:
        self.site = s
        self.worker = streamq.Worker(s.app, queues, concurrency=4, handle_signals=False)
        self.future = asyncio.run_coroutine_threadsafe(self.worker.run(), s.loop)

    def stop(self) -> None:
        self.site.loop.call_soon_threadsafe(self.worker.stop)
        self.future.result(30)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="streamq-chromium-")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def shoot(driver: Any, name: str) -> None:
    """Screenshots of the whole page at 1280 and 800 px wide."""
    SHOTS.mkdir(exist_ok=True)
    for width in (1280, 800):
        driver.set_window_size(width, 900)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(max(int(height) + 100, 600), 4000))
        time.sleep(0.2)
        driver.save_screenshot(str(SHOTS / f"{name}-{width}.png"))
    driver.set_window_size(1280, 900)


def text(driver: Any, css: str) -> str:
    """The rendered text of the first element matching ``css`` ("" if none), read in one
    script call so a live update cannot swap the element out half-way."""
    found = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css
    )
    return str(found)


def cell(driver: Any, queue: str, key: str) -> str:
    return text(driver, f'tr[data-queue="{queue}"] td[data-k="{key}"]')


def test_overview_counts_follow_a_running_worker(
    browser: Any, valkey_url: str, uniq: Callable[[str], str]
) -> None:
    from selenium.webdriver.common.by import By

    queues = [uniq("ui-a"), uniq("ui-b")]
    with site(valkey_url, queues) as s:
        for q in queues:
            s.run(s.app.register_queue(q))
        handles = s.run(
            s.app.enqueue_many(
                [
                    streamq.EnqueueRequest(
                        name="slow", payload=Slow(steps=2, pause=0.2), queue=queues[0]
                    )
                    for _ in range(12)
                ]
            )
        )
        browser.get(s.url + "/ui/")
        until(lambda: text(browser, "#live-state") == "live", "the live stream")
        for q in queues:
            assert text(browser, f'tr[data-queue="{q}"] th'), f"{q} is not on the overview"
        assert cell(browser, queues[0], "waiting") == "12"
        assert "no live workers" in text(browser, f'tr[data-queue="{queues[0]}"] th')
        # The server times the jobs of its app's queues from its events (from its first look).
        until(lambda: queues[0] in s.tracker.durations.subscriptions, "timing the jobs")
        worker = WorkerThread(s, [queues[0]])
        try:
            # Counts change on the open page, without reloading it, as the worker drains.
            until(lambda: cell(browser, queues[0], "active") not in ("", "0"), "active jobs")
            until(lambda: cell(browser, queues[0], "waiting") == "0", "the queue to drain", 40)
            until(lambda: cell(browser, queues[0], "active") == "0", "the last job to finish", 40)
            assert "no live workers" not in text(browser, f'tr[data-queue="{queues[0]}"] th')
            # Done/s follows too: the rates read in the background reach the open page.
            until(lambda: cell(browser, queues[0], "completed_per_s") != "0.00", "done/s")
            time.sleep(2.5)  # let the sampler count the completions for the chart
            browser.refresh()
            until(lambda: text(browser, "#live-state") == "live", "the live stream")
            # The wait and run charts are drawn (uPlot puts a canvas in each).
            for chart in ("jobs", "wait", "run"):
                until(
                    lambda c=chart: browser.find_elements(
                        By.CSS_SELECTOR, f'[data-chart="{c}"] canvas'
                    ),
                    f"the {chart} chart",
                )
            shoot(browser, "overview")
            # A long job shows on the workers page with its lease age, and the worker's
            # slots in use, once the worker publishes its load (every few seconds).
            long = s.run(s.app.enqueue("slow", Slow(steps=60, pause=0.5), queue=queues[0]))
            browser.get(s.url + "/ui/workers")

            def listed() -> bool:
                browser.refresh()
                return long.id in text(browser, "table") and "1 / 4" in text(browser, "table")

            until(listed, "the running job on the workers page", 40)
            shoot(browser, "workers")
            s.run(long.cancel())
        finally:
            worker.stop()
        # A worker that stopped stays listed, greyed, as departed.
        browser.get(s.url + "/ui/workers")
        assert "departed" in text(browser, "table")
        shoot(browser, "workers-departed")
        # The per-minute series counted every completion, and timed the jobs' waits and
        # runs (read through the JSON API, as the charts read it).
        series = httpx.get(f"{s.url}/v1/series?queue={queues[0]}").json()
        hour = series["queues"][queues[0]]["hour"]
        assert sum(hour["completed"]) == 12
        runs = [v for v in hour["run_p50"] if v is not None]
        assert runs and min(runs) >= 0.4 * 0.91  # two steps of 0.2 s each, or more
        assert any(v is not None for v in hour["wait_p95"])
        browser.get(s.url + "/ui/queues/" + queues[0])
        # The explorer lists the queue's jobs from the index (the twelve and the long one), and
        # finds a job by id.
        until(lambda: "13 job(s) on this page" in text(browser, "#explorer-status"), "the jobs")
        shoot(browser, "queue")
        box = browser.find_element(By.CSS_SELECTOR, "#filters input[name=id]")
        box.send_keys(handles[3].id)
        box.submit()
        until(lambda: handles[3].id in text(browser, "#jobs tbody"), "the job found by id")
        assert "completed" in text(browser, "#jobs tbody")
        browser.get(s.url + "/ui/schedules")
        assert "hourly-slow" in text(browser, "table")
        shoot(browser, "schedules")
        browser.get(s.url + "/docs")
        until(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) > 5, "Swagger UI")
        assert "/v1/workers" in text(browser, "#swagger-ui")
        shoot(browser, "docs")


def test_job_page_progress_advances_live(
    browser: Any, valkey_url: str, uniq: Callable[[str], str]
) -> None:
    queue = uniq("ui-job")
    with site(valkey_url, [queue]) as s:
        handle = s.run(s.app.enqueue("slow", Slow(steps=10, pause=0.5), queue=queue))
        browser.get(f"{s.url}/ui/queues/{queue}/jobs/{handle.id}")
        assert text(browser, "#job-state") == "queued"
        worker = WorkerThread(s, [queue])
        try:
            from selenium.webdriver.common.by import By

            bar = browser.find_element(By.ID, "progress")
            seen: list[float] = []

            def progressed() -> bool:
                value = float(bar.get_attribute("value") or 0)
                if not seen or value != seen[-1]:
                    seen.append(value)
                return len([v for v in seen if 0 < v < 100]) >= 3

            until(progressed, "the progress bar to advance")
            assert seen == sorted(seen)
            assert "step" in text(browser, "#progress-message")
            until(lambda: text(browser, "#job-state") == "completed", "completion", 30)
            until(lambda: "completed" in text(browser, "#timeline"), "the timeline")
            assert "progress" in text(browser, "#timeline")
            shoot(browser, "job")
        finally:
            worker.stop()


@pytest.mark.xfail(
    reason="known failure under load: the dead-letter group's edit button is not shown in time (open in issue 17)",
    strict=False,
)
def test_edit_and_replay_a_dead_letter(
    browser: Any, valkey_url: str, uniq: Callable[[str], str]
) -> None:
    from selenium.webdriver.common.by import By

    queue = uniq("ui-dead")
    with site(valkey_url, [queue]) as s:
        worker = WorkerThread(s, [queue])
        try:
            handle = s.run(s.app.enqueue("strict", Strict(ok=False), queue=queue))
            until(lambda: s.run(handle.state()) == "dead", "the job to die")
            browser.get(s.url + "/ui/dead-letters")
            assert "ValueError: ok must be true for order #" in browser.page_source
            browser.find_element(By.CSS_SELECTOR, "details summary").click()
            shoot(browser, "dead-letters")
            # The group opens on the click; its buttons are shown once it has.
            edit = until(
                lambda: [
                    b
                    for b in browser.find_elements(
                        By.CSS_SELECTOR, f'button[data-job="{handle.id}"]'
                    )
                    if b.is_displayed() and b.is_enabled()
                ],
                "the dead letter's edit button",
            )[0]
            edit.click()
            area = browser.find_element(By.ID, "editor-payload")
            until(lambda: '"ok": false' in (area.get_attribute("value") or ""), "the payload")
            shoot(browser, "dead-letter-editor")
            area.clear()
            area.send_keys('{"ok": true}')
            browser.find_element(By.ID, "editor-replay").click()
            link = until(
                lambda: browser.find_elements(By.ID, "replayed-link"), "the replayed job's link"
            )[0]
            link.click()
            until(lambda: text(browser, "#job-state") == "completed", "the replayed job", 30)
            assert '"accepted"' in browser.page_source
            assert s.run(s.app.dead_letters(queue)) == []
        finally:
            worker.stop()


def test_login_read_token_and_cross_site_post(
    browser: Any, valkey_url: str, uniq: Callable[[str], str]
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    queue = uniq("ui-auth")
    with site(valkey_url, [queue], tokens=token_spec("reader:read,boss:admin")) as s:
        s.run(s.app.register_queue(queue))
        browser.get(f"{s.url}/ui/queues/{queue}")
        assert "/ui/login" in browser.current_url
        shoot(browser, "login")
        assert browser.switch_to.active_element.get_attribute("id") == "token"
        browser.find_element(By.ID, "token").send_keys(secret("reader"))
        browser.find_element(By.CSS_SELECTOR, "#login button").click()
        until(lambda: f"/ui/queues/{queue}" in browser.current_url, "the queue page")
        assert not browser.find_elements(By.CSS_SELECTOR, "button[data-action], button[data-bulk]")
        # By keyboard: the first Tab stop of a page skips to its content, and shows itself.
        ActionChains(browser).send_keys(Keys.TAB).perform()
        skip = browser.switch_to.active_element
        assert skip.get_attribute("class") == "skip" and skip.text == "Skip to content"
        assert "read only" in text(browser, "header")
        # Posting anyway, from the page itself, with the CSRF token: the API says 403.
        status = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"sq.api('POST', '/queues/{queue}/pause').then(r => done(r.status));"
        )
        assert status == 403
        # Signed in as admin, a page of another site posts to the dashboard: refused, because
        # the browser sends no SameSite=Strict cookie and the Origin is not the dashboard's.
        browser.find_element(By.CSS_SELECTOR, ".logout button").click()
        until(lambda: browser.find_elements(By.ID, "token"), "the login form")[0].send_keys(
            secret("boss")
        )
        browser.find_element(By.CSS_SELECTOR, "#login button").click()
        until(lambda: browser.find_elements(By.ID, "queues"), "the overview")
        other = s.url.replace("127.0.0.1", "localhost")
        browser.get(other + "/ui/login")
        result = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"fetch('{s.url}/ui/api/queues/{queue}/pause', {{method: 'POST', mode: 'no-cors',"
            " credentials: 'include'}).then(() => done('sent'), e => done('blocked: ' + e));"
        )
        assert result.startswith(("sent", "blocked"))
        time.sleep(0.3)
        assert s.run(s.app.stats(queue)).paused is False
        browser.get(f"{s.url}/ui/queues/{queue}")
        assert browser.find_elements(By.CSS_SELECTOR, 'button[data-action="pause"]')


def test_explorer_filters_pages_and_acts_on_all_matching(
    browser: Any, valkey_url: str, uniq: Callable[[str], str]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    queue = uniq("ui-explorer")
    with site(valkey_url, [queue]) as s:
        s.run(s.app.register_queue(queue))
        # 40 dead, 40 completed (by a worker), then 40 left queued: 120 jobs in the index.
        FLAKY_FAILS.set()
        worker = WorkerThread(s, [queue])
        try:
            dead = [s.run(s.app.enqueue("flaky", Strict(ok=True), queue=queue)) for _ in range(40)]
            done = [s.run(s.app.enqueue("strict", Strict(ok=True), queue=queue)) for _ in range(40)]
            for h in dead + done:
                until(lambda h=h: s.run(h.state()) in ("dead", "completed"), "the jobs to finish")
        finally:
            worker.stop()
        queued = [
            s.run(s.app.enqueue("slow", Slow(steps=1, pause=0.01), queue=queue)) for _ in range(40)
        ]
        assert {s.run(h.state()) for h in dead} == {"dead"}
        browser.get(f"{s.url}/ui/queues/{queue}")

        def ids() -> list[str]:
            # Read in one script call: the page re-renders its rows under us.
            found = browser.execute_script(
                "return Array.from(document.querySelectorAll("
                "'#jobs tbody tr td:nth-child(2)')).map(e => e.textContent)"
            )
            return list(found)

        def search(state: str) -> None:
            Select(browser.find_element(By.NAME, "state")).select_by_visible_text(state)
            browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()

        until(lambda: len(ids()) == 50, "the first page")
        # Newest first: the jobs queued last lead the listing (in the same millisecond, any
        # of them may come first).
        waiting = {h.id for h in queued}
        assert set(ids()[:40]) == waiting
        search("dead")
        until(lambda: set(ids()) == {h.id for h in dead}, "the dead jobs")
        assert text(browser, "#jobs tbody").count("dead") == 40
        assert "40 job(s) on this page" in text(browser, "#explorer-status")
        shoot(browser, "explorer")
        # Paging through every job: 50, 50, 20, no job twice.
        search("any")
        until(lambda: len(ids()) == 50 and ids()[0] in waiting, "every job")
        seen = list(ids())
        for expected in (50, 20):
            browser.find_element(By.ID, "next-page").click()
            until(
                lambda n=expected, before=seen: len(ids()) == n and ids()[0] not in before,
                "the next page",
            )
            seen.extend(ids())
        assert len(seen) == len(set(seen)) == 120
        assert set(seen) == {h.id for h in dead + done + queued}
        assert browser.find_element(By.ID, "next-page").get_attribute("disabled")
        # Retry everything the "dead" filter matches: the confirmation names how many, and
        # the retried jobs (no longer failing) complete.
        FLAKY_FAILS.clear()
        search("dead")
        until(lambda: set(ids()) == {h.id for h in dead}, "the dead jobs")
        browser.find_element(By.ID, "all-matching").click()
        browser.find_element(By.CSS_SELECTOR, 'button[data-bulk="retry"]').click()
        until(lambda: "Retry 40 job(s)" in text(browser, "#confirm-text"), "the confirmation")
        shoot(browser, "explorer-confirm")
        browser.find_element(By.ID, "confirm-ok").click()
        until(lambda: "Retry: 40 job(s) done" in text(browser, "#flash"), "the result")
        until(
            lambda: ids() == [] and "No job matches" in text(browser, "#explorer-status"),
            "the dead filter to match none",
        )
        worker = WorkerThread(s, [queue])
        try:
            for h in dead:
                until(lambda h=h: s.run(h.state()) == "completed", "the retried jobs", 30)
        finally:
            worker.stop()
        # One job's actions on its page: retry a completed job, cancel it, remove it.
        job = done[0]
        browser.get(f"{s.url}/ui/queues/{queue}/jobs/{job.id}")

        def act(label: str) -> None:
            # The button is there once the page has reloaded in the job's new state; found
            # and clicked in one script call, so a page being replaced cannot go stale under us.
            until(
                lambda: browser.execute_script(
                    "const b = document.querySelector(arguments[0]);if (b) b.click(); return !!b;",
                    f'button[data-job-action="{label}"]',
                ),
                f"the {label} button",
            )
            until(lambda: browser.find_element(By.ID, "confirm").get_attribute("open"), "confirm")
            browser.find_element(By.ID, "confirm-ok").click()

        act("retry")
        until(lambda: text(browser, "#job-state") == "queued", "the retried job")
        act("cancel")
        until(
            lambda: (
                text(browser, "#job-state") == "cancelled"
                and browser.find_elements(By.CSS_SELECTOR, '[data-job-action="remove"]')
            ),
            "the cancelled job's page",
        )
        shoot(browser, "job-cancelled")
        act("remove")
        until(lambda: browser.current_url.endswith(f"/ui/queues/{queue}"), "the queue page")
        assert s.run(s.app.job(queue, job.id)) is None


def test_delete_a_queue_served_by_a_worker_after_two_confirmations(
    browser: Any, valkey_url: str, uniq: Callable[[str], str]
) -> None:
    from selenium.webdriver.common.by import By

    queue = uniq("ui-del")
    with site(valkey_url, [queue]) as s:
        handles = s.run(
            s.app.enqueue_many(
                [
                    streamq.EnqueueRequest(name="slow", payload=Slow(steps=1, pause=0.01))
                    for _ in range(30)
                ]
            )
        )
        s.run(s.app.pause(queue))  # the jobs stay queued while a live worker serves the queue
        worker = WorkerThread(s, [queue])
        try:
            browser.get(f"{s.url}/ui/queues/{queue}")
            until(lambda: "30 job(s) on this page" in text(browser, "#explorer-status"), "jobs")
            browser.find_element(By.ID, "delete-queue").click()
            until(lambda: "cannot be undone" in text(browser, "#confirm-text"), "the question")
            shoot(browser, "queue-delete-confirm")
            browser.find_element(By.ID, "confirm-ok").click()
            # Live workers serve it: the server refuses (409) and the page asks again.
            until(lambda: "anyway" in text(browser, "#confirm-text"), "the second question")
            assert "Delete anyway" in text(browser, "#confirm-ok")
            browser.find_element(By.ID, "confirm-ok").click()
            # Emptied: the page leaves for the overview. The application still declares tasks
            # on the queue, so the overview lists it, with nothing in it.
            until(lambda: browser.current_url == f"{s.url}/ui/", "the overview")
            until(lambda: text(browser, "#live-state") == "live", "the live overview")
            assert cell(browser, queue, "waiting") == "0"
        finally:
            worker.stop()
        assert all(s.run(s.app.job(queue, h.id)) is None for h in handles)
