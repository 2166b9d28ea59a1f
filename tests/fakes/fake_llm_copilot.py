#!/usr/bin/env python3
"""Fake OpenAI chat-completions model for driving a real GitHub Copilot CLI offline (stdlib only).

Copilot CLI 1.0.102 in BYOK mode (``COPILOT_PROVIDER_BASE_URL=http://127.0.0.1:PORT/v1``,
``COPILOT_PROVIDER_TYPE=openai``, the default wire API ``completions``) sends
``POST /v1/chat/completions`` with ``stream: true`` and these tools, among others:
``bash {command, description, shellId?, mode?, ...}`` (both ``command`` and ``description``
required), ``ask_user {message, requestedSchema}``, ``create {path, file_text}``.
tests/fakes/fake_llm_openai.py (opencode's fake) sends ``bash`` without ``description``; this one
fills in every required argument of Copilot's tools.

Behaviour is chosen from the LAST message of the request:
  * role "tool" (a tool result, or a refusal)  -> text "Tool result received: <result>"; turn ends
  * user text contains FAKE_SHELL               -> one streamed ``bash`` call. Command: the text
        after "FAKE_SHELL:" to the end of the line if given, else $FAKE_CMD, else
        "touch copilot-ran.txt && echo hello-from-copilot"
  * user text contains [[bash:CMD]]             -> the same ``bash`` call with command CMD
  * user text contains FAKE_ASK                 -> one ``ask_user`` call: "Which colour should I
        use?", a single-select field ``colour`` with the choices Red / Blue
  * user text contains FAKE_WRITE               -> one ``create`` call writing ``copilot-note.txt``
        in the working directory (the cwd is read from the request's environment context)
  * user text contains FAKE_SLOW                -> text streamed one word per 0.5 s for
        $FAKE_SLOW_S seconds (default 8), so the busy screen can be seen
  * a request without tools                     -> "Fake title"
  * anything else                               -> "Hello from the fake Copilot model."

Every request is appended (one JSON object per line: t, method, path, headers without
credentials, body) to --log if given.  GET .../models lists one model, ``fake-model``.

Usage:
    python3 fake_llm_copilot.py --port 0 --port-file /tmp/p [--log /tmp/requests.jsonl]
    COPILOT_OFFLINE=true COPILOT_PROVIDER_BASE_URL=http://127.0.0.1:PORT/v1 \\
      COPILOT_PROVIDER_TYPE=openai COPILOT_PROVIDER_API_KEY=dummy COPILOT_MODEL=fake-model copilot
"""
import json
import os
import re
import time
import uuid

try:  # run as a script (this folder is sys.path[0]), or loaded by a test
    from fake_http import FakeHandler, serve
except ImportError:
    from tests.fakes.fake_http import FakeHandler, serve

DEFAULT_CMD = "touch copilot-ran.txt && echo hello-from-copilot"
"""The command of a FAKE_SHELL call without ``FAKE_SHELL:<cmd>`` or ``$FAKE_CMD``."""

ASK_ARGS = {
    "message": "Which colour should I use?",
    "requestedSchema": {
        "properties": {
            "colour": {"type": "string", "title": "Colour", "enum": ["Red", "Blue"]},
        },
        "required": ["colour"],
    },
}
"""Arguments of the FAKE_ASK ``ask_user`` call."""


def _text_of(content):
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


def _cwd_of(msgs):
    """The working directory Copilot states in its system / user context, or ``"."``."""
    for m in msgs:
        text = _text_of(m.get("content"))
        found = re.search(r"[Cc]urrent working directory:\s*(\S+)", text)
        if found:
            return found.group(1).rstrip(".,")
    return "."


def plan(body):
    """Return ("text", str, delay_per_word, duration_s) or ("tool", name, args_dict)."""
    tools = body.get("tools") or []
    msgs = body.get("messages") or []
    if not tools:
        return ("text", "Fake title", 0.0, 0.0)
    last = msgs[-1] if msgs else {}
    if last.get("role") == "tool":
        return ("text", "Tool result received: " + _text_of(last.get("content"))[:200], 0.0, 0.0)
    text = _text_of(last.get("content"))
    m = re.search(r"\[\[bash:(.+?)\]\]", text, re.S)
    if m:
        return ("tool", "bash", {"command": m.group(1).strip(), "description": "Run the requested command"})
    if "FAKE_SHELL" in text:
        m = re.search(r"FAKE_SHELL:(.+)$", text, re.M)
        cmd = m.group(1).strip() if m else os.environ.get("FAKE_CMD") or DEFAULT_CMD
        return ("tool", "bash", {"command": cmd, "description": "Run the fake shell command"})
    if "FAKE_ASK" in text:
        return ("tool", "ask_user", ASK_ARGS)
    if "FAKE_WRITE" in text:
        path = os.path.join(_cwd_of(msgs), "copilot-note.txt")
        return ("tool", "create", {"path": path, "file_text": "written by the fake model\n"})
    if "FAKE_SLOW" in text:
        return ("text", "This answer is slow. " * 40, 0.5, float(os.environ.get("FAKE_SLOW_S", "8")))
    return ("text", "Hello from the fake Copilot model.", 0.0, 0.0)


class Handler(FakeHandler):
    name = "fake-copilot"

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            return self.send_json(200, {"object": "list", "data": [
                {"id": "fake-model", "object": "model", "owned_by": "fake"}]})
        return self.send_json(404, {"error": "not found"})

    def do_POST(self):
        raw = self.read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        self.log_request_body(body)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self.send_json(404, {"error": {"message": "only /chat/completions", "type": "not_found"}})
        p = plan(body)
        model = body.get("model", "fake-model")
        cid = "chatcmpl-" + uuid.uuid4().hex[:12]
        created = int(time.time())
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        call_id = "call_" + uuid.uuid4().hex[:8]
        if not body.get("stream"):
            msg = {"role": "assistant", "content": None}
            if p[0] == "text":
                msg["content"] = p[1]
                finish = "stop"
            else:
                msg["tool_calls"] = [{"id": call_id, "type": "function",
                                      "function": {"name": p[1], "arguments": json.dumps(p[2])}}]
                finish = "tool_calls"
            return self.send_json(200, {"id": cid, "object": "chat.completion", "created": created,
                                        "model": model, "usage": usage,
                                        "choices": [{"index": 0, "message": msg, "finish_reason": finish}]})
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
                t0 = time.monotonic()
                for i, w in enumerate(words):
                    chunk({"content": w + (" " if i < len(words) - 1 else "")})
                    if p[2]:
                        if time.monotonic() - t0 >= p[3]:
                            break
                        time.sleep(p[2])
                finish = "stop"
            else:
                args = json.dumps(p[2])
                chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                       "function": {"name": p[1], "arguments": ""}}]})
                half = len(args) // 2
                for piece in (args[:half], args[half:]):
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                finish = "tool_calls"
            chunk({}, finish)
            # stream_options.include_usage: a last chunk with no choices carries the usage
            self.wfile.write(b"data: " + json.dumps({"id": cid, "object": "chat.completion.chunk",
                                                     "created": created, "model": model, "choices": [],
                                                     "usage": usage}).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client aborted (Esc / exit mid-turn)


def main():
    serve(Handler, __doc__.splitlines()[0], "fake Copilot model listening on http://{host}:{port}/v1")


if __name__ == "__main__":
    main()
