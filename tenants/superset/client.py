"""A small client for Superset's REST API, as the portal's service account.

Superset wants three things on every write: a Bearer token, the CSRF token
*and* the session cookie the CSRF call set, so one ``requests.Session``
carries all of them. Tokens expire after 15 minutes; a 401 triggers one
fresh login.
"""

from __future__ import annotations

from typing import Any

import requests

from tenants.settings import Settings


class SupersetError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str):
        super().__init__(f"Superset {method} {path} answered {status}: {body[:500]}")
        self.status = status


def rison(value: Any) -> str:
    """Encode ``value`` as Rison, the URL notation Superset's ``q`` parameter expects."""
    if value is True:
        return "!t"
    if value is False:
        return "!f"
    if value is None:
        return "!n"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, list | tuple):
        return "!(" + ",".join(rison(v) for v in value) + ")"
    if isinstance(value, dict):
        return "(" + ",".join(f"{k}:{rison(v)}" for k, v in value.items()) + ")"
    raise TypeError(f"cannot encode {type(value).__name__} as Rison")


class SupersetClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.username, self.password, self.timeout = username, password, timeout
        self.http = requests.Session()
        self._logged_in = False

    def _keep_cookies(self) -> None:
        """Behind the TLS proxy Superset marks its session cookie Secure (for browsers), while the portal may
        talk to it over plain HTTP on the internal network (EGOV_SUPERSET_INTERNAL_URL). The cookie carries
        the CSRF session and has to come back, so on such an address it is kept without the flag."""
        if self.base_url.startswith("http://"):
            for cookie in self.http.cookies:
                cookie.secure = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SupersetClient:
        from tenants.superset.server import SERVICE_USER

        return cls(settings.superset_api_url, SERVICE_USER, settings.superset_admin_password)

    def login(self) -> None:
        self.http.headers.pop("Authorization", None)
        response = self.http.post(self.base_url + "/api/v1/security/login", timeout=self.timeout, json={
            "username": self.username, "password": self.password, "provider": "db", "refresh": False})
        if response.status_code != 200:
            raise SupersetError("POST", "/api/v1/security/login", response.status_code, response.text)
        self.http.headers["Authorization"] = "Bearer " + response.json()["access_token"]
        csrf = self.http.get(self.base_url + "/api/v1/security/csrf_token/", timeout=self.timeout)
        self._keep_cookies()
        self.http.headers["X-CSRFToken"] = csrf.json()["result"]
        self.http.headers["Referer"] = self.base_url
        self._logged_in = True

    def clone(self) -> SupersetClient:
        """A client with this one's login (token, CSRF token, session cookie) on a session of its own, for
        another thread: a ``requests.Session`` is not safe to share between threads."""
        if not self._logged_in:
            self.login()
        other = SupersetClient(self.base_url, self.username, self.password, self.timeout)
        other.http.headers.update(self.http.headers)
        other.http.cookies.update(self.http.cookies)
        other._logged_in = True
        return other

    def request(self, method: str, path: str, expect: tuple[int, ...] = (200, 201), **kwargs) -> requests.Response:
        if not self._logged_in:
            self.login()
        response = self.http.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        if response.status_code == 401:
            self.login()
            response = self.http.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        self._keep_cookies()
        if response.status_code not in expect:
            raise SupersetError(method, path, response.status_code, response.text)
        return response

    def get(self, path: str, **kwargs) -> dict:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, payload: dict, **kwargs) -> dict:
        return self.request("POST", path, json=payload, **kwargs).json()

    def put(self, path: str, payload: dict, **kwargs) -> dict:
        return self.request("PUT", path, json=payload, **kwargs).json()

    def delete(self, path: str) -> None:
        self.request("DELETE", path, expect=(200, 204, 404))

    def find(self, resource: str, **equals: Any) -> list[dict]:
        """Objects of ``/api/v1/<resource>/`` whose columns equal the given values (first 100).

        A value may be an ``(operator, value)`` pair, e.g. ``database=("rel_o_m", 3)`` for a relation.
        """
        filters = [{"col": col, "opr": value[0], "value": value[1]} if isinstance(value, tuple)
                   else {"col": col, "opr": "eq", "value": value} for col, value in equals.items()]
        query = {"filters": filters,
                 "page": 0, "page_size": 100}
        return self.get(f"/api/v1/{resource}/", params={"q": rison(query)})["result"]

    def find_one(self, resource: str, **equals: Any) -> dict | None:
        found = self.find(resource, **equals)
        return found[0] if found else None
