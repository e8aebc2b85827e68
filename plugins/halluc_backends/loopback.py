"""A loopback HTTP server that speaks the OpenAI chat-completions, Anthropic messages and Gemini
generateContent APIs, with scripted faults: what the tests and `tests/bench/pilot_throughput.py`
run the real SDKs against.

    with LoopbackServer(latency=0.2) as server:
        server.script("prompt 3", ["429:0.5", "500", "ok"])   # per prompt, consumed in order
        OpenAIBackend("m", base_url=server.url + "/v1")

Faults: `429:<retry-after s>`, `500`, `503`, `401`, `400`, `slow:<s>` (sleep, then answer),
`truncate` (a body cut short), `ok`; `say:<text>` answers with that text (a judge's reply). Answers are deterministic: the words of "echo <prompt>",
cut at max_tokens, with made-up log-probs (token i: -0.1 (i + 1); alternative j: that minus j); or,
with a `responder(prompt, body) -> text`, that text (a model served behind the API, e.g. a local one).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def answer_tokens(prompt: str, max_tokens: int) -> list[str]:
    words = f"echo {prompt}".split()[:max_tokens]
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def token_logprob(i: int) -> float:
    return -0.1 * (i + 1)


class _Handler(BaseHTTPRequestHandler):
    """One request to the loopback server: its scripted action (a status, `slow:S`, `truncate`) or
    a normal answer in the provider's schema."""

    protocol_version = "HTTP/1.1"
    server_state: LoopbackServer

    def log_message(self, *args: Any) -> None:  # quiet
        return None

    def do_POST(self) -> None:
        state = self.server_state
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        kind, prompt, limit = state._parse(self.path, body)
        action = state._next_action(prompt)
        time.sleep(state.latency)
        if state.api_key and state.api_key not in " ".join(
            self.headers.get(h, "") for h in ("Authorization", "x-api-key", "x-goog-api-key")
        ):
            action = "401"
        if action.startswith("slow:"):
            time.sleep(float(action.split(":")[1]))
            action = "ok"
        if action == "ok" and state.responder is not None:
            action = "say:" + state.responder(prompt, body)
        if action.startswith("say:"):
            self._send(200, state._answer(kind, action[4:], limit, body, said=True))
        elif action == "ok":
            self._send(200, state._answer(kind, prompt, limit, body))
        elif action == "truncate":
            self._truncated(state._answer(kind, prompt, limit, body))
        else:
            status, _, retry_after = action.partition(":")
            headers = {"Retry-After": retry_after} if retry_after else {}
            self._send(int(status), {"error": {"message": f"scripted {status}", "type": "scripted",
                                                "code": int(status)}}, headers)  # fmt: skip

    def _truncated(self, doc: dict) -> None:
        """Half the answer, then the connection closes (a broken transfer)."""
        data = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True

    def _send(self, status: int, doc: dict, headers: dict | None = None) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client that gave up (timeout) closes its socket: not our problem


class LoopbackServer:
    def __init__(self, latency: float = 0.0, api_key: str | None = None, port: int = 0,
                 responder: Callable[[str, dict[str, Any]], str] | None = None):  # fmt: skip
        self.latency, self.responder = latency, responder
        self.port = port  # 0: any free port (a fixed one: a server that comes back where it was)
        self.api_key = api_key  # when set, requests without it get 401
        self.calls: Counter[str] = Counter()  # prompt text -> requests received
        self.times: list[float] = []  # arrival time of every request
        self._scripts: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def script(self, match: str, actions: list[str]) -> None:
        """Requests whose prompt contains `match` get these actions in order, then normal answers."""
        with self._lock:
            self._scripts[match] = list(actions)

    def _next_action(self, prompt: str) -> str:
        with self._lock:
            self.calls[prompt] += 1
            self.times.append(time.monotonic())
            for match, actions in self._scripts.items():
                if match in prompt and actions:
                    return actions.pop(0)
        return "ok"

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LoopbackServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._server = _Quiet(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @staticmethod
    def _parse(path: str, body: dict) -> tuple[str, str, int]:
        if path.endswith(":generateContent"):
            parts = body["contents"][0]["parts"]
            limit = body.get("generationConfig", {}).get("maxOutputTokens", 256)
            return "gemini", "".join(p.get("text", "") for p in parts), limit
        content = body["messages"][-1]["content"]
        text = content if isinstance(content, str) else "".join(c.get("text", "") for c in content)
        kind = "anthropic" if path.endswith("/messages") else "openai"
        return kind, text, body.get("max_tokens") or 256

    @staticmethod
    def _answer(kind: str, prompt: str, limit: int, body: dict, said: bool = False) -> dict[str, Any]:
        # a said text keeps its spacing and line breaks: each token is a word with the space before it
        tokens = re.findall(r"\s*\S+", prompt.strip()) if said else answer_tokens(prompt, limit)
        text = "".join(tokens)
        n_in, n_out = len(prompt.split()), len(tokens)
        finish = "length" if not said and len(f"echo {prompt}".split()) > limit else "stop"
        k = int(body.get("top_logprobs") or body.get("generationConfig", {}).get("logprobs") or 0)
        if kind == "anthropic":
            return {"id": "msg_loopback", "type": "message", "role": "assistant", "model": body.get("model"),
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "max_tokens" if finish == "length" else "end_turn", "stop_sequence": None,
                    "usage": {"input_tokens": n_in, "output_tokens": n_out}}  # fmt: skip
        if kind == "gemini":
            candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"},
                                         "finishReason": "MAX_TOKENS" if finish == "length" else "STOP"}  # fmt: skip
            if body.get("generationConfig", {}).get("responseLogprobs"):
                candidate["logprobsResult"] = {
                    "chosenCandidates": [{"token": t, "logProbability": token_logprob(i)} for i, t in enumerate(tokens)],
                    "topCandidates": [{"candidates": [{"token": t if j == 0 else f"alt{j}",
                                                       "logProbability": token_logprob(i) - j} for j in range(k)]}
                                      for i, t in enumerate(tokens)],
                }  # fmt: skip
            return {"candidates": [candidate],
                    "usageMetadata": {"promptTokenCount": n_in, "candidatesTokenCount": n_out,
                                      "totalTokenCount": n_in + n_out}}  # fmt: skip
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                                  "finish_reason": finish, "logprobs": None}  # fmt: skip
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [
                {"token": t, "logprob": token_logprob(i), "bytes": None,
                 "top_logprobs": [{"token": t if j == 0 else f"alt{j}", "logprob": token_logprob(i) - j, "bytes": None}
                                  for j in range(k)]}
                for i, t in enumerate(tokens)]}  # fmt: skip
        return {"id": "chatcmpl-loopback", "object": "chat.completion", "created": 0, "model": body.get("model"),
                "choices": [choice],
                "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}}  # fmt: skip
