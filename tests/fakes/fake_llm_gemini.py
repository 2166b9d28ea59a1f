#!/usr/bin/env python3
"""Fake Gemini API (generativelanguage v1beta) plus OpenAI chat completions, for driving a real
Gemini CLI (0.61.0) and Qwen Code (0.24.4) offline. Standard library only.

Based on the shared probe tool /work/shared/tools/fake_llm_gemini.py; here it uses the fakes'
common plumbing (``fake_http``: ``--port 0`` + ``--port-file``, ``--log`` JSON lines).

Gemini CLI: ``GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:<port> GEMINI_API_KEY=dummy gemini``
(settings ``security.auth.selectedType: "gemini-api-key"``). Routes:

  * ``POST /v1beta/models/<m>:streamGenerateContent?alt=sse`` (SSE) and ``:generateContent``;
  * ``:countTokens`` -> ``{"totalTokens": 42}``; ``:embedContent`` / ``:batchEmbedContents``;
  * ``GET .../models`` -> an empty list.

Qwen Code: ``OPENAI_BASE_URL=http://127.0.0.1:<port>/v1 OPENAI_API_KEY=dummy OPENAI_MODEL=fake-model``
(settings ``security.auth.selectedType: "openai"``): ``POST /v1/chat/completions`` (stream or not).

The reply is chosen from the LAST user turn of the request (the same triggers for both APIs):

  * a request in JSON mode (Gemini: ``generationConfig.responseMimeType == application/json`` or a
    response schema, the CLI's model router; OpenAI: ``response_format``), or an OpenAI request
    that offers no tools (Qwen's side requests) -> JSON built from the schema / ``{}`` / text
    ``FAKE_SIDE``; never a tool call, never delayed;
  * the last user turn carries a tool result (Gemini ``functionResponse``, OpenAI role ``tool``)
    -> text ``FAKE_DONE`` (the turn ends);
  * text contains ``FAKE_ASK``   -> the ask-user tool (Gemini ``ask_user``; for Qwen the first
    offered tool whose name starts with ``ask_user``), one choice question "Which colour do you
    prefer?" with the options Red / Blue / Green;
  * text contains ``FAKE_WRITE`` -> ``write_file`` of ``written-by-fake.txt`` (relative to the
    project: Gemini accepts it; for Qwen the absolute path is built from the folder its context message
    names: "I'm currently working in the directory: ...");
  * text contains ``FAKE_SHELL`` -> the shell tool ``run_shell_command`` (both agents) with the
    command after ``FAKE_SHELL:`` up to the end of the line if given, else ``$FAKE_CMD``, else
    ``touch gemini-ran.txt`` (a writing command: both agents ask before running it);
  * anything else                -> text ``FAKE_REPLY``.

A tool is only called when the request offers it (else the reply is text ``FAKE_NO_TOOL <name>``).
``FAKE_SLOW`` in the last user text delays the reply by ``$FAKE_SLOW_S`` seconds (default 6),
spread over a few streamed chunks for a text reply, so the busy screen can be captured.

Every request is appended to ``--log`` as one JSON line: ``t``, ``method``, ``path``, ``headers``
(without credentials: ``x-goog-api-key`` and ``authorization`` are dropped), ``body`` (the parsed
JSON: a typed prompt can be compared with what arrived, character for character), ``raw_sha256``
(of the body bytes as received) and ``fake_reply`` (the trigger that chose the answer).
"""
import hashlib
import json
import os
import re
import threading
import time

try:  # run as a script (this folder is sys.path[0]), or loaded by a test
    import fake_http
    from fake_http import FakeHandler, serve
except ImportError:
    from tests.fakes import fake_http
    from tests.fakes.fake_http import FakeHandler, serve

DEFAULT_CMD = "touch gemini-ran.txt"
"""The shell command of ``FAKE_SHELL`` without ``FAKE_SHELL:<cmd>`` or ``$FAKE_CMD``."""

ASK_QUESTION = "Which colour do you prefer?"
ASK_OPTIONS = ("Red", "Blue", "Green")

_LOCK = threading.Lock()
_SECRET = set(fake_http.SECRET_HEADERS) | {"x-goog-api-key"}


def slow_seconds():
    try:
        return float(os.environ.get("FAKE_SLOW_S", "6"))
    except ValueError:
        return 6.0


def shell_command(text):
    m = re.search(r"FAKE_SHELL:(.+)", text)
    if m and m.group(1).strip():
        return m.group(1).strip()
    return os.environ.get("FAKE_CMD") or DEFAULT_CMD


def from_schema(s):
    """A JSON value valid for schema ``s`` (first enum value, "fake", minimum or 1, false, [])."""
    if not isinstance(s, dict):
        return "fake"
    if s.get("enum"):
        return s["enum"][0]
    t = s.get("type")
    if isinstance(t, list):
        t = t[0] if t else ""
    t = (t or "").lower()
    if t == "object" or "properties" in s:
        return {k: from_schema(v) for k, v in (s.get("properties") or {}).items()}
    if t == "array":
        return []
    if t in ("number", "integer"):
        return s.get("minimum", 1)  # the CLI's router rejects complexity_score 0 (zod min 1)
    if t == "boolean":
        return False
    return "fake"


