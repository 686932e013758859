"""``ConversationLog``: a local SQLite log of prompts and answers, and the conversations they form.

The ``modelprov`` command logs every chat here by default; Python code
writes to it only when it asks (``ConversationLog().record(...)``)::

    from modelprov.conversation_log import ConversationLog

    log = ConversationLog()                    # $MODELPROV_LOGS_PATH or the user data directory
    reply = client.complete("openai/gpt-5.4-mini", "Hi")
    cid = log.record(model="openai/gpt-5.4-mini", messages=["Hi"], response=reply)
    history = log.conversation(cid)            # [user Message, assistant Message]

Each entry holds the model asked for, the provider and model that answered,
the system prompt, the turn's new messages (``Message.to_dict()`` JSON: the
message content only, never a key), the answer text, its reasoning, the
answer as a message (reasoning parts with their signatures, so a continued
conversation sends them back), usage and cost, finish reason, latency, the
UTC time, the conversation id and the error when the call failed (redacted).

Standard library only (``sqlite3``). The file is created readable by its
owner only, in WAL mode with a busy timeout, so two terminals or a batch can
write at once. ``schema_version`` records every numbered migration applied;
files from any earlier release are upgraded in place when opened. Failures
to open, read or write the file raise :class:`~modelprov.ConfigurationError`
naming the file and the fix.
"""

import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ._redact import redact
from .exceptions import ConfigurationError, ValidationError
from .messages import Message
from .types import ModelResponse
from .validation import normalize_messages

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ConversationLog",
    "LogEntry",
    "default_logs_path",
    "new_conversation_id",
]

#: Numbered schema migrations: ``MIGRATIONS[n]`` takes a file from version ``n`` to ``n + 1``. Append only.
MIGRATIONS: Tuple[Tuple[str, ...], ...] = (
    (  # 1: the first release
        "CREATE TABLE conversations (id TEXT PRIMARY KEY, name TEXT, model TEXT, created_at TEXT NOT NULL)",
        "CREATE TABLE responses ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL REFERENCES conversations(id),"
        " created_at TEXT NOT NULL, model TEXT, provider TEXT, response_model TEXT, system TEXT, prompt TEXT,"
        " messages TEXT NOT NULL, response TEXT, reasoning TEXT, response_message TEXT, finish_reason TEXT,"
        " usage TEXT, input_tokens INTEGER, output_tokens INTEGER, cost REAL, latency_s REAL, request_id TEXT,"
        " error TEXT)",
    ),
    (  # 2: the chat options of each call, and listing one conversation without a full scan
        "ALTER TABLE responses ADD COLUMN options TEXT",
        "CREATE INDEX responses_by_conversation ON responses (conversation_id, id)",
    ),
)
#: The schema version this release writes.
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = (
    "id", "conversation_id", "created_at", "model", "provider", "response_model", "system", "prompt", "messages", "response",
    "reasoning", "response_message", "finish_reason", "usage", "input_tokens", "output_tokens", "cost", "latency_s",
    "request_id", "error", "options",
)  # fmt: skip
_OFF_VALUES = ("0", "off", "false", "no")
_ON_VALUES = ("1", "on", "true", "yes")
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def default_logs_path(environ: Optional[Mapping[str, str]] = None, platform: Optional[str] = None) -> str:
    """``$MODELPROV_LOGS_PATH`` when set, else ``logs.db`` in the user data directory.

    Linux and other Unix: ``$XDG_DATA_HOME/modelprov`` or
    ``~/.local/share/modelprov``; macOS: ``~/Library/Application Support/modelprov``;
    Windows: ``%LOCALAPPDATA%\\modelprov``.
    """
    env = os.environ if environ is None else environ
    explicit = (env.get("MODELPROV_LOGS_PATH") or "").strip()
    if explicit:
        return os.path.expanduser(explicit)
    plat = sys.platform if platform is None else platform
    if plat.startswith("win"):
        import ntpath

        base = env.get("LOCALAPPDATA") or ntpath.join(env.get("USERPROFILE") or os.path.expanduser("~"), "AppData", "Local")
        return ntpath.join(base, "modelprov", "logs.db")
    import posixpath

    home = env.get("HOME") or os.path.expanduser("~")
    if plat == "darwin":
        return posixpath.join(home, "Library", "Application Support", "modelprov", "logs.db")
    xdg = env.get("XDG_DATA_HOME") or ""
    base = xdg if posixpath.isabs(xdg) else posixpath.join(home, ".local", "share")
    return posixpath.join(base, "modelprov", "logs.db")


