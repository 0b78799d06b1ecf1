"""Authentication and roles over real HTTP (issue 7, section 2), and the cross-site rules
for state-changing calls (section 3)."""

from __future__ import annotations

import base64
import json
import os
import tempfile
from typing import Any, ClassVar

import pytest

from luigid.auth import guard as guard_module
from luigid.auth.config import AuthConfig, auth_config_from
from luigid.auth.guard import Guard, role_allows
from luigid.auth.passwords import hash_password, hash_token, new_token, parse_token_hash
from luigid.auth.users import User, Users, write_users
from luigid.config import ConfigError, CorsConfig
from luigid.core.rpc import RPC_METHODS
from tests.web.support import LuigidCase, error_of

PASSWORDS = {"ada": "admin-pass-1", "wes": "worker-pass-1", "vic": "viewer-pass-1"}
ROLES = {"ada": "admin", "wes": "worker", "vic": "viewer"}
ADMIN_CALLS = {
    "mark_as_done",
    "forgive_failures",
    "re_enable_task",
    "disable_worker",
    "set_worker_processes",
    "pause",
    "unpause",
    "update_resource",
    "update_resources",
    "send_scheduler_message",
}


def basic(name: str, password: str | None = None) -> dict[str, str]:
    secret = PASSWORDS[name] if password is None else password
    token = base64.b64encode(f"{name}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def make_users_file(folder: str) -> tuple[str, str]:
    """A users file with ada/wes/vic and a viewer bearer token; returns (path, token)."""
    users = Users()
    for name, password in PASSWORDS.items():
        users.by_name[name] = User(name, ROLES[name], password_hashes=[hash_password(password)])
    token = new_token()
    bot = User("dash", "viewer", token_digests=[parse_token_hash(hash_token(token))])
    users.by_name["dash"] = bot
    path = os.path.join(folder, "users")
    write_users(path, users)
    return path, token


def auth_section(folder: str) -> str:
    """A config's ``[auth]`` section: authentication on, with make_users_file's users."""
    users_file, _ = make_users_file(folder)
    return f"[auth]\nenabled = true\nusers_file = {users_file}\n"


class AuthCase(LuigidCase):
    folder: ClassVar[tempfile.TemporaryDirectory[str]]
    users_file: ClassVar[str]
    token: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.folder = tempfile.TemporaryDirectory()
        cls.users_file, cls.token = make_users_file(cls.folder.name)
        cls.sections = {"auth": {"enabled": "true", "users_file": cls.users_file}}

    @classmethod
    def tearDownClass(cls) -> None:
        cls.folder.cleanup()
        super().tearDownClass()

    def call(self, method: str, data: Any = None, who: str | None = None, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}))
        if who is not None:
            headers.update(basic(who))
        return self.post(method, data if data is not None else {}, headers=headers, **kw)