def plan(text, tool_result, offered, cwd=None):
    """``(kind, payload)`` for the last user ``text``: ("text", str) or ("tool", (name, args)).

    ``tool_result``: the last user turn is a tool result. ``offered``: names of the offered tools.
    """
    if tool_result:
        return "done", ("text", "FAKE_DONE")
    if "FAKE_ASK" in text:
        name = "ask_user" if "ask_user" in offered else next(
            (n for n in sorted(offered) if n.startswith("ask_user")), "ask_user")
        question = {"question": ASK_QUESTION, "header": "Colour",
                    "options": [{"label": o, "description": o.lower()} for o in ASK_OPTIONS]}
        if name == "ask_user":
            question.update(type="choice")
        else:  # Qwen's ask_user_question takes Claude's AskUserQuestion shape
            question.update(multiSelect=False)
        return "ask", ("tool", (name, {"questions": [question]}))
    if "FAKE_WRITE" in text:
        path = "written-by-fake.txt"
        if cwd:
            path = os.path.join(cwd, path)
        return "write", ("tool", ("write_file", {"file_path": path, "content": "hello from fake model\n"}))
    if "FAKE_SHELL" in text:
        return "shell", ("tool", ("run_shell_command", {"command": shell_command(text),
                                                         "description": "Create marker file",
                                                         "is_background": False}))
    return "text", ("text", "FAKE_REPLY")


def _cwd_from_context(text):
    """The project folder named by the context the agent sends ("I'm currently working in the
    directory: /path"), or None."""
    m = re.search(r"working in the directory:\s*(/[^\s`'\"]+)", text or "")
    return m.group(1).rstrip(".,)") if m else None


def _fit(reply, decls):
    """``reply`` (a tool call) with only the arguments the offered tool declares; a text
    ``FAKE_NO_TOOL <name>`` when that tool is not offered."""
    name, args = reply[1]
    if name not in decls:
        return "text", f"FAKE_NO_TOOL {name}"
    props = (decls[name] or {}).get("properties")
    if isinstance(props, dict) and props:
        args = {k: v for k, v in args.items() if k in props}
    return "tool", (name, args)


