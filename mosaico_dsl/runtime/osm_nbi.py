"""A small client of OSM's northbound interface (NBI, SOL005), and where its credentials
come from.

OSM publishes no client library on PyPI (``osmclient`` is installed from OSM's own
repositories), so this speaks the REST API osmclient speaks, with ``requests``:
``POST /osm/admin/v1/tokens`` (a bearer token for the project), the package catalogues
``/osm/vnfpkgm/v1/vnf_packages[_content]`` and ``/osm/nsd/v1/ns_descriptors[_content]``
(gzipped packages with ``Content-Filename`` and ``Content-File-MD5``), NS instances
``/osm/nslcm/v1/ns_instances[_content]`` and their operations
``/osm/nslcm/v1/ns_lcm_op_occs``, VIM accounts ``/osm/admin/v1/vim_accounts``.

Credentials: a YAML file (``--osm-config``, else ``$MOSAICO_OSM_CONFIG``, else
``~/.config/mosaico/osm.yaml`` if it exists) with ``url``, ``user``, ``password``,
``project``, ``verify`` (true, false or a CA file) and ``vim_account``; the environment
variables osmclient reads override it (``OSM_HOSTNAME`` — a URL or ``host[:port]``, port
9999 by default — ``OSM_USER``, ``OSM_PASSWORD``, ``OSM_PROJECT``). The password and the
token are never printed, logged or stored: errors quote the method, the path, the HTTP
status and OSM's ``detail``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..diagnostics import CompileError, error

__all__ = ["OsmCredentials", "OsmError", "OsmNbi", "load_credentials"]

DEFAULT_PORT = 9999


@dataclass(frozen=True)
class OsmCredentials:
    url: str
    user: str
    password: str = field(repr=False)
    project: str = "admin"
    verify: bool | str = True
    vim_account: str | None = None


class OsmError(Exception):
    """An NBI request answered with an error (or not at all): no secret in the text."""

    def __init__(self, method: str, path: str, status: int | None, detail: str) -> None:
        self.method, self.path, self.status, self.detail = method, path, status, detail
        where = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{method} {path}: {where}: {detail}")


def _url(value: str) -> str:
    if "://" in value:
        return value.rstrip("/")
    host, _, port = value.partition(":")
    return f"https://{host}:{port or DEFAULT_PORT}"


def load_credentials(config: Path | str | None = None,
                     environ: Mapping[str, str] | None = None) -> OsmCredentials:
    """The OSM endpoint and account, from the config file and the environment (E1221)."""
    env = os.environ if environ is None else environ
    path = Path(config) if config else (Path(env["MOSAICO_OSM_CONFIG"])
                                        if env.get("MOSAICO_OSM_CONFIG") else None)
    default = Path.home() / ".config" / "mosaico" / "osm.yaml"
    data: dict[str, Any] = {}
    if path is None and default.is_file():
        path = default
    if path is not None:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise CompileError([error("E1221", f"cannot read the OSM configuration {path}: "
                                               f"{type(e).__name__}")]) from None
        if not isinstance(data, dict):
            raise CompileError([error("E1221", f"{path}: not a mapping of settings",
                                      hint="url: ..., user: ..., password: ..., project: ...")])
    overrides = {"url": env.get("OSM_HOSTNAME"), "user": env.get("OSM_USER"),
                 "password": env.get("OSM_PASSWORD"), "project": env.get("OSM_PROJECT")}
    data.update({k: v for k, v in overrides.items() if v})
    missing = [k for k in ("url", "user", "password") if not data.get(k)]
    if missing:
        raise CompileError([error(
            "E1221", f"OSM credentials incomplete: no {', '.join(missing)}",
            hint="set OSM_HOSTNAME, OSM_USER, OSM_PASSWORD (and OSM_PROJECT), or write them "
                 "in a file given with --osm-config")])
    unknown = sorted(set(data) - {"url", "user", "password", "project", "verify",
                                  "vim_account"})
    if unknown:
        raise CompileError([error("E1221", f"OSM configuration: unknown setting(s) "
                                           f"{', '.join(unknown)}",
                                  hint="known: url, user, password, project, verify, "
                                       "vim_account")])
    verify = data.get("verify", True)
    return OsmCredentials(_url(str(data["url"])), str(data["user"]), str(data["password"]),
                          str(data.get("project") or "admin"),
                          verify if isinstance(verify, bool) else str(verify),
                          str(data["vim_account"]) if data.get("vim_account") else None)


class OsmNbi:
    """One authenticated session with an NBI; the token is renewed when it expires."""

    def __init__(self, credentials: OsmCredentials, timeout: float = 60.0) -> None:
        import requests

        self.credentials = credentials
        self.timeout = timeout
        self._session = requests.Session()
        self._session.verify = credentials.verify
        self._token: str | None = None

    # ------------------------------------------------------------------ plumbing

    def _authenticate(self) -> None:
        c = self.credentials
        body = self._send("POST", "/osm/admin/v1/tokens", auth=False, json={
            "username": c.user, "password": c.password, "project_id": c.project})
        self._token = body.get("id") if isinstance(body, dict) else None
        if not self._token:
            raise OsmError("POST", "/osm/admin/v1/tokens", None, "no token in the answer")

    def _send(self, method: str, path: str, *, auth: bool = True, retry: bool = True,
              **kwargs) -> Any:
        import requests

        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        if auth:
            if self._token is None:
                self._authenticate()
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            r = self._session.request(method, self.credentials.url + path, headers=headers,
                                      timeout=self.timeout, **kwargs)
        except requests.RequestException as e:
            raise OsmError(method, path, None, type(e).__name__) from None
        if r.status_code == 401 and auth and retry:  # expired token: once more, fresh
            self._token = None
            return self._send(method, path, auth=True, retry=False, headers=headers,
                              **kwargs)
        if r.status_code >= 400:
            raise OsmError(method, path, r.status_code, _detail(r))
        if not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            return yaml.safe_load(r.text)

    # ------------------------------------------------------------------ API

    def get(self, path: str, **params: str) -> Any:
        return self._send("GET", path, params=params or None)

    def find(self, path: str, **filters: str) -> list[dict]:
        """A catalogue's entries matching ``filters`` (the NBI filters by field)."""
        found = self.get(path, **filters) or []
        return [e for e in found if all(str(e.get(k)) == v for k, v in filters.items())]

    def post(self, path: str, body: dict) -> Any:
        return self._send("POST", path, json=body)

    def delete(self, path: str) -> Any:
        return self._send("DELETE", path)

    def upload(self, path: str, filename: str, data: bytes, md5: str) -> Any:
        return self._send("POST", path, data=data, headers={
            "Content-Type": "application/gzip", "Content-Filename": filename,
            "Content-File-MD5": md5})


def _detail(r) -> str:
    """OSM's message from an error body (``{"code", "status", "detail"}``)."""
    try:
        body = r.json()
    except ValueError:
        try:
            body = yaml.safe_load(r.text)
        except yaml.YAMLError:
            body = None
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])
    text = r.text.strip()
    return json.dumps(text[:200]) if text else r.reason or "error"