def new_conversation_id() -> str:
    """A new conversation id: 26 lower-case characters, a ULID (sorts by creation time, then random)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _loads(text: Optional[str], default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class LogEntry:
    """One logged call. ``messages`` are the turn's new messages and ``response_message`` the answer (``Message.to_dict()`` dicts)."""

    id: int
    conversation_id: str
    created_at: str
    model: Optional[str] = None
    provider: Optional[str] = None
    response_model: Optional[str] = None
    system: Optional[str] = None
    prompt: Optional[str] = None
    messages: List[Dict[str, Any]] = field(default_factory=list)
    response: Optional[str] = None
    reasoning: Optional[str] = None
    response_message: Optional[Dict[str, Any]] = None
    finish_reason: Optional[str] = None
    usage: Dict[str, Any] = field(default_factory=dict)
    cost: Optional[float] = None
    latency_s: Optional[float] = None
    request_id: Optional[str] = None
    error: Optional[str] = None
    options: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _from_row(cls, row: Sequence[Any]) -> "LogEntry":
        d = dict(zip(_COLUMNS, row))
        for key in ("input_tokens", "output_tokens"):
            d.pop(key)
        d["messages"] = _loads(d["messages"], [])
        d["response_message"] = _loads(d["response_message"], None)
        d["usage"] = _loads(d["usage"], {})
        d["options"] = _loads(d["options"], {})
        return cls(**d)

    def to_dict(self) -> Dict[str, Any]:
        """The entry as plain JSON types."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class ConversationLog:
    """The SQLite conversation log at ``path`` (default :func:`default_logs_path`); created on first write.

    :param busy_timeout: seconds to wait for another writer (another
        terminal, a batch) before giving up.
    Thread safe: every operation opens its own connection.
    """

    def __init__(self, path: "Union[str, os.PathLike[str], None]" = None, *, busy_timeout: float = 5.0) -> None:
        self.path: str = os.fspath(path) if path is not None else default_logs_path()
        if not self.path:
            raise ValidationError("the conversation log path is empty", hint="give a file path, or unset MODELPROV_LOGS_PATH")
        self.busy_timeout = busy_timeout
        self._ready = False

    def __repr__(self) -> str:
        return f"ConversationLog({self.path!r})"

    # ----------------------------------------------------------- on / off
    @property
    def off_marker(self) -> str:
        """The file whose presence turns the command line's logging off (``modelprov logs off``)."""
        return os.path.join(os.path.dirname(os.path.abspath(self.path)), "logs-off")

    def enabled(self, environ: Optional[Mapping[str, str]] = None) -> bool:
        """Whether the command line logs: ``MODELPROV_LOGS`` (on/off) when set, else no ``logs-off`` marker file."""
        env = (os.environ if environ is None else environ).get("MODELPROV_LOGS", "").strip().lower()
        if env in _OFF_VALUES:
            return False
        if env in _ON_VALUES:
            return True
        return not os.path.exists(self.off_marker)

    def set_enabled(self, on: bool) -> None:
        """Turn the command line's logging on (remove the marker) or off (create it)."""
        try:
            if on:
                if os.path.exists(self.off_marker):
                    os.remove(self.off_marker)
            else:
                os.makedirs(os.path.dirname(self.off_marker), mode=0o700, exist_ok=True)
                with open(self.off_marker, "w", encoding="utf-8") as fh:
                    fh.write("modelprov: the command line does not log conversations while this file exists\n")
        except OSError as exc:
            raise ConfigurationError(f"cannot change {self.off_marker}: {exc.strerror or exc}") from None

    # ---------------------------------------------------------- database
    def exists(self) -> bool:
        """Whether the log file exists yet."""
        return os.path.exists(self.path)

    def _fail(self, exc: BaseException) -> ConfigurationError:
        reason = getattr(exc, "strerror", None) or str(exc)
        return ConfigurationError(
            f"cannot use the conversation log {self.path}: {reason}",
            hint="set MODELPROV_LOGS_PATH to a writable file, or turn the log off: modelprov logs off",
        )

    def _connect(self, create: bool) -> "sqlite3.Connection":
        try:
            if not os.path.exists(self.path):
                if not create:
                    raise FileNotFoundError(2, "no such file")
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), mode=0o700, exist_ok=True)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))  # owner only: it holds prompts
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise self._fail(exc) from None
        try:
            if not self._ready:
                self._migrate(conn)
                self._ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: "sqlite3.Connection") -> None:
        try:
            if self._version(conn) == SCHEMA_VERSION:
                return
            try:
                conn.execute("PRAGMA journal_mode=WAL")  # concurrent readers and a writer; kept in the file
            except sqlite3.Error:  # pragma: no cover - a file system without shared memory: the default journal
                pass
            conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it done
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
                current = self._version(conn) or 0
                if current > SCHEMA_VERSION:
                    raise ConfigurationError(
                        f"the conversation log {self.path} was written by a newer modelprov (schema {current}, this one knows {SCHEMA_VERSION})",
                        hint="upgrade modelprov, or point MODELPROV_LOGS_PATH at another file",
                    )
                for number in range(current, SCHEMA_VERSION):
                    for statement in MIGRATIONS[number]:
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (number + 1, _utc_now()))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    @staticmethod
    def _version(conn: "sqlite3.Connection") -> Optional[int]:
        try:
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        except sqlite3.OperationalError:  # no version table: a new (empty) file
            return None
        return None if row is None or row[0] is None else int(row[0])

    def schema_version(self) -> int:
        """The schema version of the file (0 when it does not exist yet); opening it migrates it."""
        if not self.exists():
            return 0
        conn = self._connect(create=False)
        try:
            return self._version(conn) or 0
        finally:
            conn.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        if not self.exists():
            return []
        conn = self._connect(create=False)
        try:
            return list(conn.execute(sql, tuple(params)).fetchall())
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        finally:
            conn.close()

    # ------------------------------------------------------------- write
    def record(
        self,
        *,
        model: Optional[str],
        messages: Any,
        response: Optional[ModelResponse] = None,
        conversation_id: Optional[str] = None,
        provider: Optional[str] = None,
        system: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        error: Union[BaseException, str, None] = None,
        text: Optional[str] = None,
        latency_s: Optional[float] = None,
    ) -> str:
        """Log one call and return its conversation id (a new one unless ``conversation_id`` is given).

        ``messages`` are the messages this call added to the conversation
        (a prompt string, or messages); ``response`` the answer, or ``error``
        the failure (stored redacted) and ``text`` any partial answer. Only a
        call with a response and no error becomes part of the conversation
        that :meth:`conversation` rebuilds.
        """
        msgs = normalize_messages(messages)
        cid = conversation_id or new_conversation_id()
        reasoning: Optional[str] = None
        answer: Optional[str] = None
        usage: Dict[str, Any] = {}
        finish = response_model = request_id = None
        if response is not None:
            text = response.text
            reasoning = response.reasoning or None
            answer = _dumps(response.message.to_dict())
            usage = {k: v for k, v in vars(response.usage).items() if v not in (None, {})}
            finish, response_model, request_id = response.finish_reason, response.model, response.request_id
            provider = provider or response.provider
            latency_s = response.latency_s if latency_s is None else latency_s
        err: Optional[str] = None
        if error is not None:
            err = redact(error if isinstance(error, str) else f"{type(error).__name__}: {error}")
        prompt = "\n".join(m.text for m in msgs if m.role == "user")
        row = (
            cid, _utc_now(), model, provider, response_model, system, prompt, _dumps([m.to_dict() for m in msgs]), text, reasoning,
            answer, finish, _dumps(usage), usage.get("input_tokens"), usage.get("output_tokens"), usage.get("cost"), latency_s,
            request_id, err, redact(_dumps(dict(options or {}))),
        )  # fmt: skip
        conn = self._connect(create=True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT OR IGNORE INTO conversations (id, name, model, created_at) VALUES (?, ?, ?, ?)",
                    (cid, prompt[:60] or None, model, row[1]),
                )
                conn.execute(f"INSERT INTO responses ({', '.join(_COLUMNS[1:])}) VALUES ({', '.join('?' * len(row))})", row)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        finally:
            conn.close()
        return cid

    # -------------------------------------------------------------- read
    def latest_cid(self) -> Optional[str]:
        """The id of the conversation logged last (``None`` for an empty log)."""
        rows = self._query("SELECT conversation_id FROM responses ORDER BY id DESC LIMIT 1")
        return str(rows[0][0]) if rows else None

    def resolve_cid(self, cid: str) -> str:
        """The full id of the conversation ``cid`` names (the id itself, or a unique prefix of at least 6 characters)."""
        if not isinstance(cid, str) or not cid.strip():
            raise ValidationError("a conversation id must be a non-empty string")
        cid = cid.strip()
        rows = self._query("SELECT id FROM conversations WHERE id = ?", (cid,))
        if not rows and len(cid) >= 6:
            rows = self._query("SELECT id FROM conversations WHERE substr(id, 1, ?) = ? LIMIT 2", (len(cid), cid))
            if len(rows) > 1:
                raise ValidationError(f"conversation id {cid!r} is ambiguous", hint="give more of it (list them: modelprov logs)")
        if not rows:
            raise ValidationError(f"no conversation {cid!r} in the log {self.path}", hint="list the logged ones: modelprov logs")
        return str(rows[0][0])

    def entries(self, n: Optional[int] = 3, query: Optional[str] = None, cid: Optional[str] = None) -> List[LogEntry]:
        """The ``n`` newest entries (all for ``None`` or 0), newest first; ``query`` matches prompt, system or answer text
        (case-insensitive), ``cid`` keeps one conversation (an id or unique prefix)."""
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            raise ValidationError(f"n must be a non-negative integer, not {n!r}")
        where: List[str] = []
        params: List[Any] = []
        if cid is not None:
            where.append("conversation_id = ?")
            params.append(self.resolve_cid(cid))
        if query:
            where.append("(instr(lower(coalesce(prompt, '')), ?) OR instr(lower(coalesce(response, '')), ?) OR instr(lower(coalesce(system, '')), ?))")
            params += [query.lower()] * 3
        sql = f"SELECT {', '.join(_COLUMNS)} FROM responses"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if n:
            sql += f" LIMIT {int(n)}"
        return [LogEntry._from_row(row) for row in self._query(sql, params)]

    def conversation(self, cid: str) -> List[Message]:
        """The history of conversation ``cid``: each answered turn's messages, then its answer (failed turns left out)."""
        full = self.resolve_cid(cid)
        rows = self._query(
            "SELECT messages, response_message FROM responses WHERE conversation_id = ? AND error IS NULL AND response_message IS NOT NULL ORDER BY id",
            (full,),
        )
        return list(_history(rows, self.path))

    def stats(self) -> Dict[str, int]:
        """``{"responses": N, "conversations": M}`` (zeros for a log not created yet)."""
        rows = self._query("SELECT (SELECT COUNT(*) FROM responses), (SELECT COUNT(*) FROM conversations)")
        responses, conversations = rows[0] if rows else (0, 0)
        return {"responses": int(responses), "conversations": int(conversations)}


def _history(rows: Sequence[Tuple[Any, ...]], path: str) -> Iterator[Message]:
    for sent, answer in rows:
        try:
            for data in _loads(sent, []):
                yield Message.from_dict(data)
            yield Message.from_dict(_loads(answer, {}))
        except ValidationError as exc:
            raise ConfigurationError(f"the conversation log {path} holds a malformed message: {exc.message}") from None