class Handler(FakeHandler):
    name = "fake-gemini"

    # -- log
    def _log(self, body, raw, reply):
        if not self.request_log:
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _SECRET}
        entry = {"t": time.time(), "method": self.command, "path": self.path, "headers": headers,
                 "body": body, "raw_sha256": hashlib.sha256(raw).hexdigest(), "fake_reply": reply}
        with _LOCK, open(self.request_log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def _write(self, data):
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False  # the client cancelled (Esc)

    # -- routes
    def do_GET(self):
        self._log(None, b"", "get")
        if self.path.split("?")[0].rstrip("/").endswith("/models"):
            if "/v1beta" in self.path:
                return self.send_json(200, {"models": []})
            return self.send_json(200, {"object": "list", "data": [
                {"id": "fake-model", "object": "model", "owned_by": "fake"}]})
        return self.send_json(404, {"error": {"code": 404, "message": "fake: not found"}})

    def do_POST(self):
        raw = self.read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        path = self.path.split("?")[0]
        if path.rstrip("/").endswith("/chat/completions"):
            return self._openai(body, raw)
        if path.endswith(":countTokens"):
            self._log(body, raw, "count")
            return self.send_json(200, {"totalTokens": 42})
        if path.endswith(":embedContent") or path.endswith(":batchEmbedContents"):
            self._log(body, raw, "embed")
            n = len(body.get("requests") or [1])
            return self.send_json(200, {"embedding": {"values": [0.0] * 8},
                                        "embeddings": [{"values": [0.0] * 8}] * n})
        if path.endswith(":streamGenerateContent") or path.endswith(":generateContent"):
            return self._gemini(body, raw, stream=path.endswith(":streamGenerateContent"))
        self._log(body, raw, "404")
        return self.send_json(404, {"error": {"code": 404, "message": "fake: not found"}})

    # -- Gemini
    def _gemini(self, body, raw, stream):
        model = self.path.split("/models/")[-1].split(":")[0] if "/models/" in self.path else "fake"
        gc = body.get("generationConfig") or {}
        schema = gc.get("responseJsonSchema") or gc.get("responseSchema")
        text, tool_result = "", False
        for c in reversed(body.get("contents") or []):
            if c.get("role", "user") == "user":
                parts = [p for p in c.get("parts") or [] if isinstance(p, dict)]
                tool_result = any("functionResponse" in p for p in parts)
                text = "\n".join(p.get("text", "") for p in parts)
                break
        if gc.get("responseMimeType") == "application/json" or schema:
            kind, reply = "json", ("text", json.dumps(from_schema(schema or {})))
        else:
            decls = {d.get("name"): d.get("parametersJsonSchema") or d.get("parameters") or {}
                     for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []}
            kind, reply = plan(text, tool_result, set(decls))
            if reply[0] == "tool":
                reply = _fit(reply, decls)
            if reply[0] == "text" and reply[1].startswith("FAKE_NO_TOOL"):
                kind = "no-tool"
        slow = kind != "json" and "FAKE_SLOW" in text
        self._log(body, raw, kind + ("+slow" if slow else ""))
        if reply[0] == "tool":
            name, args = reply[1]
            parts_list = [[{"functionCall": {"name": name, "args": args}}]]
        elif slow:
            words = ("This answer is slow " + reply[1]).split(" ")
            parts_list = [[{"text": w + " "}] for w in words[:-1]] + [[{"text": words[-1]}]]
        else:
            parts_list = [[{"text": reply[1]}]]
        if slow and len(parts_list) == 1:
            time.sleep(slow_seconds())
        delay = slow_seconds() / len(parts_list) if slow and len(parts_list) > 1 else 0.0
        objs = []
        for i, parts in enumerate(parts_list):
            last = i == len(parts_list) - 1
            obj = {"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
                   "modelVersion": model, "responseId": "fake-%d" % int(time.time() * 1000)}
            if last:
                obj["candidates"][0]["finishReason"] = "STOP"
                obj["usageMetadata"] = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}
            objs.append(obj)
        if not stream:
            merged = objs[-1]
            merged["candidates"][0]["content"]["parts"] = [p for ps in parts_list for p in ps]
            return self.send_json(200, merged)
        self.start_sse()
        for obj in objs:
            if delay:
                time.sleep(delay)
            if not self._write(("data: " + json.dumps(obj) + "\r\n\r\n").encode()):
                return

    # -- OpenAI chat completions (Qwen Code)
    def _openai(self, body, raw):
        msgs = body.get("messages") or []
        last = msgs[-1] if msgs else {}

        def text_of(m):
            c = m.get("content")
            if isinstance(c, list):
                return "\n".join(x.get("text", "") for x in c if isinstance(x, dict))
            return c or ""

        decls = {(t.get("function") or {}).get("name"): (t.get("function") or {}).get("parameters") or {}
                 for t in body.get("tools") or []}
        offered = set(decls)
        text = text_of(last) if last.get("role") == "user" else ""
        if body.get("response_format") or not offered:
            kind = "side"
            reply = ("text", "{}" if body.get("response_format") else "FAKE_SIDE")
        else:
            context = "\n".join(text_of(m) for m in msgs if m.get("role") in ("system", "user"))
            kind, reply = plan(text, last.get("role") == "tool", offered, cwd=_cwd_from_context(context))
            if reply[0] == "tool":
                reply = _fit(reply, decls)
        if reply[0] == "text" and reply[1].startswith("FAKE_NO_TOOL"):
            kind = "no-tool"
        slow = kind != "side" and "FAKE_SLOW" in text
        self._log(body, raw, kind + ("+slow" if slow else ""))
        model = body.get("model", "fake-model")
        cid = "chatcmpl-fake%d" % int(time.time() * 1000)
        created = int(time.time())
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        call_id = "call_fake_%d" % int(time.time() * 1000)
        if reply[0] == "tool":
            name, args = reply[1]
            finish = "tool_calls"
        else:
            finish = "stop"
        if not body.get("stream"):
            if slow:
                time.sleep(slow_seconds())
            msg = {"role": "assistant", "content": None}
            if reply[0] == "tool":
                msg["tool_calls"] = [{"id": call_id, "type": "function",
                                      "function": {"name": name, "arguments": json.dumps(args)}}]
            else:
                msg["content"] = reply[1]
            return self.send_json(200, {"id": cid, "object": "chat.completion", "created": created, "model": model,
                                        "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                                        "usage": usage})
        deltas = [{"role": "assistant", "content": ""}]
        if reply[0] == "tool":
            arg_text = json.dumps(args)
            deltas.append({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                           "function": {"name": name, "arguments": ""}}]})
            half = len(arg_text) // 2
            deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                       for piece in (arg_text[:half], arg_text[half:])]
        else:
            words = (("This answer is slow " if slow else "") + reply[1]).split(" ")
            deltas += [{"content": w + (" " if i < len(words) - 1 else "")} for i, w in enumerate(words)]
        delay = slow_seconds() / len(deltas) if slow else 0.0
        self.start_sse()
        for delta in deltas:
            if delay:
                time.sleep(delay)
            chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            if not self._write(b"data: " + json.dumps(chunk).encode() + b"\n\n"):
                return
        end = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], "usage": usage}
        self._write(b"data: " + json.dumps(end).encode() + b"\n\ndata: [DONE]\n\n")


def main():
    serve(Handler, __doc__.splitlines()[0], "fake gemini/openai listening on http://{host}:{port}", default_port=0)


if __name__ == "__main__":
    main()
