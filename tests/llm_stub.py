"""A scripted, OpenAI-compatible HTTP server for tests: no network, no API key, no model.

It serves POST /v1/chat/completions (and /chat/completions) on 127.0.0.1 at an ephemeral port,
from a thread of the test process, and answers each request with the next scripted behaviour:

    from llm_stub import StubLLM, reply, slow, rate_limited, server_error, garbage, truncated

    with StubLLM(default=reply("no prior work found")) as stub:
        stub.script(rate_limited(retry_after=1), reply("second answer"))
        litellm.completion(model="openai/stub", api_base=stub.api_base, api_key="sk-test",
                           messages=[{"role": "user", "content": "hi"}])
        assert stub.requests[0].body["messages"][0]["content"] == "hi"

Behaviours (each a `Behaviour`, built by these helpers):

- `reply(text, ...)`: a normal completion (streamed as server-sent events when the request
  says `"stream": true`), with token usage so cost accounting has something to count.
- `slow(seconds, text)`: the same answer after a delay (for client timeouts).
- `answering(respond, jitter_s)`: the answer `respond(body)` computes from the request's
  parsed JSON, after a delay drawn at random from [0, jitter_s] (e.g. the local mutator behind
  real HTTP, its answers coming back in no fixed order).
- `rate_limited(retry_after)`: HTTP 429 with a Retry-After header.
- `server_error(status=500)`: an HTTP error with an OpenAI-style error body.
- `garbage(body)`: HTTP 200 whose body is not JSON.
- `truncated(text)`: a completion cut by the token limit (`finish_reason: "length"`).
- `cut_off()`: HTTP 200 that promises more bytes than it sends, then closes the connection.

A script is consumed in order, one behaviour per request; when it is empty the default answers.
`stub.requests` records every request (path, headers, parsed JSON body, arrival time).
Also a pytest fixture: `from llm_stub import llm_stub` in a conftest.py, then `def test(llm_stub)`.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATHS = ("/v1/chat/completions", "/chat/completions")
EMBEDDING_PATHS = ("/v1/embeddings", "/embeddings")


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI-style embeddings: a deterministic 8-dimensional vector per input text, from the
    counts of its characters by class, so equal texts embed equally and others differ."""
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else list(texts or [])
    data = []
    for i, text in enumerate(texts):
        t = str(text)
        vec = [
            float(sum(c.isdigit() for c in t)),
            float(sum(c.isalpha() for c in t)),
            float(sum(c.isspace() for c in t)),
            float(sum(c in "+-*/" for c in t)),
            float(sum(c in "()[]{}" for c in t)),
            float(sum(c in "<>=" for c in t)),
            float(len(t.splitlines())),
            1.0,
        ]
        data.append({"object": "embedding", "index": i, "embedding": vec})
    n = sum(len(str(t)) // 4 for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", "stub-embedding"),
        "usage": {"prompt_tokens": n, "total_tokens": n},
    }


MODEL = "stub"
API_KEY = "sk-test"


@dataclass
class Behaviour:
    """How the stub answers one request."""

    kind: str  # reply | rate_limited | error | garbage | cut_off
    text: str = ""
    delay_s: float = 0.0
    status: int = 200
    retry_after: float | None = None
    finish_reason: str = "stop"
    body: str = ""
    prompt_tokens: int = 11
    completion_tokens: int | None = None  # default: words in text
    respond: Callable[[Any], str] | None = None  # the text, from the request's body
    jitter_s: float = 0.0  # a further delay drawn uniformly from [0, jitter_s]


