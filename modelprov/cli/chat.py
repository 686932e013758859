"""``modelprov chat`` (and ``modelprov PROMPT``): one answer, streamed, or an interactive session.

:class:`ChatSession` holds what every turn shares (the client, the model,
the system prompt, the options, the history, the conversation log) and runs
one turn: send, stream the answer to stdout (reasoning to stderr with
``--reasoning``), note a cut-off, a refusal or a fallback on stderr, log the
turn. The interactive loop lives in :mod:`modelprov.cli.interactive`; ``-o``,
``-a`` and ``--schema`` parsing in :mod:`modelprov.cli.chat_options`.
"""

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional

from .chat_options import OptionAction, attachment_part, chat_options, load_schema, parse_json_answer, response_format_for
from .common import ensure_newline, err_is_terminal, note, out, out_json, read_piped_stdin, stdin_is_piped, warn

if TYPE_CHECKING:  # pragma: no cover
    from ..client import Client
    from ..conversation_log import ConversationLog
    from ..messages import Message
    from ..types import ModelResponse, StreamChunk

__all__ = ["ChatSession", "read_prompt", "register", "run"]

_DIM, _RESET = "\033[2m", "\033[0m"
_EXAMPLES = """examples:
  modelprov chat -m openai/gpt-5.4-mini "Say hello"
  modelprov "Say hello"                    the same, with the default model
  git diff | modelprov "Review this"       piped text, a space, then the prompt
  modelprov chat -o temperature 0.2 -o reasoning high "..."
  modelprov chat -a photo.jpg "What is in this picture?"
  modelprov chat --schema 'name, age int, bio: a short bio' "Invent a person"
  modelprov chat -c "And in French?"       continue the last conversation
  modelprov chat                           an interactive session (on a terminal)
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        if isinstance(action, OptionAction):
            return "KEY VALUE"
        return super()._format_args(action, default_metavar)


def register(sub: Any) -> None:
    """Add the ``chat`` command."""
    p = sub.add_parser(
        "chat", help="send a prompt and print the answer (or chat interactively)", formatter_class=_Formatter, epilog=_EXAMPLES,
        description="Send a prompt and stream the answer. Piped stdin comes first, then PROMPT.\n"
        "With no prompt on a terminal, an interactive session starts.\n"
        "Every chat is logged (see `modelprov logs`) unless --no-log.",
    )  # fmt: skip
    p.add_argument("prompt", nargs="?", help="the prompt ('-' or none: read it from piped stdin)")
    p.add_argument("-m", "--model", metavar="MODEL", help="provider/model or alias (default: MODELPROV_MODEL or the configured default_model)")
    p.add_argument("-s", "--system", metavar="SYSTEM", help="system prompt (with -c: the conversation's, unless given)")
    p.add_argument("-o", "--option", dest="options", action=OptionAction, nargs="+", metavar=("KEY", "VALUE"),
                   help="a chat option, KEY VALUE or KEY=VALUE, the value parsed as JSON when it parses (repeatable): "
                   "temperature, top_p, max_tokens, stop, seed, reasoning, cache, tools, tool_choice, response_format, timeout; "
                   "provider-specific settings: -o options '{\"name\": value}'")  # fmt: skip
    p.add_argument("-a", "--attach", dest="attachments", action="append", default=[], metavar="PATH_OR_URL",
                   help="attach an image file or an http(s) URL (repeatable)")  # fmt: skip
    p.add_argument("--schema", metavar="SCHEMA",
                   help="answer as JSON following SCHEMA: a JSON schema, a file holding one, or 'name, age int, bio: a short bio' "
                   "(types str, int, float, bool); prints the JSON")  # fmt: skip
    cont = p.add_mutually_exclusive_group()
    cont.add_argument("-c", "--continue", dest="cont", action="store_true", help="continue the most recent logged conversation")
    cont.add_argument("--cid", metavar="ID", help="continue the logged conversation with this id (or a unique prefix)")
    p.add_argument("--no-stream", action="store_true", help="wait for the whole answer instead of streaming it")
    p.add_argument("--json", action="store_true", help="print one JSON object: text, reasoning, model, usage, latency, ids...")
    p.add_argument("--no-log", action="store_true", help="do not write this chat to the conversation log")
    p.add_argument("--reasoning", action="store_true", help="show the model's reasoning on stderr (ask for it with -o reasoning high)")
    p.add_argument("-t", "--temperature", type=float, metavar="T", help="sampling temperature (the same as -o temperature T)")
    p.add_argument("--max-tokens", type=int, metavar="N", help="cap the answer at N tokens (the same as -o max_tokens N)")
    p.add_argument("--fallback", action="append", default=[], metavar="MODEL", help="a model to try when MODEL fails (repeatable, in order)")
    p.set_defaults(run=run, options=[], prompt_extra=[])


# ------------------------------------------------------------------- prompt
def read_prompt(args: argparse.Namespace) -> Optional[str]:
    """The prompt: piped stdin, then a space and PROMPT (as llm joins them); ``None`` when there is neither."""
    from ..exceptions import ValidationError

    words = ([args.prompt] if args.prompt is not None else []) + list(getattr(args, "prompt_extra", []) or [])
    if len(words) > 1:
        raise ValidationError(f"chat takes one prompt, got {len(words)} words", hint='quote it: modelprov chat "your whole prompt"')
    prompt = words[0] if words and words[0] != "-" else None
    piped = read_piped_stdin() if stdin_is_piped() else None
    if piped is not None and piped.strip():
        prompt = piped if prompt is None else f"{piped} {prompt}"
    if prompt is not None and not prompt.strip():
        raise ValidationError("the prompt is empty (only whitespace)", hint='give some text: modelprov chat "Hello"')
    return prompt


def run(args: argparse.Namespace) -> int:
    """Run ``chat``: one answer for a prompt, else an interactive session on a terminal."""
    from ..exceptions import ValidationError

    prompt = read_prompt(args)
    if prompt is None and stdin_is_piped():
        raise ValidationError("no prompt given and piped stdin is empty", hint='pass one: modelprov chat "Hello", or pipe some text in')
    session = ChatSession.from_args(args)
    try:
        if prompt is None:
            from .interactive import run_session

            return run_session(session)
        session.turn(prompt)
        return 0
    finally:
        session.close()


# ------------------------------------------------------------------ session
class ChatSession:
    """The state shared by the turns of one chat: client, model, options, history and log."""

    def __init__(self, client: "Client", model: str, *, system: Optional[str] = None, options: Optional[Dict[str, Any]] = None,
                 attachments: Optional[List[Any]] = None, schema: Optional[Dict[str, Any]] = None, history: "Optional[List[Message]]" = None,
                 log: "Optional[ConversationLog]" = None, cid: Optional[str] = None, stream: bool = True, as_json: bool = False,
                 show_reasoning: bool = False) -> None:  # fmt: skip
        self.client = client
        self.model = model
        self.system = system
        self.options: Dict[str, Any] = dict(options or {})
        self.attachments = list(attachments or [])
        self.schema = schema
        self.history: List[Message] = list(history or [])
        self.log = log
        self.cid = cid
        self.stream = stream and not as_json and schema is None
        self.as_json = as_json
        self.show_reasoning = show_reasoning
        self.fallbacks: List[Dict[str, Any]] = []
        self._log_warned = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ChatSession":
        """Check every option and build the session (no network I/O)."""
        from ..client import Client
        from ..conversation_log import ConversationLog

        options = chat_options(args.options or [])
        for name, value in (("system", args.system), ("temperature", args.temperature), ("max_tokens", args.max_tokens)):
            if value is not None:
                options[name] = value
        schema = load_schema(args.schema) if args.schema is not None else None
        if schema is not None:
            options["response_format"] = response_format_for(schema)
        attachments = [attachment_part(a) for a in args.attachments]
        log = ConversationLog()
        model, history, cid = args.model, [], None
        if args.cont or args.cid:
            cid = log.resolve_cid(args.cid) if args.cid else log.latest_cid()
            if cid is None:
                from ..exceptions import ValidationError

                raise ValidationError(f"there is no conversation to continue in {log.path}", hint='start one: modelprov chat "Hello"')
            history = log.conversation(cid)
            last = log.entries(n=1, cid=cid)
            if last:
                model = model or last[0].model
                if "system" not in options and last[0].system:
                    options["system"] = last[0].system
        fallbacks: List[Dict[str, Any]] = []
        client = Client(fallbacks=args.fallback, on_fallback=fallbacks.append)
        provider, name = client.resolve(model)
        if not args.fallback:
            client.provider(provider)  # a missing key or a bad setting fails now, before a session starts
        if args.no_log or not log.enabled():
            log_arg: Optional[ConversationLog] = None
        else:
            log_arg = log
        system = options.pop("system", None)
        self = cls(client, f"{provider}/{name}", system=system, options=options, attachments=attachments, schema=schema,
                   history=history, log=log_arg, cid=cid, stream=not args.no_stream, as_json=args.json,
                   show_reasoning=args.reasoning)  # fmt: skip
        self.fallbacks = fallbacks  # filled by the client's on_fallback hook
        return self

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def reset(self) -> None:
        """Start a new conversation: no history, a new conversation id at the next logged turn."""
        self.history = []
        self.cid = None

    # ------------------------------------------------------------- a turn
    def _user_message(self, text: str) -> "Message":
        from ..messages import Message
        from ..parts import TextPart

        if not self.attachments:
            return Message(role="user", content=text)
        parts: List[Any] = [TextPart(text=text)] + self.attachments
        self.attachments = []  # attachments go with the first message only
        return Message(role="user", content=parts)

    def turn(self, text: str) -> "ModelResponse":
        """Send ``text`` as the next user message, print the answer and the notes, log the turn; return the answer."""
        from ..exceptions import ResponseError

        user = self._user_message(text)
        messages = self.history + [user]
        opts = dict(self.options)
        if self.system:
            opts["system"] = self.system
        del self.fallbacks[:]
        start = time.monotonic()
        printed: List[str] = []
        try:
            if self.stream:
                resp = self._streamed(messages, opts, printed)
            else:
                resp = self.client.complete(self.model, messages, **opts)
        except BaseException as exc:
            from ..exceptions import ConfigurationError, ValidationError

            failure: Any = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else exc
            # a bad option or a missing key is a mistake on the command line, not a turn of the conversation
            if isinstance(exc, (Exception, KeyboardInterrupt)) and not isinstance(exc, (ValidationError, ConfigurationError)):
                self._record(user, None, failure, "".join(printed) or None, time.monotonic() - start)
            raise
        latency = resp.latency_s if resp.latency_s is not None else round(time.monotonic() - start, 3)
        data: Any = None
        if self.schema is not None:
            try:
                data = parse_json_answer(resp.text)
            except ValueError as exc:
                self._record(user, resp, f"the answer is not valid JSON: {exc}", None, latency)
                raise ResponseError(
                    f"the model's answer is not valid JSON ({exc})", provider=resp.provider,
                    hint="the answer is kept in the log (modelprov logs -n 1); try another model, or a simpler schema",
                ) from None  # fmt: skip
        self.history += [user, resp.message]
        self._record(user, resp, None, None, latency)
        self._print(resp, data, latency)
        self._notes(resp)
        return resp

    def _streamed(self, messages: List[Any], opts: Dict[str, Any], printed: List[str]) -> "ModelResponse":
        from .._collect import collect

        with self.client.stream(self.model, messages, **opts) as chunks:
            return collect(self._show(chunks, printed))

    def _show(self, chunks: Iterator["StreamChunk"], printed: List[str]) -> Iterator["StreamChunk"]:
        """Pass ``chunks`` through, writing text to stdout as it arrives (reasoning to stderr when asked)."""
        dim = self.show_reasoning and err_is_terminal()
        thinking = False
        try:
            for chunk in chunks:
                if chunk.reasoning and self.show_reasoning:
                    if not thinking:
                        thinking = True
                        sys.stderr.write(_DIM if dim else "")
                    sys.stderr.write(chunk.reasoning)
                    sys.stderr.flush()
                if chunk.text:
                    if thinking:
                        thinking = False
                        sys.stderr.write((_RESET if dim else "") + "\n\n")
                        sys.stderr.flush()
                    printed.append(chunk.text)
                    out(chunk.text, end="")
                yield chunk
        finally:
            if thinking:
                sys.stderr.write((_RESET if dim else "") + "\n")
                sys.stderr.flush()
        ensure_newline()

    def _print(self, resp: "ModelResponse", data: Any, latency: float) -> None:
        if self.as_json:
            out_json(self.to_json(resp, data, latency))
            return
        if self.stream:
            return  # already written as it arrived
        if self.show_reasoning and resp.reasoning:
            dim = err_is_terminal()
            sys.stderr.write((_DIM if dim else "") + resp.reasoning + (_RESET if dim else "") + "\n\n")
            sys.stderr.flush()
        if data is not None or self.schema is not None:
            out_json(data)
        elif resp.text:
            out(resp.text, end="")
            ensure_newline()

    def to_json(self, resp: "ModelResponse", data: Any = None, latency: Optional[float] = None) -> Dict[str, Any]:
        """The ``--json`` object for ``resp``."""
        u = resp.usage
        usage = {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "total_tokens": u.total_tokens,
                 "reasoning_tokens": u.reasoning_tokens, "cache_read_tokens": u.cache_read_tokens,
                 "cache_write_tokens": u.cache_write_tokens, "cost": u.cost}  # fmt: skip
        obj: Dict[str, Any] = {
            "text": resp.text,
            "reasoning": resp.reasoning or None,
            "model": resp.model,
            "provider": resp.provider,
            "requested_model": self.model,
            "finish_reason": resp.finish_reason,
            "refusal": resp.refusal,
            "usage": usage,
            "dropped_options": list(resp.dropped_options),
            "latency_s": latency,
            "conversation_id": self.cid if self.log is not None else None,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in resp.tool_calls],
            "request_id": resp.request_id,
            "fallback": self._fell_back(resp),
        }
        if self.schema is not None:
            obj["data"] = data
        return obj

    def _fell_back(self, resp: "ModelResponse") -> bool:
        """Whether a fallback answered (the client's on_fallback hook fired, or another provider answered)."""
        return bool(self.fallbacks) or bool(resp.provider and resp.provider != self.model.split("/", 1)[0])

    def _notes(self, resp: "ModelResponse") -> None:
        if resp.finish_reason == "length":
            note("the answer was cut off at the output limit (finish_reason=length); allow more with --max-tokens N or -o max_tokens N")
        if resp.finish_reason == "refusal" or resp.refusal:
            note("the model refused" + (f": {resp.refusal}" if resp.refusal else ""))
        elif resp.finish_reason == "content_filter":
            note("the provider's content filter stopped the answer (finish_reason=content_filter)")
        for info in self.fallbacks:
            note(f"{info.get('from')} failed ({info.get('message') or 'error'}); trying {info.get('to')}")
        if self._fell_back(resp):
            note(f"the answer came from the fallback {resp.provider}/{resp.model}, not {self.model}")
        if resp.dropped_options:
            note(f"left out options {', '.join(resp.dropped_options)} ({resp.provider}/{resp.model} does not take them)")

    def _record(self, user: "Message", resp: "Optional[ModelResponse]", error: Any, text: Optional[str], latency: Optional[float]) -> None:
        """Log the turn; a failure to log is a warning (once), never an error."""
        if self.log is None:
            return
        try:
            self.cid = self.log.record(
                model=self.model, messages=[user], response=resp, conversation_id=self.cid, system=self.system,
                options=self.options, error=error, text=text, latency_s=latency,
            )  # fmt: skip
        except Exception as exc:  # logging never breaks a chat
            if not self._log_warned:
                self._log_warned = True
                warn(f"{getattr(exc, 'message', exc)} (the chat itself went on; --no-log or `modelprov logs off` skips the log)")
