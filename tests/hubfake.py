"""A fake Hugging Face Hub on 127.0.0.1 answering the endpoints huggingface_hub 2.x calls, with
the documented JSON shapes: model listing (expand, Link pagination), repo creation, tree listing,
preupload, LFS batch + upload + verify, NDJSON commit, README YAML validation, collections, and
branches (refs, commit history, branch creation from a revision or commit, per-revision trees and
commits), as huggingface_hub 2.4's ``list_repo_refs``, ``list_repo_commits``, ``create_branch``,
``list_repo_tree(revision=)`` and ``create_commit(revision=)`` call them.

A branch's state is kept under the key ``"<repo>@<branch>"`` (``main``: the bare repo id) in
``repos`` (path → bytes) and ``commits`` (the paths each commit added)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import re
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import huggingface_hub.constants
import pytest
import yaml
from fakeserver import FakeServer, fresh, json_response, serving
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from runners.results import EvalSpec, Quality, QuantRun, SourceInfo, Variant, load_run

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin")
REPO = r"([\w.-]+/[\w.-]+)"
INITIAL_FILES = {".gitattributes": b"*.gguf filter=lfs diff=lfs merge=lfs -text\n"}


def ref_key(repo_id: str, revision: str = "main") -> str:
    """Where a revision's state is kept: the repo id for main, ``repo@branch`` otherwise."""
    return repo_id if revision == "main" else f"{repo_id}@{revision}"


def front_matter(text: str) -> dict[str, Any] | None:
    """A card's YAML metadata, as the Hub reports it in ``cardData``."""
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    return yaml.safe_load(match.group(1)) if match else None


def safetensors_counts(files: dict[str, bytes]) -> dict[str, Any] | None:
    """The ``safetensors`` field of model info, as the Hub derives it from the weights' headers:
    parameters per dtype and their total (None: no safetensors file)."""
    counts: dict[str, int] = {}
    for path, data in sorted(files.items()):
        if not path.endswith(".safetensors") or len(data) < 8:
            continue
        (length,) = struct.unpack("<Q", data[:8])
        try:
            header = json.loads(data[8:8 + length])
        except ValueError:  # not a safetensors file after all: the Hub counts nothing of it
            continue
        for name, tensor in header.items():
            if name != "__metadata__":
                counts[tensor["dtype"]] = counts.get(tensor["dtype"], 0) + math.prod(tensor["shape"])
    return {"parameters": counts, "total": sum(counts.values())} if counts else None


_DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "I8": 1, "U8": 1}


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    """A valid safetensors file of zeros: ``{name: (dtype, shape)}``."""
    header: dict[str, Any] = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        end = offset + math.prod(shape) * _DTYPE_BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}
        offset = end
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


def model_files(config: dict[str, Any], weights: bool = True) -> dict[str, bytes]:
    """A model repository's files: ``config.json``, a small safetensors file (or, without
    ``weights``, only a pickle ``pytorch_model.bin``) and a card naming a licence."""
    files = {"config.json": json.dumps(config).encode(),
             "README.md": b"---\nlicense: apache-2.0\n---\n# model\n"}
    if weights:
        files["model.safetensors"] = safetensors_bytes({
            "model.embed_tokens.weight": ("BF16", [64, 16]), "lm_head.weight": ("BF16", [64, 16])})
    else:
        files["pytorch_model.bin"] = b"PK\x03\x04 pickle"
    return files


#: The keys of config.json the Hub's model info carries in its (reduced) ``config``.
HUB_CONFIG_KEYS = ("architectures", "model_type", "auto_map", "quantization_config", "text_config")