@dataclass
class Request:
    """One request the stub received."""

    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the parsed JSON body, or the raw text if it was not JSON
    wall: float = field(default_factory=time.time)  # comparable with the database's created_at
    time: float = field(default_factory=time.monotonic)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def prompt(self) -> str:
        """All message contents joined, for easy assertions."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


def reply(
    text: str = "stub answer", *, prompt_tokens: int = 11, completion_tokens: int | None = None
) -> Behaviour:
    return Behaviour(
        "reply", text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )


def slow(seconds: float, text: str = "slow stub answer") -> Behaviour:
    return Behaviour("reply", text=text, delay_s=seconds)


def answering(respond: Callable[[Any], str], jitter_s: float = 0.0) -> Behaviour:
    return Behaviour("reply", respond=respond, jitter_s=jitter_s)


def rate_limited(retry_after: float = 1.0) -> Behaviour:
    return Behaviour("error", status=429, retry_after=retry_after, text="Rate limit reached (stub)")


def server_error(status: int = 500, message: str = "internal error (stub)") -> Behaviour:
    return Behaviour("error", status=status, text=message)


def garbage(body: str = "<html>this is not json</html>") -> Behaviour:
    return Behaviour("garbage", body=body)


def truncated(text: str = "the answer was cut after") -> Behaviour:
    return Behaviour("reply", text=text, finish_reason="length")


def cut_off() -> Behaviour:
    return Behaviour("cut_off")


def _completion(b: Behaviour, model: str, n_calls: int) -> dict[str, Any]:
    completion_tokens = (
        b.completion_tokens if b.completion_tokens is not None else len(b.text.split())
    )
    return {
        "id": f"chatcmpl-stub-{n_calls}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": b.text},
                "finish_reason": b.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": b.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": b.prompt_tokens + completion_tokens,
        },
    }


def _chunks(b: Behaviour, model: str, n_calls: int) -> Iterator[dict[str, Any]]:
    base = {
        "id": f"chatcmpl-stub-{n_calls}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    words = b.text.split(" ")
    for i, word in enumerate(words):
        piece = word if i == 0 else " " + word
        yield {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": piece},
                    "finish_reason": None,
                }
            ],
        }
    completion_tokens = (
        b.completion_tokens if b.completion_tokens is not None else len(b.text.split())
    )
    yield {
        **base,
        "choices": [{"index": 0, "delta": {}, "finish_reason": b.finish_reason}],
        "usage": {
            "prompt_tokens": b.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": b.prompt_tokens + completion_tokens,
        },
    }


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog (5) drops connections beyond a handful in flight
    # (the client's SYN is retried a second later); concurrency tests need many more.
    request_queue_size = 256


class StubLLM:
    """The server; a context manager that starts it on enter and stops it on exit."""

    def __init__(self, default: Behaviour | None = None, host: str = "127.0.0.1") -> None:
        self.default = default or reply()
        self.host = host
        self.requests: list[Request] = []
        self.active = 0  # requests being answered right now
        self.max_active = 0  # the most ever answered at once
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting -------------------------------------------------------------------------
    def script(self, *behaviours: Behaviour) -> StubLLM:
        """Queue behaviours for the next requests, in order."""
        with self._lock:
            self._script.extend(behaviours)
        return self

    def _next(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    # --- addresses -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stub server is not running; use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def litellm_kwargs(self) -> dict[str, str]:
        """What to pass to litellm.completion to reach this stub."""
        return {"model": f"openai/{MODEL}", "api_base": self.api_base, "api_key": API_KEY}

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> StubLLM:
        self._server = _Server((self.host, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="llm-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StubLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the handler -----------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: with Nagle's algorithm on, the body
            # waits for the client's delayed ACK (~40 ms) and every answer looks slow.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def _send_json(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # /v1/models, for clients that probe
                if self.path.rstrip("/") in ("/v1/models", "/models"):
                    self._send_json(
                        200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]}
                    )
                else:
                    self._send_json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace")
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw
                path = self.path.split("?", 1)[0]
                with stub._lock:
                    stub.requests.append(
                        Request(path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    n_calls = len(stub.requests)
                if path in EMBEDDING_PATHS and isinstance(body, dict):
                    self._send_json(200, _embeddings(body))
                    return
                if path not in PATHS:
                    self._send_json(
                        404, {"error": {"message": f"no route {path}", "type": "not_found"}}
                    )
                    return
                b = stub._next()
                with stub._lock:
                    stub.active += 1
                    stub.max_active = max(stub.max_active, stub.active)
                try:
                    delay = b.delay_s + random.uniform(0.0, b.jitter_s)
                    if delay:
                        time.sleep(delay)
                finally:
                    with stub._lock:
                        stub.active -= 1
                model = body.get("model", MODEL) if isinstance(body, dict) else MODEL
                if b.respond is not None:
                    b = Behaviour("reply", text=b.respond(body))
                if b.kind == "error":
                    headers = {}
                    if b.retry_after is not None:
                        headers["Retry-After"] = f"{b.retry_after:g}"
                    err = {
                        "message": b.text,
                        "type": "rate_limit_error" if b.status == 429 else "server_error",
                        "code": b.status,
                    }
                    self._send_json(b.status, {"error": err}, headers)
                elif b.kind == "garbage":
                    data = b.body.encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif b.kind == "cut_off":
                    data = json.dumps(
                        _completion(reply("this body never arrives whole"), model, n_calls)
                    ).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                elif isinstance(body, dict) and body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for chunk in _chunks(b, model, n_calls):
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self._send_json(200, _completion(b, model, n_calls))

        return Handler


def llm_stub_fixture() -> Callable[[], Iterator[StubLLM]]:
    """Build the pytest fixture lazily, so importing this module does not need pytest."""
    import pytest

    @pytest.fixture
    def llm_stub() -> Iterator[StubLLM]:
        """A running StubLLM, stopped after the test; script it with `llm_stub.script(...)`."""
        with StubLLM() as stub:
            yield stub

    return llm_stub


with contextlib.suppress(ImportError):  # pytest is a test dependency, not a runtime one
    # `from llm_stub import llm_stub` in a conftest.py registers the fixture.
    llm_stub = llm_stub_fixture()
