#!/usr/bin/env python3
"""Fake OpenAI-compatible chat-completions model for opencode (stdlib only, no network).

Drives a real ``opencode serve`` in the e2e tests (tests/e2e/opencode_harness.py).
Based on the shared tool /work/shared/tools/fake_llm_openai.py; additions here:
``--port 0`` + ``--port-file``, richer log lines and the ``[[todo]]`` code.

Usage:
    python3 fake_llm_openai.py --port 0 --port-file /tmp/p [--log /tmp/fake_llm.jsonl]

opencode.json in the project points a provider at it:
    "provider": {"fake": {"npm": "@ai-sdk/openai-compatible",
                          "options": {"baseURL": "http://127.0.0.1:18080/v1", "apiKey": "x"},
                          "models": {"fake-model": {"name": "Fake", "tool_call": true}}}}

Behaviour is chosen from the LAST message of the request:
  * role "tool" (a tool result came back)  -> plain text "Tool result received: ..."
  * user text contains  [[bash:CMD]]        -> one streamed tool call: bash {"command": CMD, ...}
  * user text contains  [[task:INNER]]     -> one streamed tool call: task {subagent_type "general",
                                               prompt INNER}; the child session's first request then
                                               carries INNER, e.g. [[task:[[bash:echo hi]]]]
  * user text contains  [[question]]        -> one streamed tool call: question {...}
  * user text contains  [[todo]]            -> one streamed tool call: todowrite with three todos
                                               (TODOS below: completed, in_progress, pending); the
                                               session's GET /session/{id}/todo then returns them
  * user text contains  [[http500]] (any 3 digits) -> that HTTP error status with
                                               an OpenAI-style error body (5xx/429 make opencode retry)
  * user text contains  [[slow]]            -> plain text streamed slowly (1 chunk/s, 60 s)
                                               so the session stays busy (abort / kill-mid-turn tests)
  * anything else                           -> plain text "Hello from the fake LLM."
Requests that carry no "tools" (opencode's title generator) always get the
plain text "Fake title".

Every request is appended (one JSON object per line: t, method, path, headers
without credentials, body) to --log if given.  With --port 0 the OS picks the
port; --port-file receives it (written atomically once the socket listens).
Supports both stream=true (SSE chunks, ends with data: [DONE]) and stream=false.
"""
import json
import re
import time
import uuid

try:  # run as a script (this folder is sys.path[0]), or loaded by a test
    from fake_http import FakeHandler, serve
except ImportError:
    from tests.fakes.fake_http import FakeHandler, serve

TODOS = [
    {"content": "Read the failing test", "status": "completed", "priority": "high"},
    {"content": "Fix the parser bug", "status": "in_progress", "priority": "high"},
    {"content": "Update the changelog", "status": "pending", "priority": "low"},
]
"""The todo list the ``[[todo]]`` code writes (opencode's Todo shape: content, status, priority)."""

def _text_of(content):
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for p in content:
            if isinstance(p, dict) and p.get("type") == "text":
                out.append(p.get("text", ""))
        return "\n".join(out)
    return str(content)


def plan(body):
    """Return ("text", str, delay) or ("tool", name, args_dict)."""
    tools = body.get("tools") or []
    msgs = body.get("messages") or []
    if not tools:
        return ("text", "Fake title", 0.0)
    last = msgs[-1] if msgs else {}
    if last.get("role") == "tool":
        res = _text_of(last.get("content"))
        return ("text", "Tool result received: " + res[:200], 0.0)
    text = _text_of(last.get("content"))
    m = re.search(r"\[\[task:(.+)\]\]", text, re.S)
    if m:
        return ("tool", "task", {"description": "Sub task", "prompt": m.group(1).strip(),
                                 "subagent_type": "general"})
    m = re.search(r"\[\[bash:(.+?)\]\]", text, re.S)
    if m:
        return ("tool", "bash", {"command": m.group(1).strip()})
    if "[[todo]]" in text:
        return ("tool", "todowrite", {"todos": TODOS})
    if "[[question]]" in text:
        return ("tool", "question", {"questions": [{
            "question": "Which colour should I use?",
            "header": "Colour",
            "options": [
                {"label": "Red", "description": "Use red"},
                {"label": "Blue", "description": "Use blue"},
            ],
        }]})
    m = re.search(r"\[\[http(\d{3})\]\]", text)
    if m:
        return ("error", int(m.group(1)), None)
    if "[[slow]]" in text:
        return ("text", "slow " * 60, 1.0)
    return ("text", "Hello from the fake LLM.", 0.0)


class Handler(FakeHandler):
    name = "fake-llm"

    def _json(self, code, obj):
        self.send_json(code, obj)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            return self._json(200, {"object": "list", "data": [
                {"id": "fake-model", "object": "model", "owned_by": "fake"}]})
        return self._json(404, {"error": "not found"})

    def do_POST(self):
        raw = self.read_body()
        try:
            body = json.loads(raw or b"{}")
        except Exception:
            body = {}
        self.log_request_body(body)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self._json(404, {"error": "not found"})
        p = plan(body)
        if p[0] == "error":
            return self._json(p[1], {"error": {"message": f"fake error {p[1]}",
                                               "type": ("server_error" if p[1] >= 500 or p[1] == 429
                                                        else "invalid_request_error"),
                                               "code": p[1]}})
        model = body.get("model", "fake-model")
        cid = "chatcmpl-" + uuid.uuid4().hex[:12]
        created = int(time.time())
        if not body.get("stream"):
            msg = {"role": "assistant", "content": None}
            if p[0] == "text":
                msg["content"] = p[1]
                finish = "stop"
            else:
                msg["tool_calls"] = [{"id": "call_" + uuid.uuid4().hex[:8], "type": "function",
                                      "function": {"name": p[1], "arguments": json.dumps(p[2])}}]
                finish = "tool_calls"
            return self._json(200, {"id": cid, "object": "chat.completion", "created": created,
                                    "model": model,
                                    "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                                    "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                                              "total_tokens": 15}})
        self.start_sse()

        def chunk(delta, finish=None, usage=None):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if usage is not None:
                obj["usage"] = usage
            self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
            self.wfile.flush()

        try:
            chunk({"role": "assistant", "content": ""})
            if p[0] == "text":
                words = p[1].split(" ")
                for i, w in enumerate(words):
                    chunk({"content": w + (" " if i < len(words) - 1 else "")})
                    if p[2]:
                        time.sleep(p[2])
                finish = "stop"
            else:
                args = json.dumps(p[2])
                call_id = "call_" + uuid.uuid4().hex[:8]
                chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                       "function": {"name": p[1], "arguments": ""}}]})
                half = len(args) // 2
                for piece in (args[:half], args[half:]):
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                finish = "tool_calls"
            chunk({}, finish, {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # client aborted (e.g. session abort)


def main():
    serve(Handler, __doc__.splitlines()[0], "fake LLM listening on http://{host}:{port}/v1", default_port=18080)


if __name__ == "__main__":
    main()