def hub_config(files: dict[str, bytes]) -> dict[str, Any] | None:
    try:
        raw = json.loads(files["config.json"]) if "config.json" in files else None
    except ValueError:  # not JSON: the Hub shows no config
        return None
    if not isinstance(raw, dict):
        return None
    reduced = {k: raw[k] for k in HUB_CONFIG_KEYS if k in raw}
    if isinstance(reduced.get("text_config"), dict):
        reduced["text_config"] = {k: v for k, v in reduced["text_config"].items()
                                  if k in ("architectures", "model_type")}
    return reduced


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
    """State: trending ``models``, ``repos`` (path → bytes, per :func:`ref_key`), the LFS store,
    ``commits`` (per :func:`ref_key`), each revision's ``lineage`` (commit ids, oldest first) and
    every commit's ``snapshots`` and ``titles``."""

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self.models: list[dict[str, Any]] = []
        self.page_size = 1000  # the Hub's cap per page of /api/models
        self.tree_page_size = 1000
        self.repos: dict[str, dict[str, bytes]] = {}
        self.visibility: dict[str, str] = {}
        self.lfs: dict[str, bytes] = {}
        self.commits: dict[str, list[list[str]]] = {}  # ref key → paths each commit added
        self.deleted: dict[str, list[list[str]]] = {}  # ref key → paths each commit deleted
        self.lineage: dict[str, list[str]] = {}  # ref key → commit ids, oldest first
        self.snapshots: dict[str, dict[str, bytes]] = {}  # commit id → files
        self.titles: dict[str, str] = {}  # commit id → title
        self.collections: dict[str, dict[str, Any]] = {}
        self.meta: dict[str, dict[str, Any]] = {}  # repo id → model info fields set by the test
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
        r("GET", rf"/api/models/{REPO}/refs", self.refs)
        r("GET", rf"/api/models/{REPO}/commits/([^/]+)", self.list_commits)
        r("POST", rf"/api/models/{REPO}/branch/([^/]+)", self.create_branch)
        r("POST", "/api/collections", self.create_collection)
        r("POST", r"/api/collections/([\w.-]+/[\w.-]+)/items", self.add_item)
        r("GET", r"/api/collections/([\w.-]+/[\w.-]+)", self.get_collection)
        r("GET", rf"/api/models/{REPO}/revision/([^/]+)", self.repo_info)
        r("GET", rf"/api/models/{REPO}", lambda req, repo_id: self.repo_info(req, repo_id, "main"))
        for method in ("HEAD", "GET"):
            r(method, rf"/{REPO}/resolve/([^/]+)/(.+)", self.resolve)

    # -- helpers used by tests --------------------------------------------------------------
    def add_repo(self, repo_id: str, files: dict[str, bytes] | None = None) -> None:
        """A repo with its initial commit (``.gitattributes``), then ``files`` in one commit
        (not counted in ``commits``, which records what clients commit)."""
        self.repos[repo_id] = dict(INITIAL_FILES)
        self.lineage[repo_id] = []
        self._record(repo_id, "initial commit")
        if files:
            for path, data in files.items():
                self.repos[repo_id][path] = data
                if path.endswith(LFS_SUFFIXES):
                    self.lfs[hashlib.sha256(data).hexdigest()] = data
            self._record(repo_id, "add files")
        self.commits.setdefault(repo_id, [])
        self.deleted.setdefault(repo_id, [])

    def add_model(self, repo_id: str, files: dict[str, bytes], **meta: Any) -> str:
        """A model repository holding ``files``, with model info fields ``meta`` (``gated``,
        ``tags``, ``safetensors`` …) over what the files say; its commit sha."""
        self.add_repo(repo_id, files)
        self.meta[repo_id] = meta
        return self.commit_sha(repo_id)

    def branches(self, repo_id: str) -> list[str]:
        """The repo's branch names, main first."""
        prefix = f"{repo_id}@"
        return ["main", *sorted(k[len(prefix):] for k in self.repos if k.startswith(prefix))]

    def _record(self, key: str, title: str) -> str:
        """Snapshot ``repos[key]`` as a new commit on that revision; its id."""
        oid = hashlib.sha1(f"{key}{len(self.snapshots)}{uuid.uuid4()}".encode(),
                           usedforsecurity=False).hexdigest()
        self.snapshots[oid] = dict(self.repos[key])
        self.titles[oid] = title
        self.lineage[key].append(oid)
        return oid

    # -- /api/models ------------------------------------------------------------------------
    def list_models(self, req: Request) -> Response:
        args = req.args
        if "author" in args:
            items = [{"_id": uuid.uuid4().hex[:24], "id": rid, "private": False}
                     for rid in sorted(self.repos)
                     if rid.split("/")[0] == args["author"] and "@" not in rid]
            if "cardData" in args.getlist("expand"):
                for item in items:
                    readme = self.repos[item["id"]].get("README.md")
                    card = front_matter(readme.decode()) if readme else None
                    if card is not None:
                        item["cardData"] = card
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
    @staticmethod
    def content_sha(files: dict[str, bytes]) -> str:
        return hashlib.sha1(b"".join(p.encode() + files[p] for p in sorted(files)),
                            usedforsecurity=False).hexdigest()

    def commit_sha(self, repo_id: str, branch: str = "main") -> str:
        """A branch's content hash: the commit id downloads see (changes with any edit)."""
        return self.content_sha(self.repos[ref_key(repo_id, branch)])

    def files_at(self, repo_id: str, revision: str) -> tuple[str, dict[str, bytes]] | None:
        """The commit sha and files a revision names: a branch or its current sha, a commit id
        in a branch's history (served as that branch is now), or the sha of an earlier state
        (served as it was then, as the Hub serves a pinned commit after a push)."""
        key = self.key_for(repo_id, revision)
        if key is not None:
            return self._sha(repo_id, revision), self.repos[key]
        for branch in self.branches(repo_id):
            for oid in self.lineage[ref_key(repo_id, branch)]:
                if self.content_sha(self.snapshots[oid]) == revision:
                    return revision, self.snapshots[oid]
        return None

    def push(self, repo_id: str, files: dict[str, bytes]) -> str:
        """Someone else commits ``files`` to ``main`` (not counted in ``commits``); the new sha."""
        self.repos[repo_id] = {**self.repos[repo_id], **files}
        self._record(repo_id, "upstream change")
        return self.commit_sha(repo_id)

    def _sha(self, repo_id: str, revision: str) -> str:
        key = self.key_for(repo_id, revision) or repo_id
        return self.commit_sha(repo_id, key.partition("@")[2] or "main")

    def repo_info(self, req: Request, repo_id: str, revision: str) -> Response:
        revision = unquote(revision)
        if (missing := self._missing(repo_id, revision)) is not None:
            return missing
        sha, files = self.files_at(repo_id, revision) or ("", {})
        siblings: list[dict[str, Any]] = [{"rfilename": p} for p in sorted(files)]
        if req.args.get("blobs", "").lower() == "true":  # files_metadata=True
            for sibling in siblings:
                data = files[sibling["rfilename"]]
                sibling.update(size=len(data), blobId=git_blob_id(data))
                if sibling["rfilename"].endswith(LFS_SUFFIXES):
                    sibling["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                      "size": len(data), "pointerSize": 134}
        info: dict[str, Any] = {"_id": uuid.uuid4().hex[:24], "id": repo_id, "private": False,
                                "sha": sha, "siblings": siblings,
                                "gated": False, "disabled": False,
                                "pipeline_tag": "text-generation", "library_name": "transformers",
                                "tags": ["transformers", "safetensors", "text-generation"]}
        card = front_matter(files["README.md"].decode()) if "README.md" in files else None
        if card is not None:
            info["cardData"] = card
        for key, value in (("safetensors", safetensors_counts(files)),
                           ("config", hub_config(files))):
            if value is not None:
                info[key] = value
        info.update(self.meta.get(repo_id, {}))
        return json_response(info)

    def resolve(self, req: Request, repo_id: str, revision: str, path: str) -> Response:
        revision = unquote(revision)
        if (missing := self._missing(repo_id, revision)) is not None:
            return missing
        sha, files = self.files_at(repo_id, revision) or ("", {})
        data = files.get(path)
        if data is None:
            return Response(json.dumps({"error": "Entry not found"}), 404,
                            {"X-Error-Code": "EntryNotFound"}, content_type="application/json")
        headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_id(data)}"',
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

    def key_for(self, repo_id: str, revision: str = "main") -> str | None:
        """The state a revision names: a branch, or a commit id (``sha`` of ``repo_info``, or one
        in a branch's history: served as that branch is now)."""
        if ref_key(repo_id, revision) in self.repos:
            return ref_key(repo_id, revision)
        for branch in self.branches(repo_id):
            key = ref_key(repo_id, branch)
            if revision == self.commit_sha(repo_id, branch) or revision in self.lineage[key]:
                return key
        return None

    def _missing(self, repo_id: str, revision: str = "main") -> Response | None:
        if repo_id not in self.repos:
            return Response(json.dumps({"error": "Repository not found"}), 404,
                            {"X-Error-Code": "RepoNotFound"}, content_type="application/json")
        if self.files_at(repo_id, revision) is None:
            return Response(json.dumps({"error": f"Invalid rev id: {revision}"}), 404,
                            {"X-Error-Code": "RevisionNotFound"}, content_type="application/json")
        return None

    # -- branches -----------------------------------------------------------------------------
    def refs(self, req: Request, repo_id: str) -> Response:
        if (missing := self._missing(repo_id)) is not None:
            return missing
        branches = [{"name": b, "ref": f"refs/heads/{b}",
                     "targetCommit": self.lineage[ref_key(repo_id, b)][-1]}
                    for b in self.branches(repo_id)]
        return json_response({"branches": branches, "converts": [], "tags": []})

    def list_commits(self, req: Request, repo_id: str, revision: str) -> Response:
        revision = unquote(revision)
        if (missing := self._missing(repo_id, revision)) is not None:
            return missing
        items = [{"id": oid, "title": self.titles[oid], "message": "",
                  "authors": [{"user": "system" if i == 0 else "quantbot"}],
                  "date": "2026-01-01T00:00:00.000Z"}
                 for i, oid in enumerate(self.lineage[ref_key(repo_id, revision)])]
        return json_response(items[::-1])  # newest first, as the Hub

    def create_branch(self, req: Request, repo_id: str, branch: str) -> Response:
        branch = unquote(branch)
        if (missing := self._missing(repo_id)) is not None:
            return missing
        key = ref_key(repo_id, branch)
        if key in self.repos:
            return json_response({"error": "Reference already exists"}, 409)
        start = (req.get_json(silent=True) or {}).get("startingPoint", "main")
        if ref_key(repo_id, start) in self.repos:
            lineage = self.lineage[ref_key(repo_id, start)]
        else:
            lineages = [self.lineage[ref_key(repo_id, b)] for b in self.branches(repo_id)]
            found = next((lin for lin in lineages if start in lin), None)
            if found is None:
                return json_response({"error": f"Invalid rev id: {start}"}, 400)
            lineage = found[:found.index(start) + 1]
        self.lineage[key] = list(lineage)
        self.repos[key] = dict(self.snapshots[lineage[-1]])
        self.commits[key] = []
        self.deleted[key] = []
        return json_response({}, 200)

    def tree(self, req: Request, repo_id: str, revision: str) -> Response:
        revision = unquote(revision)
        if (missing := self._missing(repo_id, revision)) is not None:
            return missing
        entries = []
        for path, data in sorted((self.files_at(repo_id, revision) or ("", {}))[1].items()):
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
        if (missing := self._missing(repo_id, unquote(revision))) is not None:
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
        revision = unquote(revision)
        if (missing := self._missing(repo_id, revision)) is not None:
            return missing
        key = ref_key(repo_id, revision)
        lines = [json.loads(line) for line in req.get_data().splitlines() if line.strip()]
        if not lines or lines[0]["key"] != "header":
            return json_response({"error": "missing header"}, 400)
        staged = dict(self.repos[key])
        paths: list[str] = []
        deleted: list[str] = []
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                staged[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "lfsFile":
                if value["oid"] not in self.lfs:
                    return json_response({"error": f"LFS object {value['oid']} not uploaded"}, 422)
                staged[value["path"]] = self.lfs[value["oid"]]
            elif line["key"] == "deletedFile":
                if staged.pop(value["path"], None) is None:
                    return json_response({"error": f"{value['path']} does not exist"}, 404)
                deleted.append(value["path"])
                continue
            else:
                return json_response({"error": f"unsupported {line['key']}"}, 400)
            paths.append(value["path"])
        self.repos[key] = staged  # all or nothing
        self.commits[key].append(paths)
        self.deleted[key].append(deleted)
        oid = self._record(key, lines[0]["value"].get("summary", ""))
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


def point_hub_at(monkeypatch: Any, endpoint: str) -> None:
    """huggingface_hub reads its endpoint at import; the CLI and the publisher read HF_ENDPOINT."""
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setenv("HF_ENDPOINT", endpoint)


def isolate_hub_client(monkeypatch: Any, cache: Path) -> None:
    """huggingface_hub online, anonymous (no HF_TOKEN), without telemetry or Xet, downloading
    into ``cache``."""
    for name, value in (("HF_HUB_DISABLE_TELEMETRY", True), ("HF_HUB_DISABLE_XET", True),
                        ("HF_HUB_OFFLINE", False), ("HF_HUB_CACHE", str(cache))):
        monkeypatch.setattr(huggingface_hub.constants, name, value)
    monkeypatch.delenv("HF_TOKEN", raising=False)


@pytest.fixture(scope="session")
def hub_http() -> Iterator[HTTPServer]:
    """The fake Hub's own server (pytest-httpserver's default one is the fake GitHub's)."""
    with serving() as server:
        yield server


@pytest.fixture
def model_hub(hub_http: HTTPServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeHub:
    """A fresh fake Hub that huggingface_hub talks to, anonymously (no HF_TOKEN), online, without
    telemetry or Xet, with a download cache of the test's own. Import ``hub_http`` beside it."""
    fake = fresh(FakeHub, hub_http)
    point_hub_at(monkeypatch, fake.base)
    isolate_hub_client(monkeypatch, tmp_path / "hf-cache")
    return fake


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


# -- repository folders to publish ----------------------------------------------------------------
CARD = "---\nbase_model: {base}\nlicense: apache-2.0\n---\n# {title}\n"
MAIN_FILES = ["config.json", "model.safetensors", "tokenizer.json"]
BRANCHES = {"gptq-4bit-32g-actorder": 3, "gptq-8bit-128g-actorder": 4}


def _variant(name: str, branch: str, files: list[str], method: str = "gptq", size: int = 100,
             kld: float = 0.01) -> Variant:
    return Variant(method=method, name=name, files=files, size_bytes=size, bits_per_weight=4.5,
                   ram_bytes=200, peak_rss_bytes=200,
                   quality=Quality(ppl=10.0 + kld, ppl_err=0.1, kld_mean=kld, same_top_p=0.9),
                   check_output=" hi", branch=branch)


def _source(source: str) -> SourceInfo:
    return SourceInfo(repo_id=source, architecture="LlamaForCausalLM", license="mit",
                      n_params=1000, context_length=128, dtype="bfloat16")


def gptq_folder(root: Path, source: str = "tiny/Tiny-1B",
                tools: dict[str, str] | None = None) -> Path:
    """A 3-variant GPTQ repository folder as `quantbot quantize` lays it out: the default variant
    at the root (main) with the card and record, the other two in ``.branches/<name>/``."""
    d = root / "Tiny-1B-GPTQ"
    d.mkdir(parents=True)
    for name in MAIN_FILES:
        (d / name).write_bytes(name.encode() + b"\x01" * 200)
    variants = [_variant("gptq-4bit-128g-actorder", "main", MAIN_FILES)]
    for branch, fill in BRANCHES.items():
        (d / ".branches" / branch).mkdir(parents=True)
        for name in MAIN_FILES:
            (d / ".branches" / branch / name).write_bytes(name.encode() + bytes([fill]) * 200)
        variants.append(_variant(branch, branch, MAIN_FILES))
    QuantRun(method="gptq", source=_source(source), baseline=Quality(ppl=9.0, ppl_err=0.1),
             evaluation=EvalSpec("docs", "ab" * 32, 256, 128, 2, "transformers"),
             variants=variants, tools=tools or {}, created="2026-01-01T00:00:00Z").save(d)
    (d / "README.md").write_text(CARD.format(base=source, title="Tiny-1B GPTQ"))
    return d


#: The three formats of :func:`release_jobs`: method → (repository, variant names).
RELEASE = {"gguf": ("Tiny-1B-GGUF", ["Q4_K_M", "Q8_0"]),
           "gptq": ("Tiny-1B-GPTQ", ["gptq-4bit-128g-actorder", *BRANCHES]),
           "nf4": ("Tiny-1B-bnb-4bit", ["nf4-dq-bfloat16"])}


def release_jobs(root: Path, owner: str = "qb", source: str = "tiny/Tiny-1B") -> dict[str, Path]:
    """One /quantize of three formats as three method jobs leave it (``run-job make``): per
    method, ``root/<method>/results/<owner>/<repo>/`` with the files, ``quantbot.json`` measured
    on one text and the card rendered from that one record. Returns each job's results folder."""
    from bot.cards.render import write_card
    from bot.publish.manifest import FILES_KEY, folder_manifest

    jobs = {m: root / m / "results" for m in RELEASE}
    gguf = jobs["gguf"] / owner / RELEASE["gguf"][0]
    gguf.mkdir(parents=True)
    variants = []
    for name, size, kld in (("Q4_K_M", 300, 0.03), ("Q8_0", 500, 0.002)):
        (gguf / f"tiny-1b.{name}.gguf").write_bytes(b"GGUF" + bytes([size % 251]) * size)
        variants.append(dataclasses.replace(
            _variant(name, "main", [f"tiny-1b.{name}.gguf"], "gguf", size, kld),
            params={"ram_ctx": 128}))
    runs = {"gguf": (gguf, QuantRun(
        method="gguf", source=_source(source), baseline=Quality(ppl=9.0, ppl_err=0.1),
        evaluation=EvalSpec("docs", "ab" * 32, 256, 128, 2, "llama.cpp llama-perplexity"),
        variants=variants, tools={"llama.cpp": "test"}, created="2026-01-01T00:00:00Z"))}
    gptq = gptq_folder(jobs["gptq"] / owner, source, tools={"quantizer": "GPTQModel (test)"})
    runs["gptq"] = (gptq, load_run(gptq))
    nf4 = jobs["nf4"] / owner / RELEASE["nf4"][0]
    nf4.mkdir(parents=True)
    for name in MAIN_FILES:
        (nf4 / name).write_bytes(name.encode() + b"\x09" * 150)
    runs["nf4"] = (nf4, QuantRun(
        method="nf4", source=_source(source), baseline=Quality(ppl=9.0, ppl_err=0.1),
        evaluation=EvalSpec("docs", "ab" * 32, 256, 128, 2, "transformers"),
        variants=[_variant("nf4-dq-bfloat16", "main", MAIN_FILES, "nf4", 150, 0.05)],
        tools={"quantizer": "bitsandbytes (test)"}, created="2026-01-01T00:00:00Z"))
    for folder, run in runs.values():
        run = dataclasses.replace(run, provenance={FILES_KEY: folder_manifest(folder)})
        run.save(folder)  # with the file hashes `run-job publish` checks, as make records them
        write_card(run, f"{owner}/{folder.name}", folder)
    return jobs
