"""A fake Hugging Face Hub on 127.0.0.1 answering the endpoints huggingface_hub 2.x calls, with
the documented JSON shapes: model listing (expand, Link pagination), repo creation, tree listing,
preupload, LFS batch + upload + verify, NDJSON commit, README YAML validation, collections."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any
from urllib.parse import urlencode

from fakeserver import FakeServer, json_response
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin")
REPO = r"([\w.-]+/[\w.-]+)"


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def model_entry(repo_id: str, *, params: int | None = 8_030_261_248,
                arch: str | None = "LlamaForCausalLM", license: str | None = "apache-2.0",
                pipeline_tag: str | None = "text-generation", gated: bool | str = False,
                private: bool = False, tags: list[str] | None = None,
                library_name: str | None = "transformers", trending: float = 10.0,
                config_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One /api/models item, as the Hub answers with expand=[...] (camelCase keys)."""
    config: dict[str, Any] = {"architectures": [arch]} if arch else {}
    if arch:
        config["model_type"] = arch.removesuffix("ForCausalLM").lower()
    config.update(config_extra or {})
    card: dict[str, Any] = {"license": license} if license else {}
    tags = list(tags if tags is not None else ["transformers", "safetensors", "text-generation"])
    if license:
        tags.append(f"license:{license}")
    entry: dict[str, Any] = {
        "_id": uuid.uuid4().hex[:24], "id": repo_id, "pipeline_tag": pipeline_tag,
        "private": private, "gated": gated, "disabled": False, "library_name": library_name,
        "tags": tags, "cardData": card, "config": config, "trendingScore": trending,
        "downloads": 1000, "likes": 10, "createdAt": "2026-01-01T00:00:00.000Z",
    }
    if params is not None:
        entry["safetensors"] = {"parameters": {"BF16": params}, "total": params}
    return entry


