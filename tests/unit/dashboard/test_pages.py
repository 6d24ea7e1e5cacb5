"""Pages, live-update JSON and adding participants, with the hub's token check as a table.

The browser tests (tests/e2e/appliance/test_dashboard.py) run the same routes behind the
real hub with a real Chromium; these check the contract quickly.
"""

from __future__ import annotations

import io
import json

import pytest

from dashboard.app import create_app
from dashboard.auth import AuthGate
from dashboard.settings import INSTRUCTOR_SCOPE, Settings
from workshop.roster import parse

ACCESS = "access:services!service=dashboard"
USERS = {
    "alice-token": {"name": "alice", "kind": "user", "scopes": [ACCESS]},
    "teacher-token": {"name": "teacher", "kind": "user", "scopes": [ACCESS, INSTRUCTOR_SCOPE]},
}
TEACHER = {"Authorization": "token teacher-token"}
ALICE = {"Authorization": "token alice-token"}
NOTEBOOK = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": "1/0",
     "outputs": [{"output_type": "error", "ename": "ZeroDivisionError",
                  "evalue": "division by zero", "traceback": ["ZeroDivisionError"]}]}]}


@pytest.fixture
def app(tmp_path):
    home = tmp_path / "home" / "alice" / "day1"
    home.mkdir(parents=True)
    (home / "intro.ipynb").write_text(json.dumps(NOTEBOOK))
    users = tmp_path / "users.txt"
    users.write_text("alice:a\nbob:b\n[instructors]\nteacher:t\n")
    settings = Settings(prefix="/services/dashboard/", state_dir=tmp_path / "state",
                        output_dir=tmp_path / "out", home_root=tmp_path / "home",
                        users_file=users, materials_dir=tmp_path / "materials",
                        ledger_dir=tmp_path / "ledger")
    gate = AuthGate(USERS.get, access_scopes={ACCESS}, instructor_scope=INSTRUCTOR_SCOPE,
                    cookie_name="dash", cookie_path="/services/dashboard/", secret=b"s" * 32)
    app = create_app(settings, gate=gate)
    worker = app.extensions["dashboard"]["worker"]
    assert worker.wait_idle(30)  # the catch-up render of alice's notebook
    yield app
    worker.stop()


URL = "/services/dashboard"


def test_pages_are_for_instructors_with_a_strict_csp(app):
    client = app.test_client()
    assert client.get(f"{URL}/", headers=ALICE).status_code == 403
    assert client.get(f"{URL}/").status_code == 401  # no hub login in this test app
    r = client.get(f"{URL}/", headers=TEACHER)
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert "<script>" not in r.get_data(as_text=True)  # no inline script on our pages


def test_index_json_lists_everyone_with_facts(app):
    data = app.test_client().get(f"{URL}/api/index", headers=TEACHER).json
    assert data["participants"] == ["alice", "bob"]
    alice = data["notebooks"]["day1/intro.ipynb"]["participants"]["alice"]
    assert alice["executed"] == 1 and alice["last_error"] is True


def test_summary_json_sends_fragments_only_for_changes(app):
    client = app.test_client()
    first = client.get(f"{URL}/api/summary/day1/intro.ipynb?since=-1", headers=TEACHER).json
    assert "ZeroDivisionError" in first["participants"]["alice"]["html"]
    later = client.get(f"{URL}/api/summary/day1/intro.ipynb?since={first['version']}",
                       headers=TEACHER).json
    assert "html" not in later["participants"]["alice"]
    assert client.get(f"{URL}/api/summary/../x.ipynb", headers=TEACHER).status_code in (400, 404)


def test_rendered_view_is_sandboxed(app):
    r = app.test_client().get(f"{URL}/rendered/alice/day1/intro.ipynb", headers=TEACHER)
    assert r.status_code == 200
    assert r.headers["Content-Security-Policy"].startswith("sandbox")


def test_download_zip(app):
    r = app.test_client().get(f"{URL}/download/day1/intro.ipynb", headers=TEACHER)
    assert r.status_code == 200 and r.mimetype == "application/zip"
    assert app.test_client().get(f"{URL}/download/none.ipynb", headers=TEACHER).status_code == 404


def test_add_participant_json(app, tmp_path):
    client = app.test_client()
    r = client.post(f"{URL}/users", json={"name": "carol"}, headers=TEACHER)
    assert r.status_code == 201 and r.json["password"]
    account = parse((tmp_path / "users.txt").read_text()).accounts["carol"]
    assert account.check_password(r.json["password"]) and not account.instructor
    assert client.post(f"{URL}/users", json={"name": "carol"}, headers=TEACHER).status_code == 400
    assert client.post(f"{URL}/users", json={"name": "eve"}, headers=ALICE).status_code == 403
    listing = client.get(f"{URL}/users", headers={**TEACHER, "Accept": "application/json"}).json
    assert "carol" in listing["participants"] and listing["instructors"] == ["teacher"]


def test_form_posts_need_the_csrf_token(app, tmp_path):
    client = app.test_client()
    client.set_cookie("dash", app.extensions["dashboard"]["gate"].serializer.dumps(
        "teacher-token"), path="/services/dashboard/")
    r = client.post(f"{URL}/users", data={"name": "mallory"})
    assert r.status_code == 403
    page = client.get(f"{URL}/users").get_data(as_text=True)
    token = page.split('name="_csrf" value="')[1].split('"')[0]
    r = client.post(f"{URL}/users", data={"name": "dora", "_csrf": token})
    assert r.status_code == 201 and "dora" in r.get_data(as_text=True)
    assert "mallory" not in (tmp_path / "users.txt").read_text()


def instructor_browser(app):
    """A test client holding the instructor's session cookie, and the page's form token."""
    client = app.test_client()
    client.set_cookie("dash", app.extensions["dashboard"]["gate"].serializer.dumps(
        "teacher-token"), path="/services/dashboard/")
    page = client.get(f"{URL}/handout").get_data(as_text=True)
    return client, page.split('name="_csrf" value="')[1].split('"')[0]


def test_upload_materials_into_a_folder(app):
    client, token = instructor_browser(app)
    materials = app.extensions["dashboard"]["settings"].materials_dir
    r = client.post(f"{URL}/materials", content_type="multipart/form-data", data={
        "_csrf": token, "folder": "day2", "files": (io.BytesIO(b"print(1)\n"), "task.py")})
    assert r.status_code == 200 and "Uploaded day2/task.py" in r.get_data(as_text=True)
    assert (materials / "day2" / "task.py").read_bytes() == b"print(1)\n"
    r = client.post(f"{URL}/materials", content_type="multipart/form-data", data={
        "_csrf": token, "folder": "../../etc", "files": (io.BytesIO(b"x"), "passwd")})
    assert r.status_code == 400 and not (materials.parent / "etc").exists()
    r = client.post(f"{URL}/materials", content_type="multipart/form-data", data={
        "folder": "day2", "files": (io.BytesIO(b"x"), "evil.py")})
    assert r.status_code == 403  # no form token
