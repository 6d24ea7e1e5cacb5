"""ContentsSource: notebooks through participants' servers, against a fake hub + proxy.

The fake answers like the real pieces do: the hub's REST API (groups, users with their
servers, paginated), the proxy's routes to running servers (Jupyter's contents API with
directories, `type=file&format=text`, 404 for a missing file) and the hub's 424 for a
server that is not running.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from dashboard.contents_source import ContentsSource, ServerUnavailable, choose_source, mtime_ns
from dashboard.render import Renderer
from dashboard.settings import Settings
from dashboard.sources import FileSystemSource, NotebookMissing, SourceError
from dashboard.worker import RenderWorker
from tests.unit.dashboard.nbfactory import code, notebook, stream
from workshop.hubapi import HubAPI

TOKEN = "dashboard-service-token"
PATH = "day1/intro.ipynb"
WHEN = "2026-11-22T10:00:00.123456Z"


class FakeHub:
    """Hub API + proxy + participants' Jupyter servers, in one loopback HTTP server."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, tuple[str, str]]] = {}  # user -> path -> (text, when)
        self.participants: set[str] = set()
        self.running: set[str] = set()
        self.forbidden: set[str] = set()  # servers that answer 403 to the dashboard
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                fake.requests.append((self.headers.get("Authorization", ""), url.path))
                if self.headers.get("Authorization") != f"token {TOKEN}":
                    return self.answer(403, {"message": "bad token"})
                status, body = fake.route(unquote(url.path),
                                          {k: v[0] for k, v in parse_qs(url.query).items()})
                self.answer(status, body)

            def answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def save(self, user: str, path: str, text: str, when: str = WHEN) -> None:
        self.files.setdefault(user, {})[path] = (text, when)

    def user_model(self, name: str) -> dict[str, Any]:
        servers = {"": {"ready": True}} if name in self.running else {}
        return {"name": name, "servers": servers}

    def route(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/hub/api/groups/participants":
            return 200, {"name": "participants", "users": sorted(self.participants)}
        if path == "/hub/api/users":
            users = [self.user_model(u) for u in sorted(self.running)]
            return 200, {"items": users, "_pagination": {"next": None}}
        if path.startswith("/hub/api/users/"):
            name = path.rsplit("/", 1)[1]
            known = name in self.participants or name in self.running
            return (200, self.user_model(name)) if known else (404, {"message": "no user"})
        if path.startswith("/user/"):
            _, _, user, rest = path.split("/", 3)
            if user not in self.running:
                return 424, {"message": f"{user}'s server is not running"}
            if user in self.forbidden:
                return 403, {"message": "dashboard is not allowed"}
            return self.contents(user, rest.removeprefix("api/contents").strip("/"), query)
        return 404, {"message": "not found"}

    def contents(self, user: str, path: str, query: dict[str, str]) -> tuple[int, Any]:
        files = self.files.get(user, {})
        if path in files:
            text, when = files[path]
            model = {"name": path.rsplit("/", 1)[-1], "path": path, "last_modified": when,
                     "type": "file" if query.get("type") == "file" else "notebook",
                     "size": len(text), "content": None}
            if query.get("content") == "1":
                model.update(content=text, format="text")
            return 200, model
        children: dict[str, dict[str, Any]] = {}
        for p, (_, when) in files.items():
            if path and not p.startswith(path + "/"):
                continue
            rest = p[len(path) + 1:] if path else p
            name = rest.split("/", 1)[0]
            child = f"{path}/{name}" if path else name
            kind = "directory" if "/" in rest else (
                "notebook" if name.endswith(".ipynb") else "file")
            children[name] = {"name": name, "path": child, "type": kind,
                              "last_modified": when}
        if not children and path:
            return 404, {"message": f"No such file or directory: {path}"}
        return 200, {"name": path, "path": path, "type": "directory",
                     "content": list(children.values())}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    fake = FakeHub()
    fake.participants = {"alice", "bob"}
    fake.running = {"alice", "bob", "teacher"}  # an instructor's server is no participant's
    yield fake
    fake.close()


@pytest.fixture
def source(hub: FakeHub) -> ContentsSource:
    return ContentsSource(HubAPI(url=f"{hub.url}/hub/api", token=TOKEN), hub.url, TOKEN)


def nb_text(user: str) -> str:
    return json.dumps(notebook(code(f"print('{user}')", 1, stream(f"{user} was here\n"))))


def test_mtime_is_nanoseconds_of_the_models_last_modified():
    expected = int(datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC).timestamp()) * 10**9
    assert mtime_ns(WHEN) == expected + 123456000
    assert mtime_ns("2026-11-22T10:00:00+00:00") == expected


def test_read_returns_the_saved_text_with_the_services_token(hub, source):
    hub.save("alice", PATH, nb_text("alice"))
    got = source.read("alice", PATH)
    assert got.content == nb_text("alice")  # the file's text, unchanged
    assert got.mtime_ns == mtime_ns(WHEN)
    assert ("token " + TOKEN, f"/user/alice/api/contents/{PATH}") in hub.requests


