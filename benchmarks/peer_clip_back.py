"""Peer comparison: drive clip-retrieval's clip-back (HTTP /knn-service) with the same load as `bench serve`."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evdsearch.benchmarks.serve_load import CallResult, split_address
from evdsearch.errors import InvalidInput

# clip-back hard-codes app.run(host="0.0.0.0"); this launcher pins Flask to loopback before starting it.
LOOPBACK_LAUNCHER = (
    "import flask, fire; _run = flask.Flask.run; "
    "flask.Flask.run = lambda self, host=None, port=None, **kw: _run(self, host='127.0.0.1', port=port, **kw); "
    "from clip_retrieval.clip_back import clip_back; fire.Fire(clip_back)"
)


def _request(address: str, method: str, path: str, body: dict | None, timeout_s: float) -> tuple[int, bytes]:
    host, port = split_address(address)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"} if payload else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def http_caller(address: str, k: int = 10, indice_name: str | None = None,
                timeout_s: float = 10.0) -> tuple[Callable[[str], CallResult], Callable[[], None]]:
    """(call, close) posting text queries to /knn-service; one short-lived connection per request,
    as clip-back's Flask server speaks HTTP/1.0."""
    name = indice_name or server_info(address, timeout_s)["indices"][0]

    def call(text: str) -> CallResult:
        body = {"text": text, "modality": "image", "num_images": k, "indice_name": name,
                "use_mclip": False, "deduplicate": False, "use_safety_model": False,
                "use_violence_detector": False}
        try:
            status, _ = _request(address, "POST", "/knn-service", body, timeout_s)
        except (OSError, http.client.HTTPException) as err:
            return CallResult(False, type(err).__name__)
        return CallResult(status == 200, "OK" if status == 200 else f"HTTP {status}")

    return call, lambda: None


def server_info(address: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """clip-back's index names (GET /indices-list); a clear error when nothing answers."""
    try:
        status, body = _request(address, "GET", "/indices-list", None, timeout_s)
    except OSError as err:
        raise InvalidInput(f"no clip-back answers at {address} ({err}); start it with "
                           f"`clip-retrieval back --port PORT --indices-paths indices.json`") from err
    if status != 200:
        raise InvalidInput(f"clip-back at {address} answered HTTP {status} to /indices-list")
    return {"server": "clip-back", "indices": json.loads(body)}


def metrics_summary(address: str, timeout_s: float = 10.0) -> str:
    """clip-back's own per-stage timing summary (GET /metrics-summary), as text."""
    status, body = _request(address, "GET", "/metrics-summary", None, timeout_s)
    return body.decode("utf-8", "replace") if status == 200 else f"HTTP {status}"


def write_indices_json(path: Path, name: str, index_folder: Path, clip_model: str,
                       columns: tuple[str, ...] = ("url",)) -> Path:
    """The indices file clip-back reads, with every option that would reach a model hub switched off.

    `columns`: metadata returned per hit; `url` is added by `build_peer_index` ("image_path" would make
    clip-back read and inline every hit's image as base64 JPEG, which our server never does).
    """
    options = {"indice_folder": str(index_folder), "clip_model": clip_model, "enable_hdf5": False,
               "enable_faiss_memory_mapping": True, "columns_to_return": list(columns),
               "reorder_metadata_by_ivf_index": False, "enable_mclip_option": False, "use_jit": False,
               "use_arrow": False, "provide_safety_model": False, "provide_violence_detector": False,
               "provide_aesthetic_embeddings": False}
    path.write_text(json.dumps({name: options}, indent=2), encoding="utf-8")
    return path


def start_clip_back(python: Path, indices_json: Path, port: int, log: Path, ready_timeout_s: float = 300.0,
                    ) -> subprocess.Popen:
    """Start clip-back (from the peer venv's python) on 127.0.0.1:port and wait until it lists its indices."""
    args = [str(python), "-c", LOOPBACK_LAUNCHER, "--indices_paths", str(indices_json), "--port", str(port),
            "--enable_mclip_option", "False", "--use_jit", "False", "--provide_aesthetic_embeddings", "False",
            "--enable_faiss_memory_mapping", "True"]
    handle = log.open("w")
    proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InvalidInput(f"clip-back exited with {proc.returncode}; last lines of {log}:\n"
                               + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        try:
            server_info(f"127.0.0.1:{port}", timeout_s=2.0)
            return proc
        except InvalidInput:
            time.sleep(1.0)
    proc.terminate()
    raise InvalidInput(f"clip-back did not come up on 127.0.0.1:{port} within {ready_timeout_s:g} s (see {log})")


# clip-back fails on hits without metadata columns and inlines every hit's image when it returns
# `image_path`; a `url` column (the path, as our server's `uri`) gives a like-for-like answer.
ADD_URL_COLUMN = (
    "import glob, sys, pandas as pd\n"
    "for f in glob.glob(sys.argv[1] + '/metadata/*.parquet'):\n"
    "    d = pd.read_parquet(f); d.assign(url=d['image_path']).to_parquet(f)\n"
)


def build_peer_index(peer_venv: Path, embeddings: Path, index_folder: Path, log: Path) -> Path:
    """`clip-retrieval index` (autofaiss) over clip-inference's output folder, plus a `url` metadata column.

    Built in a fresh sibling folder and swapped in at the end: clip-retrieval refuses an existing folder, and
    a failed rebuild must leave the previous index in place."""
    building = index_folder.with_name(index_folder.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    cmds = [[str(peer_venv / "bin" / "clip-retrieval"), "index", "--embeddings_folder", str(embeddings),
             "--index_folder", str(building)],
            [str(peer_venv / "bin" / "python"), "-c", ADD_URL_COLUMN, str(building)]]
    with log.open("w") as handle:
        for cmd in cmds:
            if subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT).returncode != 0:
                raise InvalidInput(f"`{cmd[0]} {cmd[1]} ...` failed; see {log}")
    shutil.rmtree(index_folder, ignore_errors=True)
    building.rename(index_folder)
    return index_folder


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # `kill` stops clip-back the way Ctrl-C does, instead of orphaning it


def main(argv: list[str] | None = None) -> int:
    """Index clip-inference embeddings with clip-retrieval and serve them with clip-back on loopback until Ctrl-C.

    Then, from another shell: `evdsearch bench serve --protocol clip-back --server 127.0.0.1:PORT ...`.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.peer_clip_back", description=main.__doc__)
    parser.add_argument("--peer-venv", required=True, type=Path, help="virtualenv with clip-retrieval")
    parser.add_argument("--embeddings", required=True, type=Path, help="clip-retrieval inference output folder")
    parser.add_argument("--clip-model", required=True, help="e.g. open_clip:ViT-B-32//path/to/weights.pt")
    parser.add_argument("--work", type=Path, default=Path("runs/bench/clip-back"), help="index + logs folder")
    parser.add_argument("--port", type=int, default=1234)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    index = build_peer_index(args.peer_venv, args.embeddings, args.work / "index", args.work / "index.log")
    indices = write_indices_json(args.work / "indices.json", "bench", index, args.clip_model)
    proc = start_clip_back(args.peer_venv / "bin" / "python", indices, args.port, args.work / "clip-back.log")
    print(f"clip-back serving on 127.0.0.1:{args.port} (pid {proc.pid}); Ctrl-C or SIGTERM stops it", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