class TestAuthentication(AuthCase):
    def test_health_check_stays_open(self) -> None:
        assert self.fetch("/", method="HEAD").code == 204

    def test_no_credentials_is_401_with_a_challenge(self) -> None:
        for response in (
            self.call("task_list"),
            self.fetch("/"),
            self.fetch("/static/visualiser/index.html"),
        ):
            assert response.code == 401
            assert response.headers["WWW-Authenticate"] == 'Basic realm="luigid", charset="UTF-8"'
            assert "authentication required" in error_of(response)

    def test_bad_credentials_are_401(self) -> None:
        for headers in (
            basic("ada", "wrong-password"),
            basic("nobody", "admin-pass-1"),
            {"Authorization": "Basic !!!not-base64"},
            {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
            {"Authorization": "Basic " + base64.b64encode(b"ada:\xff\xfe").decode()},
            {"Authorization": "Bearer lgd_not-a-real-token"},
            {"Authorization": "Bearer "},
            {"Authorization": "Digest ada"},
        ):
            response = self.call("task_list", headers=headers)
            assert response.code == 401, headers
            assert "WWW-Authenticate" in response.headers

    def test_each_role_reads(self) -> None:
        for who in PASSWORDS:
            response = self.call("task_list", {"status": "PENDING"}, who=who)
            assert response.code == 200, who
            assert json.loads(response.body) == {"response": {}}

    def test_bearer_token(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        assert self.call("worker_list", headers=headers).code == 200
        assert self.fetch("/metrics", headers=headers).code == 200
        assert self.call("add_task", {"worker": "w", "task_id": "T"}, headers=headers).code == 403

    def test_repeated_logins_keep_working(self) -> None:
        # the second and later requests are served from the verified-credentials cache
        for _ in range(3):
            assert self.call("is_paused", who="wes").code == 200
        assert self.call("is_paused", headers=basic("wes", "worker-pass-2")).code == 401


class TestRoles(AuthCase):
    def test_admin_calls_match_the_issue(self) -> None:
        admin = {name for name, spec in RPC_METHODS.items() if spec.role == "admin"}
        assert admin == ADMIN_CALLS | {"prune"}  # an operator's call too

    def test_worker_runs_a_task_but_may_not_administer(self) -> None:
        assert self.call("add_task", {"worker": "w", "task_id": "T", "family": "T"}, who="wes").code == 200
        work = json.loads(self.call("get_work", {"worker": "w", "host": "h"}, who="wes").body)["response"]
        assert work["task_id"] == "T"
        response = self.call("mark_as_done", {"task_id": "T"}, who="wes")
        assert response.code == 403
        assert error_of(response) == "user 'wes' has role worker; mark_as_done needs admin"

    def test_viewer_may_not_act_or_report(self) -> None:
        for method, data in (
            ("add_task", {"worker": "w", "task_id": "T"}),
            ("ping", {"worker": "w"}),
            ("pause", {}),
            ("disable_worker", {"worker": "w"}),
        ):
            response = self.call(method, data, who="vic")
            assert response.code == 403, method
            assert "has role viewer" in error_of(response)
        assert self.scheduler.state.get_task("T") is None

    def test_admin_does_everything(self) -> None:
        assert self.call("add_task", {"worker": "w", "task_id": "T", "family": "T"}, who="ada").code == 200
        assert self.call("get_work", {"worker": "w"}, who="ada").code == 200
        response = self.call("mark_as_done", {"task_id": "T"}, who="ada")
        assert json.loads(response.body)["response"] == {"task_id": "T", "status": "DONE"}
        assert self.call("pause", who="ada").code == 200
        assert json.loads(self.call("is_paused", who="vic").body)["response"] == {"paused": True}

    def test_role_order(self) -> None:
        assert role_allows("admin", "worker") and role_allows("worker", "viewer")
        assert not role_allows("viewer", "worker") and not role_allows("worker", "admin")

    def test_pages_need_a_viewer(self) -> None:
        for path in ("/static/visualiser/index.html", "/metrics", "/"):
            assert self.fetch(path, follow_redirects=False).code == 401, path
            assert self.fetch(path, headers=basic("vic"), follow_redirects=False).code in (200, 302), path

    def test_preflight_stays_open(self) -> None:
        assert self.fetch("/api/task_list", method="OPTIONS").code == 204


class TestStateChangesNeedPost(AuthCase):
    def test_get_is_refused_for_calls_that_change_state(self) -> None:
        for method in ("mark_as_done", "ping", "add_task", "get_scheduler_message_response"):
            response = self.get(method, {}, headers=basic("ada"))
            assert response.code == 405, method
            assert response.headers["Allow"] == "POST"
            assert "changes scheduler state: send it as POST" in error_of(response)

    def test_get_still_reads(self) -> None:
        assert self.get("task_list", {}, headers=basic("vic")).code == 200
        assert self.get("worker_list", None, headers=basic("vic")).code == 200


class TestCrossSite(AuthCase):
    cors = CorsConfig(enabled=True, allowed_origins=("https://dash.example",))

    def admin_post(self, **headers: str) -> Any:
        return self.call("pause", who="ada", headers=headers)

    def test_luigi_workers_and_scripts_need_no_header(self) -> None:
        assert self.admin_post().code == 200  # no Origin, no Sec-Fetch-*: not a browser

    def test_same_origin_browser_call_with_the_header(self) -> None:
        host = f"127.0.0.1:{self.get_http_port()}"
        response = self.admin_post(
            Origin=f"http://{host}",
            **{"X-Requested-With": "luigid-visualiser", "Sec-Fetch-Site": "same-origin"},
        )
        assert response.code == 200

    def test_browser_call_without_the_header(self) -> None:
        host = f"127.0.0.1:{self.get_http_port()}"
        for headers in ({"Origin": f"http://{host}"}, {"Sec-Fetch-Site": "same-origin"}):
            response = self.admin_post(**headers)
            assert response.code == 403
            assert "must carry an X-Requested-With header" in error_of(response)
        assert self.scheduler._paused is False

    def test_other_sites_are_refused(self) -> None:
        forged = {"X-Requested-With": "x"}
        for headers in (
            {"Origin": "http://evil.example", **forged},
            {"Origin": "null", **forged},
            {"Sec-Fetch-Site": "cross-site", **forged},
        ):
            response = self.admin_post(**headers)
            assert response.code == 403, headers
            assert "cross-site request" in error_of(response)
        assert self.scheduler._paused is False

    def test_origin_cors_allows(self) -> None:
        response = self.admin_post(Origin="https://dash.example", **{"X-Requested-With": "dash"})
        assert response.code == 200

    def test_behind_a_proxy_the_forwarded_host_counts(self) -> None:
        headers = {"Origin": "https://luigi.corp.example", "X-Forwarded-Host": "luigi.corp.example"}
        assert self.admin_post(**headers, **{"X-Requested-With": "luigid-visualiser"}).code == 200

    def test_reads_are_not_checked(self) -> None:
        response = self.call("task_list", who="vic", headers={"Origin": "http://evil.example"})
        assert response.code == 200


class TestUsersFileChanges(AuthCase):
    def test_new_users_are_picked_up_without_a_restart(self) -> None:
        with open(self.users_file, encoding="utf-8") as src:
            original = src.read()
        try:
            assert self.call("is_paused", headers=basic("ada")).code == 200
            users = Users()
            users.by_name["neo"] = User("neo", "viewer", password_hashes=[hash_password("neo-pass-1")])
            write_users(self.users_file, users)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(guard_module, "USERS_FILE_CHECK_SECONDS", 0.0)
                guard: Guard = self._app.settings["guard"]
                guard._next_check = 0.0
                assert self.call("is_paused", headers=basic("neo", "neo-pass-1")).code == 200
                # ada is gone, and her cached login with her
                assert self.call("is_paused", headers=basic("ada")).code == 401
                with open(self.users_file, "w", encoding="utf-8") as broken:
                    broken.write("this is not a users file\n")
                assert self.call("is_paused", headers=basic("neo", "neo-pass-1")).code == 200
        finally:
            with open(self.users_file, "w", encoding="utf-8") as out:
                out.write(original)


def test_auth_is_off_by_default() -> None:
    assert auth_config_from({}) == AuthConfig()
    assert not Guard().enabled


def test_auth_config_errors(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match=r"authentication needs \[auth\] users_file"):
        auth_config_from({"auth": {"enabled": "true"}})
    with pytest.raises(ConfigError, match=r"\[auth\] enabled: expected true or false"):
        auth_config_from({"auth": {"enabled": "yes please"}})
    with pytest.raises(ConfigError, match=r"\[auth\] passwords: unknown key"):
        auth_config_from({"auth": {"passwords": "x"}})
    config = auth_config_from({"auth": {"enabled": "true", "users_file": str(tmp_path / "missing")}})
    with pytest.raises(ConfigError, match=r"cannot read users file .*missing: No such file"):
        Guard(config)
    bad = tmp_path / "bad"
    bad.write_text("ada:root:scrypt$1$2$3$x$y\n")
    with pytest.raises(ConfigError, match=r"bad line 1: unknown role 'root'"):
        Guard(AuthConfig(enabled=True, users_file=str(bad)))
