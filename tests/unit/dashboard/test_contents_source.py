"""ContentsSource: notebooks through participants' servers, against a fake hub + proxy.

The fake answers like the real pieces do: the hub's REST API (groups, users with their
servers, paginated, tokens created for a user), the proxy's routes to running servers
(Jupyter's contents API with directories, `type=file&format=text`, 404 for a missing
file) and the hub's 424 for a server that is not running. Hub API calls need the
dashboard's token; a participant's server takes only a token of that participant, and
records every header it is sent.
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
from dashboard.participant_tokens import ParticipantTokens
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
        self.forbidden: set[str] = set()  # servers that refuse every token (403)
        self.requests: list[tuple[str, str]] = []
        self.tokens: dict[str, str] = {}  # token -> its user
        self.token_ids: dict[str, str] = {}  # token id -> token
        self.token_bodies: list[dict[str, Any]] = []
        self.revoked: list[str] = []  # token ids deleted through the API
        # (user whose server it is, every header it was sent)
        self.server_requests: list[tuple[str, dict[str, str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.handle_any("GET")

            def do_POST(self) -> None:
                self.handle_any("POST")

            def do_DELETE(self) -> None:
                self.handle_any("DELETE")

            def handle_any(self, method: str) -> None:
                url = urlparse(self.path)
                path = unquote(url.path)
                auth = self.headers.get("Authorization", "")
                fake.requests.append((auth, url.path))
                if path.startswith("/user/"):
                    user = path.split("/")[2]
                    fake.server_requests.append((user, dict(self.headers.items())))
                    given = auth.removeprefix("token ")
                    if fake.tokens.get(given) != user or user in fake.forbidden:
                        return self.answer(403, {"message": "not your server"})
                elif auth != f"token {TOKEN}":
                    return self.answer(403, {"message": "bad token"})
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                status, answer = fake.route(method, path,
                                            {k: v[0] for k, v in parse_qs(url.query).items()},
                                            body)
                self.answer(status, answer)

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

    def new_token(self, user: str, body: Any) -> tuple[int, Any]:
        """POST /users/{user}/tokens as the hub does it for the dashboard's role
        (tokens!group=participants): participants only, their own server's scope only."""
        if user not in self.participants:
            return 403, {"message": f"User {user} not found or no permissions"}
        self.token_bodies.append(body)
        if body.get("scopes") != [f"access:servers!user={user}"]:
            return 400, {"message": "not the scope the dashboard should ask for"}
        number = len(self.token_ids) + 1
        token, token_id = f"tok-{user}-{number}", f"a{number}"
        self.tokens[token], self.token_ids[token_id] = user, token
        return 201, {"token": token, "id": token_id, "user": user,
                     "expires_at": "2026-11-22T11:00:00Z", "scopes": body["scopes"]}

    def revoke(self, user: str, token_id: str) -> tuple[int, Any]:
        token = self.token_ids.pop(token_id, None)
        if token is None or self.tokens.get(token) != user:
            return 404, {"message": "no such token"}
        del self.tokens[token]
        self.revoked.append(token_id)
        return 204, None

    def save(self, user: str, path: str, text: str, when: str = WHEN) -> None:
        self.files.setdefault(user, {})[path] = (text, when)

    def user_model(self, name: str) -> dict[str, Any]:
        servers = {"": {"ready": True}} if name in self.running else {}
        return {"name": name, "servers": servers}

    def route(self, method: str, path: str, query: dict[str, str],
              body: Any) -> tuple[int, Any]:
        parts = path.split("/")
        if method == "POST" and path.endswith("/tokens") and len(parts) == 6:
            return self.new_token(parts[4], body or {})
        if method == "DELETE" and len(parts) == 7 and parts[5] == "tokens":
            return self.revoke(parts[4], parts[6])
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


def hub_api(hub: FakeHub) -> HubAPI:
    return HubAPI(url=f"{hub.url}/hub/api", token=TOKEN)


@pytest.fixture
def source(hub: FakeHub) -> ContentsSource:
    return ContentsSource(hub_api(hub), hub.url)


def nb_text(user: str) -> str:
    return json.dumps(notebook(code(f"print('{user}')", 1, stream(f"{user} was here\n"))))


def test_mtime_is_nanoseconds_of_the_models_last_modified():
    expected = int(datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC).timestamp()) * 10**9
    assert mtime_ns(WHEN) == expected + 123456000
    assert mtime_ns("2026-11-22T10:00:00+00:00") == expected