class FakeHub(FakeServer):
    """State: trending ``models``, ``repos`` (path → bytes), the LFS store, ``commits``."""

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self.models: list[dict[str, Any]] = []
        self.page_size = 1000  # the Hub's cap per page of /api/models
        self.tree_page_size = 1000
        self.repos: dict[str, dict[str, bytes]] = {}
        self.visibility: dict[str, str] = {}
        self.lfs: dict[str, bytes] = {}
        self.commits: dict[str, list[list[str]]] = {}  # repo → paths of each commit
        self.collections: dict[str, dict[str, Any]] = {}
        r = self.route
        r("GET", "/api/models", self.list_models)
        r("POST", "/api/repos/create", self.create_repo)
        r("GET", rf"/api/models/{REPO}/tree/([^/]+)(?:/.*)?", self.tree)
        r("POST", "/api/validate-yaml", lambda req: json_response({"errors": [], "warnings": []}))
        r("POST", rf"/api/models/{REPO}/preupload/([^/]+)", self.preupload)
        r("POST", rf"/{REPO}\.git/info/lfs/objects/batch", self.lfs_batch)
        r("PUT", r"/fake-lfs/([0-9a-f]{64})", self.lfs_put)
        r("POST", r"/fake-lfs-verify", self.lfs_verify)
        r("POST", rf"/api/models/{REPO}/commit/([^/]+)", self.commit)
        r("POST", "/api/collections", self.create_collection)
        r("POST", r"/api/collections/([\w.-]+/[\w.-]+)/items", self.add_item)
        r("GET", r"/api/collections/([\w.-]+/[\w.-]+)", self.get_collection)
        r("GET", rf"/api/models/{REPO}/revision/([^/]+)", self.repo_info)
        r("GET", rf"/api/models/{REPO}", lambda req, repo_id: self.repo_info(req, repo_id, "main"))
        for method in ("HEAD", "GET"):
            r(method, rf"/{REPO}/resolve/([^/]+)/(.+)", self.resolve)

    # -- helpers used by tests --------------------------------------------------------------
    def add_repo(self, repo_id: str, files: dict[str, bytes] | None = None) -> None:
        self.repos[repo_id] = {".gitattributes": b"*.gguf filter=lfs diff=lfs merge=lfs -text\n"}
        for path, data in (files or {}).items():
            self.repos[repo_id][path] = data
            if path.endswith(LFS_SUFFIXES):
                self.lfs[hashlib.sha256(data).hexdigest()] = data
        self.commits.setdefault(repo_id, [])

    # -- /api/models ------------------------------------------------------------------------
    def list_models(self, req: Request) -> Response:
        args = req.args
        if "author" in args:
            items = [{"_id": uuid.uuid4().hex[:24], "id": rid, "private": False}
                     for rid in sorted(self.repos) if rid.split("/")[0] == args["author"]]
        else:
            items = [m for m in self.models
                     if not args.get("pipeline_tag") or m["pipeline_tag"] == args["pipeline_tag"]]
            if args.get("sort") == "trendingScore":
                items = sorted(items, key=lambda m: -m["trendingScore"])
            expand = args.getlist("expand")
            if expand:
                items = [{k: v for k, v in m.items() if k in ("_id", "id", *expand)} for m in items]
        limit = min(int(args.get("limit", 1000)), self.page_size)
        cursor = int(args.get("cursor", 0))
        page = items[cursor:cursor + limit]
        headers = {}
        if cursor + limit < len(items):
            query = [(k, v) for k, v in args.items(multi=True) if k != "cursor"]
            query.append(("cursor", str(cursor + limit)))
            headers["Link"] = f'<{self.base}/api/models?{urlencode(query)}>; rel="next"'
        return json_response(page, headers=headers)

    # -- downloads (snapshot_download) ------------------------------------------------------
    def commit_sha(self, repo_id: str) -> str:
        files = self.repos[repo_id]
        return hashlib.sha1(b"".join(p.encode() + files[p] for p in sorted(files)),
                            usedforsecurity=False).hexdigest()

    def repo_info(self, req: Request, repo_id: str, revision: str) -> Response:
        if (missing := self._missing(repo_id)) is not None:
            return missing
        return json_response({"_id": uuid.uuid4().hex[:24], "id": repo_id, "private": False,
                              "sha": self.commit_sha(repo_id),
                              "siblings": [{"rfilename": p} for p in sorted(self.repos[repo_id])]})

    def resolve(self, req: Request, repo_id: str, revision: str, path: str) -> Response:
        if (missing := self._missing(repo_id)) is not None:
            return missing
        data = self.repos[repo_id].get(path)
        if data is None:
            return Response(json.dumps({"error": "Entry not found"}), 404,
                            {"X-Error-Code": "EntryNotFound"}, content_type="application/json")
        headers = {"X-Repo-Commit": self.commit_sha(repo_id), "ETag": f'"{git_blob_id(data)}"',
                   "Content-Length": str(len(data))}
        return Response(data, 200, headers)  # werkzeug sends no body for HEAD

    # -- repos ------------------------------------------------------------------------------
    def create_repo(self, req: Request) -> Response:
        body = req.get_json()
        repo_id = f"{body['organization']}/{body['name']}"
        if repo_id in self.repos:
            return json_response({"error": "You already created this model repo",
                                  "url": f"{self.base}/{repo_id}"}, 409)
        self.add_repo(repo_id)
        self.visibility[repo_id] = body.get("visibility", "public")
        return json_response({"url": f"{self.base}/{repo_id}", "name": repo_id,
                              "id": uuid.uuid4().hex[:24]})

    def _missing(self, repo_id: str) -> Response | None:
        if repo_id in self.repos:
            return None
        return Response(json.dumps({"error": "Repository not found"}), 404,
                        {"X-Error-Code": "RepoNotFound"}, content_type="application/json")

    def tree(self, req: Request, repo_id: str, revision: str) -> Response:
        if (missing := self._missing(repo_id)) is not None:
            return missing
        entries = []
        for path, data in sorted(self.repos[repo_id].items()):
            entry: dict[str, Any] = {"type": "file", "oid": git_blob_id(data), "size": len(data),
                                     "path": path}
            if path.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                "pointerSize": 134}
                entry["oid"] = git_blob_id(b"version https://git-lfs.github.com/spec/v1\n")
            entries.append(entry)
        cursor = int(req.args.get("cursor", 0))
        page = entries[cursor:cursor + self.tree_page_size]
        headers = {}
        if cursor + self.tree_page_size < len(entries):
            query = urlencode([*((k, v) for k, v in req.args.items() if k != "cursor"),
                               ("cursor", str(cursor + self.tree_page_size))])
            headers["Link"] = f'<{self.base}{req.path}?{query}>; rel="next"'
        return json_response(page, headers=headers)

    def preupload(self, req: Request, repo_id: str, revision: str) -> Response:
        if (missing := self._missing(repo_id)) is not None:
            return missing
        files = req.get_json()["files"]
        return json_response({"files": [
            {"path": f["path"], "shouldIgnore": False,
             "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular"}
            for f in files], "commitOid": "0" * 40})

    # -- LFS ----------------------------------------------------------------------------------
    def lfs_batch(self, req: Request, repo_id: str) -> Response:
        body = json.loads(req.get_data())
        objects = []
        for obj in body["objects"]:
            item: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.lfs:
                item["actions"] = {
                    "upload": {"href": f"{self.base}/fake-lfs/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{self.base}/fake-lfs-verify", "header": {}},
                }
            objects.append(item)
        return Response(json.dumps({"transfer": "basic", "objects": objects}), 200,
                        content_type="application/vnd.git-lfs+json")

    def lfs_put(self, req: Request, oid: str) -> Response:
        data = req.get_data()
        if hashlib.sha256(data).hexdigest() != oid:
            return json_response({"error": "sha256 mismatch"}, 400)
        self.lfs[oid] = data
        return Response(b"", 200)

    def lfs_verify(self, req: Request) -> Response:
        body = req.get_json(force=True)
        ok = body["oid"] in self.lfs and len(self.lfs[body["oid"]]) == body["size"]
        return json_response({"ok": ok}, 200 if ok else 404)

    # -- commit -------------------------------------------------------------------------------
    def commit(self, req: Request, repo_id: str, revision: str) -> Response:
        if (missing := self._missing(repo_id)) is not None:
            return missing
        lines = [json.loads(line) for line in req.get_data().splitlines() if line.strip()]
        if not lines or lines[0]["key"] != "header":
            return json_response({"error": "missing header"}, 400)
        staged = dict(self.repos[repo_id])
        paths = []
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                staged[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "lfsFile":
                if value["oid"] not in self.lfs:
                    return json_response({"error": f"LFS object {value['oid']} not uploaded"}, 422)
                staged[value["path"]] = self.lfs[value["oid"]]
            else:
                return json_response({"error": f"unsupported {line['key']}"}, 400)
            paths.append(value["path"])
        self.repos[repo_id] = staged  # all or nothing
        self.commits[repo_id].append(paths)
        oid = hashlib.sha1(f"{repo_id}{len(self.commits[repo_id])}".encode(),
                           usedforsecurity=False).hexdigest()
        return json_response({"success": True, "commitOid": oid, "pullRequestUrl": None,
                              "commitUrl": f"{self.base}/{repo_id}/commit/{oid}"})

    # -- collections ----------------------------------------------------------------------------
    def _collection_json(self, slug: str) -> dict[str, Any]:
        c = self.collections[slug]
        return {"slug": slug, "title": c["title"], "owner": {"name": c["namespace"]},
                "items": c["items"], "lastUpdated": "2026-01-01T00:00:00.000Z", "position": 0,
                "private": c["private"], "theme": "default", "upvotes": 0, "description": None}

    def create_collection(self, req: Request) -> Response:
        body = req.get_json()
        for slug, c in self.collections.items():
            if c["namespace"] == body["namespace"] and c["title"] == body["title"]:
                return json_response({"error": "Collection already exists", "slug": slug}, 409)
        slug = f"{body['namespace']}/{body['title'].lower().replace(' ', '-')}-{uuid.uuid4().hex[:24]}"
        self.collections[slug] = {"title": body["title"], "namespace": body["namespace"],
                                  "private": body.get("private", False), "items": []}
        return json_response(self._collection_json(slug))

    def add_item(self, req: Request, slug: str) -> Response:
        item = req.get_json()["item"]
        items = self.collections[slug]["items"]
        if any(i["id"] == item["id"] for i in items):
            return json_response({"error": "Item already in collection"}, 409)
        items.append({"_id": uuid.uuid4().hex[:24], "id": item["id"], "type": item["type"],
                      "position": len(items)})
        return json_response(self._collection_json(slug))

    def get_collection(self, req: Request, slug: str) -> Response:
        return json_response(self._collection_json(slug))


class FastClock:
    """Stands in for the ``time`` module inside huggingface_hub's HTTP helper so that its
    (real, bounded) backoff does not slow the tests: ``sleep`` records instead of waiting."""

    def __init__(self) -> None:
        import time as _time

        self._time = _time
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._time, name)


def fast_hf_clock(monkeypatch: Any) -> FastClock:
    import huggingface_hub.utils._http as hf_http

    clock = FastClock()
    monkeypatch.setattr(hf_http, "time", clock)
    return clock
