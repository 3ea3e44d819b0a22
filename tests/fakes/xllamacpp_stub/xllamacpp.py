"""A stand-in for PyPI's ``xllamacpp``, for tests of deploy/xllamacpp_serve.py and the code that
runs it: put this folder on ``PYTHONPATH``. It takes the parameters the script sets and serves
``/health`` and ``/v1/models`` on them (no model): the models list echoes the alias, context
size and thread count, so a test sees what reached the server."""

import http.server
import json
import threading
from types import SimpleNamespace

__all__ = ["CommonParams", "Server"]


class CommonParams:
    def __init__(self) -> None:
        self.model = SimpleNamespace(path="")
        self.model_alias: set[str] = set()
        self.hostnames = ["127.0.0.1"]
        self.port = 0
        self.n_ctx = 0
        self.n_parallel = 1
        self.cpuparams = SimpleNamespace(n_threads=-1)
        self.cpuparams_batch = SimpleNamespace(n_threads=-1)
        self.fit_params = True
        self.ui = True


class Server:
    def __init__(self, params: CommonParams) -> None:
        models = {
            "data": [
                {"id": alias, "meta": {"n_ctx": params.n_ctx}} for alias in params.model_alias
            ],
            "threads": params.cpuparams.n_threads,
            "model_path": params.model.path,
        }

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                body = {"/health": {"status": "ok"}, "/v1/models": models}.get(self.path)
                self.send_response(200 if body else 404)
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._httpd = http.server.ThreadingHTTPServer((params.hostnames[0], params.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        host, port = self._httpd.server_address[:2]
        self.listening_address = f"http://{host}:{port}"