def test_read_returns_the_saved_text_with_alices_own_token(hub, source):
    hub.save("alice", PATH, nb_text("alice"))
    got = source.read("alice", PATH)
    assert got.content == nb_text("alice")  # the file's text, unchanged
    assert got.mtime_ns == mtime_ns(WHEN)
    assert ("token tok-alice-1", f"/user/alice/api/contents/{PATH}") in hub.requests
    assert hub.token_bodies == [{"scopes": ["access:servers!user=alice"], "expires_in": 3600,
                                 "note": "dashboard: read notebooks"}]
    source.read("alice", PATH)
    assert len(hub.token_bodies) == 1  # kept, not asked for again


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
    small = ContentsSource(hub_api(hub), hub.url, max_bytes=1000)
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
        fresh = ContentsSource(hub_api(hub), hub.url)
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
    subdomains = choose_source(Settings(source="contents"),
                               server_url=lambda name: f"http://{name}.localhost:880/user/{name}/")
    assert subdomains.server_url("alice") == "http://alice.localhost:880/user/alice/"
    assert choose_source(Settings(source="contents")).server_url("alice") == \
        "http://127.0.0.1:8000/user/alice/"
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


# -- no credential for anyone else reaches a participant's server -------------------------
def test_no_server_ever_sees_the_dashboards_token_or_anyone_elses(hub, source, tmp_path):
    for user in ("alice", "bob"):
        hub.save(user, PATH, nb_text(user))
        hub.save(user, "day2/more.ipynb", nb_text(user))
    renderer = Renderer(tmp_path / "out", max_cells=5, max_lines=10)
    worker = RenderWorker(renderer, source, summary_lag=0)
    worker.start()  # catch-up: lists and reads every notebook through the servers
    try:
        assert worker.wait_idle(60)
        for user in ("alice", "bob"):
            worker.enqueue(user, PATH)
            worker.enqueue(user, "gone.ipynb")  # a 404, then asking the hub
            source.mtime_ns(user, "day2/more.ipynb")
        assert worker.wait_idle(60)
    finally:
        worker.stop()
    assert "alice was here" in renderer.view_file("alice", PATH).read_text()
    assert {user for user, _ in hub.server_requests} == {"alice", "bob"}
    for user, headers in hub.server_requests:
        sent = " ".join(headers.values())
        assert TOKEN not in sent, f"the dashboard's token went to {user}'s server"
        others = [t for t, owner in hub.tokens.items() if owner != user]
        assert not any(t in sent for t in others), f"{user}'s server got someone's token"
        assert headers["Authorization"].removeprefix("token ") in hub.tokens
        assert hub.tokens[headers["Authorization"].removeprefix("token ")] == user
    # The dashboard's own token went to the hub's API only.
    assert all(path.startswith("/hub/api/") for auth, path in hub.requests
               if auth == f"token {TOKEN}")


def test_tokens_are_renewed_before_they_expire_and_the_old_one_revoked(hub):
    now = [1000.0]
    tokens = ParticipantTokens(hub_api(hub), clock=lambda: now[0])
    source = ContentsSource(hub_api(hub), hub.url, tokens=tokens)
    hub.save("alice", PATH, nb_text("alice"))
    source.read("alice", PATH)
    now[0] += 2999  # 50 minutes: still more than 10 minutes left
    source.read("alice", PATH)
    assert tokens.created == 1
    now[0] += 2  # now less than 10 minutes are left: a new one, the old one revoked
    source.read("alice", PATH)
    assert tokens.created == 2 and hub.revoked == ["a1"]
    assert hub.server_requests[-1][1]["Authorization"] == "token tok-alice-2"


def test_a_refused_token_is_renewed_once(hub, source):
    hub.save("alice", PATH, nb_text("alice"))
    source.read("alice", PATH)
    del hub.tokens["tok-alice-1"]  # revoked behind the dashboard's back
    assert source.read("alice", PATH).content == nb_text("alice")
    assert source.tokens.created == 2
    hub.forbidden.add("alice")  # refuses every token: one more try, then an error
    with pytest.raises(SourceError, match="403"):
        source.read("alice", PATH)
    assert source.tokens.created == 3


def test_server_urls_and_headers_come_from_the_callable(hub):
    def server_url(name: str) -> tuple[str, dict[str, str]]:
        return f"{hub.url}/user/{name}", {"Host": f"{name}.workshop.example"}

    source = ContentsSource(hub_api(hub), server_url=server_url)
    hub.save("alice", PATH, nb_text("alice"))
    assert source.read("alice", PATH).content == nb_text("alice")
    assert hub.server_requests[-1][1]["Host"] == "alice.workshop.example"

    sneaky = ContentsSource(hub_api(hub), server_url=lambda name: (
        f"{hub.url}/user/{name}/", {"Authorization": f"token {TOKEN}"}))
    with pytest.raises(SourceError, match="credentials"):
        sneaky.read("alice", PATH)
    with pytest.raises(ValueError, match="proxy_url or server_url"):
        ContentsSource(hub_api(hub))


def test_no_token_from_the_hub_is_an_error_that_says_so(hub, source):
    hub.running.add("mallory")  # a server, but not a participant: the hub refuses
    with pytest.raises(SourceError, match="no token for mallory's server"):
        source.read("mallory", PATH)
    assert not any(user == "mallory" for user, _ in hub.server_requests)