def test_list_walks_running_participants_only_and_skips_hidden(hub, source):
    hub.save("alice", PATH, nb_text("alice"))
    hub.save("alice", "top.ipynb", nb_text("alice"))
    hub.save("alice", ".hidden/secret.ipynb", nb_text("alice"))
    hub.save("alice", "data/.ipynb_checkpoints/intro-checkpoint.ipynb", "{}")
    hub.save("alice", "data/table.csv", "a,b\n")
    hub.save("bob", PATH, nb_text("bob"))
    hub.save("teacher", "answers.ipynb", nb_text("teacher"))
    hub.save("carol", PATH, nb_text("carol"))  # participant whose server is stopped
    hub.participants.add("carol")
    listed = sorted(source.list())
    assert listed == [("alice", PATH, mtime_ns(WHEN)), ("alice", "top.ipynb", mtime_ns(WHEN)),
                      ("bob", PATH, mtime_ns(WHEN))]
    assert not any(p.startswith("/user/teacher/") for _, p in hub.requests)


def test_a_file_deleted_on_a_running_server_is_missing(hub, source):
    with pytest.raises(NotebookMissing):
        source.read("alice", "gone.ipynb")
    assert source.mtime_ns("alice", "gone.ipynb") is None


def test_a_stopped_server_is_unavailable_never_missing(hub, source):
    hub.save("alice", PATH, nb_text("alice"))
    assert source.read("alice", PATH).mtime_ns == mtime_ns(WHEN)
    hub.running.discard("alice")
    with pytest.raises(ServerUnavailable) as e:
        source.read("alice", PATH)
    assert isinstance(e.value, SourceError) and not isinstance(e.value, NotebookMissing)
    assert source.mtime_ns("alice", PATH) == mtime_ns(WHEN)  # as last seen
    assert source.mtime_ns("alice", "never-seen.ipynb") == 0  # exists as far as we know


def test_a_refused_server_is_an_error_not_a_missing_notebook(hub, source):
    hub.save("alice", PATH, nb_text("alice"))
    hub.forbidden.add("alice")
    with pytest.raises(SourceError) as e:
        source.read("alice", PATH)
    assert "403" in str(e.value) and not isinstance(e.value, NotebookMissing)


def test_too_large_notebooks_are_refused_without_reading_them_whole(hub):
    small = ContentsSource(HubAPI(url=f"{hub.url}/hub/api", token=TOKEN), hub.url, TOKEN,
                           max_bytes=1000)
    hub.save("alice", PATH, "x" * 5000)
    with pytest.raises(SourceError, match="too large"):
        small.read("alice", PATH)


def test_worker_keeps_last_render_while_the_server_is_stopped(hub, source, tmp_path):
    hub.save("alice", PATH, nb_text("alice"))
    hub.save("bob", PATH, nb_text("bob"))
    renderer = Renderer(tmp_path / "out", max_cells=5, max_lines=10)
    worker = RenderWorker(renderer, source, summary_lag=0)
    assert worker.catch_up() == 2
    worker.start(catch_up=False)
    try:
        assert worker.wait_idle(60)
        view = renderer.view_file("alice", PATH)
        assert "alice was here" in view.read_text()

        # The idle culler stopped alice: a rescan (or a dashboard restart) keeps her view.
        hub.running.discard("alice")
        fresh = ContentsSource(HubAPI(url=f"{hub.url}/hub/api", token=TOKEN), hub.url, TOKEN)
        for s in (source, fresh):
            worker.source = s
            worker.catch_up()
            assert worker.wait_idle(30)
            assert "alice was here" in view.read_text()

        # Running again, and the notebook really was deleted: now it goes.
        hub.running.add("alice")
        del hub.files["alice"][PATH]
        worker.catch_up()
        assert worker.wait_idle(30)
        assert not view.exists()
        assert "bob was here" in renderer.view_file("bob", PATH).read_text()
    finally:
        worker.stop()


def test_choose_source(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    assert isinstance(choose_source(Settings(home_root=home)), FileSystemSource)
    # Without the hub's token (not a hub service) auto stays on the disk.
    assert isinstance(choose_source(Settings(home_root=tmp_path / "none")), FileSystemSource)
    with pytest.raises(RuntimeError, match="token"):
        choose_source(Settings(home_root=home, source="contents"))
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")
    assert isinstance(choose_source(Settings(home_root=tmp_path / "none")), ContentsSource)
    assert isinstance(choose_source(Settings(home_root=home)), FileSystemSource)
    assert isinstance(choose_source(Settings(home_root=home, source="contents")),
                      ContentsSource)
    with pytest.raises(ValueError, match="DASHBOARD_SOURCE"):
        choose_source(Settings(source="disk"))


def test_settings_read_the_source_from_the_environment():
    s = Settings.from_env({"DASHBOARD_SOURCE": "contents",
                           "DASHBOARD_PROXY_URL": "http://127.0.0.1:9000"})
    assert (s.source, s.proxy_url) == ("contents", "http://127.0.0.1:9000")
    assert Settings.from_env({}).source == "auto"


def test_paths_stay_inside_the_home(source):
    for path in ("../bob/x.ipynb", "/etc/passwd.ipynb", "a/../../b.ipynb"):
        with pytest.raises(ValueError):
            source.read("alice", path)
