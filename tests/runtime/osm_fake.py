"""OSM's NBI, in memory, behind ``requests_mock``: the HTTP boundary of the OSM target.

No OSM can run here (it is a dozen services on Kubernetes), so its NBI is played at the
REST API osmclient uses, with the rules that matter to a deployment done for real where
this machine can: a package is unpacked as the NBI unpacks it (one directory, one
descriptor at its top, ``cloud_init/`` files), its MD5 checked, and the descriptor loaded
into OSM's information model *built from OSM's YANG* (``tests/backends/vnf/osm_im.py``)
and checked with the NBI's cross-reference rules (``osm_nbi_rules.py``) — a descriptor OSM
would refuse is refused with HTTP 422 and OSM's message. Identifiers are unique per
project (409), descriptors in use cannot be deleted (409), an NS instantiates and
terminates through operations that take ``settle`` polls, tokens are required.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from fault_support import after_request

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends" / "vnf"))
from osm_nbi_rules import nsd_problems, vnfd_problems

URL = "https://osm.example.com:9999"
USER, PASSWORD, PROJECT = "admin", "osm-secret-never-logged", "admin"
VIM = {"_id": "8f3c2a10-0000-4000-8000-00000000a001", "name": "mosaico"}


@dataclass
class FakeNbi:
    im: object  # osm_im.OsmIm
    settle: int = 2  # op polls before an operation finishes
    fail_instantiation: str | None = None  # the op ends FAILED with this message
    fail_times: int | None = None  # ... this many times (None: always)
    stuck: bool = False
    fail_at: int | None = None  # the Nth request answers 500
    vnfds: dict[str, dict] = field(default_factory=dict)  # _id -> record
    nsds: dict[str, dict] = field(default_factory=dict)
    nsrs: dict[str, dict] = field(default_factory=dict)
    ops: dict[str, dict] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    log: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)
    count: int = 0

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _error(context, status: int, detail: str) -> dict:
        context.status_code = status
        return {"code": {401: "UNAUTHORIZED", 404: "NOT_FOUND", 409: "CONFLICT",
                         422: "UNPROCESSABLE_ENTITY"}.get(status, "ERROR"),
                "status": status, "detail": detail}

    def calls(self) -> list[tuple[str, str]]:
        return [(m, re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "ID", p)) for m, p in self.log]

    # ------------------------------------------------------------------ dispatch

    def handle(self, request, context):
        answer = self._answer(request, context)
        after_request(self)  # a forked client's fake: saved, and maybe the client killed
        return answer

    def _answer(self, request, context):
        self.count += 1
        path = request.path_url.split("?")[0]
        self.log.append((request.method, request.path_url))
        if self.fail_at is not None and self.count == self.fail_at:
            return self._error(context, 500, "Internal Server Error")
        if path == "/osm/admin/v1/tokens":
            body = request.json()
            if (body.get("username"), body.get("password"), body.get("project_id")) != \
                    (USER, PASSWORD, PROJECT):
                return self._error(context, 401, "Invalid username or password")
            token = uuid.uuid4().hex
            self.tokens.add(token)
            return {"_id": token, "id": token, "project_id": PROJECT}
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            return self._error(context, 401, "Needed a token or Authorization http header")
        query = {k: v[0] for k, v in request.qs.items()}
        parts = path.removeprefix("/osm/").split("/")
        if path == "/osm/admin/v1/vim_accounts":
            return [VIM]
        if parts[0] == "vnfpkgm":
            return self._packages(request, context, parts, query, self.vnfds, "vnfd")
        if parts[0] == "nsd":
            return self._packages(request, context, parts, query, self.nsds, "nsd")
        if parts[:2] == ["nslcm", "v1"]:
            return self._nslcm(request, context, parts[2:], query)
        return self._error(context, 404, f"unknown path {path}")

    # ------------------------------------------------------------------ packages

    def _packages(self, request, context, parts, query, catalogue, kind):
        if request.method == "GET" and len(parts) == 3:
            # the NBI filters a catalogue by any field given in the query string (lowered,
            # as query values are matched case-sensitively against the record)
            return [r for r in catalogue.values()
                    if all(str(r.get(k)) == v for k, v in query.items())]
        if request.method == "POST" and parts[2].endswith("_content"):
            return self._onboard(request, context, catalogue, kind)
        if request.method == "DELETE" and len(parts) == 4:
            rec = catalogue.get(parts[3])
            if rec is None:
                return self._error(context, 404, f"{kind} {parts[3]} not found")
            if kind == "vnfd" and any(rec["id"] in n.get("vnfd-id", [])
                                      for n in self.nsds.values()):
                return self._error(context, 409, "There is at least one NS package "
                                                 "referencing this descriptor")
            if kind == "nsd" and any(n["nsd-id"] == rec["_id"] for n in self.nsrs.values()):
                return self._error(context, 409, "There is at least one NS instance using "
                                                 "this descriptor")
            del catalogue[parts[3]]
            context.status_code = 204
            return None
        return self._error(context, 405, "method not allowed")

    def _onboard(self, request, context, catalogue, kind):
        data = request.body
        if request.headers.get("Content-Type") != "application/gzip":
            return self._error(context, 400, "expected application/gzip")
        if hashlib.md5(data).hexdigest() != request.headers.get("Content-File-MD5"):
            return self._error(context, 409, "Error, MD5 mismatch")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = tar.getmembers()
            files = {m.name: tar.extractfile(m).read().decode() for m in members if m.isfile()}
        names = [m.name.split("/") for m in members]
        if any(n[0] in ("", "..") or ".." in n for n in names):
            return self._error(context, 400, "Absolute path or '..' are not allowed")
        if any(len(n) == 1 and not m.isdir() for n, m in zip(names, members, strict=True)):
            return self._error(context, 400, "All files must be inside a dir for package "
                                             "descriptor tar.gz")
        descriptors = [p for p in files if p.count("/") == 1 and
                       p.endswith((".yaml", ".yml", ".json"))]
        if len(descriptors) != 1:
            return self._error(context, 400, "Found more than one descriptor file at package "
                                             "descriptor tar.gz" if descriptors else
                               "Not found any descriptor file at package descriptor tar.gz")
        doc = yaml.safe_load(files[descriptors[0]])
        try:
            self.im.load(kind, doc)
        except Exception as e:  # what OSM answers: the binding's complaint, 422
            return self._error(context, 422, f"Error in pyangbind validation: {e}")
        pkg_dir = descriptors[0].split("/")[0]
        if kind == "vnfd":
            desc = doc["vnfd"]
            package = [p.removeprefix(pkg_dir + "/") for p in files]
            problems = vnfd_problems(desc, package)
        else:
            (desc,) = doc["nsd"]["nsd"]
            onboarded = {r["id"]: r for r in self.vnfds.values()}
            problems = nsd_problems(desc, onboarded.get)
        if problems:
            status = 409 if "non existing vnfd" in problems[0] else 422
            return self._error(context, status, problems[0])
        if any(r["id"] == desc["id"] for r in catalogue.values()):
            return self._error(context, 409, f"{kind} with id '{desc['id']}' already exists "
                                             "for this project")
        _id = str(uuid.uuid4())
        catalogue[_id] = {**desc, "_id": _id, "_admin": {"onboardingState": "ONBOARDED",
                                                         "files": files}}
        context.status_code = 201
        return {"id": _id}

    # ------------------------------------------------------------------ NS lifecycle

    def _nslcm(self, request, context, parts, query):
        if parts[0] == "ns_lcm_op_occs" and request.method == "GET":
            op = self.ops.get(parts[1])
            if op is None:
                return self._error(context, 404, "operation not found")
            self._advance(op)
            return {k: v for k, v in op.items() if k != "polls"}
        if parts[0] not in ("ns_instances", "ns_instances_content"):
            return self._error(context, 404, "unknown path")
        if request.method == "GET" and len(parts) == 1:
            return [n for n in self.nsrs.values()
                    if all(str(n.get(k)) == v for k, v in query.items())]
        if request.method == "POST" and parts == ["ns_instances_content"]:
            body = request.json()
            self.bodies.append(body)
            nsd = self.nsds.get(body.get("nsdId"))
            if nsd is None:
                return self._error(context, 404, f"nsd {body.get('nsdId')} not found")
            if body.get("vimAccountId") != VIM["_id"]:
                return self._error(context, 422, "Invalid vimAccountId")
            vlds = {v["id"] for v in nsd.get("virtual-link-desc", [])}
            for vld in body.get("vld", []):
                if vld["name"] not in vlds:
                    return self._error(context, 422, f"Invalid vld name {vld['name']}")
            nsr_id, op_id = str(uuid.uuid4()), str(uuid.uuid4())
            self.nsrs[nsr_id] = {"_id": nsr_id, "id": nsr_id, "name": body["nsName"],
                                 "nsd-id": nsd["_id"], "nsState": "BUILDING",
                                 "operational-status": "init", "config-status": "init",
                                 "detailed-status": "creating"}
            self.ops[op_id] = {"_id": op_id, "id": op_id, "lcmOperationType": "instantiate",
                               "nsInstanceId": nsr_id, "operationState": "PROCESSING",
                               "detailed-status": "Deploying VDUs", "polls": 0}
            context.status_code = 201
            return {"id": nsr_id, "nslcmop_id": op_id}
        nsr = self.nsrs.get(parts[1]) if len(parts) > 1 else None
        if nsr is None:
            return self._error(context, 404, f"ns {parts[-1]} not found")
        if request.method == "GET":
            return nsr
        if request.method == "DELETE":
            op_id = str(uuid.uuid4())
            self.ops[op_id] = {"_id": op_id, "id": op_id, "lcmOperationType": "terminate",
                               "nsInstanceId": nsr["_id"], "operationState": "PROCESSING",
                               "detailed-status": "Terminating VDUs", "polls": 0}
            nsr.update(nsState="TERMINATING", **{"detailed-status": "terminating"})
            context.status_code = 202
            return {"_id": op_id}
        return self._error(context, 405, "method not allowed")

    def _advance(self, op: dict) -> None:
        if self.stuck or op["operationState"] != "PROCESSING":
            return
        op["polls"] += 1
        if op["polls"] < self.settle:
            return
        nsr = self.nsrs.get(op["nsInstanceId"])
        if op["lcmOperationType"] == "terminate":
            op.update(operationState="COMPLETED", **{"detailed-status": "Done"})
            self.nsrs.pop(op["nsInstanceId"], None)  # autoremove
        elif self.fail_instantiation:
            message = self.fail_instantiation
            if self.fail_times is not None:
                self.fail_times -= 1
                if self.fail_times <= 0:
                    self.fail_instantiation = self.fail_times = None
            op.update(operationState="FAILED", errorMessage=message,
                      **{"detailed-status": message})
            nsr.update(nsState="BROKEN", **{"operational-status": "failed",
                                            "detailed-status": message})
        else:
            op.update(operationState="COMPLETED", **{"detailed-status": "Done"})
            nsr.update(nsState="READY", **{"operational-status": "running",
                                           "config-status": "configured",
                                           "detailed-status": "Done"})


def dump(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)
