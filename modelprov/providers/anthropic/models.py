"""What an Anthropic model id takes: sampling options, thinking types, effort levels; the reasoning mapping.

Pure functions, no I/O. Model ids are matched by family and version, read
from the id itself (``claude-<line>-<major>[-<minor>][-<date>]`` since Claude
4, ``claude-<major>[-<minor>]-<line>`` before), anywhere in the string so
that gateway spellings such as ``anthropic/claude-opus-4-7`` match too. Facts:
WIRE.md §3.9 (thinking-troubleshooting and effort docs, SDK 2.17
``model_param.py``).

============================  ========  =================  =========  =========================  =======
model (id rule)               sampling  thinking types     disabled   effort levels              system
============================  ========  =================  =========  =========================  =======
version < 4.5 (legacy ids)    yes       enabled            yes        (none)                     no
version 4.5 (Haiku 4.5)       yes       enabled            yes        (none used)                no
version 4.6 (Opus/Sonnet 4.6) yes       adaptive, enabled  yes        low medium high max        no
version 4.7 (Opus 4.7)        no        adaptive           yes        low medium high xhigh max  no
version >= 4.8 (Opus 4.8,     no        adaptive           yes        low medium high xhigh max  yes
Opus/Sonnet/Haiku 5.x)
Fable and Mythos lines        no        adaptive           no         low medium high xhigh max  yes
unknown id                    yes       adaptive           yes        low medium high xhigh max  yes
============================  ========  =================  =========  =========================  =======

(The deprecated Mythos preview id takes both thinking types but cannot
disable thinking, has no ``xhigh``, takes no sampling options and no system
messages; it is matched by name.)

*System* is whether ``role: "system"`` messages may appear inside
``messages`` (API version 2026-10-21): "Opus 4.8 and later" accept them,
older models answer 400 "role 'system' is not supported on this model"
(WIRE.md §3.9). For those, later system messages are joined into the
top-level ``system`` instead, as under 2023-06-01.

*Sampling* is whether ``temperature``/``top_p``/``top_k`` may be sent under
API version ``2023-06-01``: the rule "any line at version 4.7 or later, and
every Fable and Mythos model" covers Opus 4.7, Opus 4.8 and the Claude 5
family (WIRE.md §3.9: "Opus 4.7, Opus 4.8 and Fable 5 (and later models)
accept only the default values"). These models are refused any value, even
the default one: leaving the option out is the same as its default.

The ``reasoning`` chat option (see :func:`plan_reasoning`):

==============================  ======================================================================
``reasoning``                   sent
==============================  ======================================================================
``None``                        nothing (the model's default applies)
``"none"``                      ``thinking: {"type": "disabled"}``; on models that cannot disable
                                thinking (Fable, Mythos) the nearest level: adaptive with effort ``low``
``"minimal"``                   as ``"low"`` (Anthropic has no minimal level)
``"low"`` ... ``"max"``         adaptive models: ``thinking: {"type": "adaptive", "display":
                                "summarized"}`` + ``output_config.effort``; an effort the model lacks
                                rounds down to the next level it has (``xhigh`` -> ``high`` on 4.6).
                                ``enabled``-only models (4.5 and older): ``{"type": "enabled",
                                "budget_tokens": B}`` with B = ``max_tokens`` x 1/4 (low), 1/2
                                (medium), 3/4 (high, xhigh, max), at least 1024 -- so at least a
                                quarter of ``max_tokens`` is left for the answer
int budget N                    ``enabled``-only models (4.5 and older): ``{"type": "enabled",
                                "budget_tokens": max(N, 1024)}``; models taking adaptive thinking
                                (4.6 included, where ``enabled`` is deprecated and the SDK warns
                                "use adaptive"): adaptive with the nearest effort: N < 4096 low,
                                < 16384 medium, < 32768 high, < 65536 xhigh, else max (rounded down
                                to the model's levels)
==============================  ======================================================================

``display: "summarized"`` is sent with adaptive thinking because newer models
default to ``omitted`` (thinking blocks with empty text); ``enabled`` is only
used on models whose default already is ``summarized`` (4.5 and older), so it
is sent without ``display``. A budget must be below ``max_tokens``: when the
caller set ``max_tokens`` at or below it, :class:`ValidationError` is raised
before any I/O; when the caller set none, ``max_tokens`` is raised to
``budget + 4096`` if the default is too small, but never above the model's
output limit (:func:`output_limit`: 64,000 for the 4.5 family, Sonnet 4 and
3.7, 32,000 for Opus 4 and 4.1); a budget that does not fit below that limit
is a :class:`ValidationError` too.

*Forced tools*: the API refuses thinking while ``tool_choice`` forces a tool
(``"required"`` or a named tool): "Thinking may not be enabled when
tool_choice forces tool use." That holds for ``enabled`` thinking on every
model and for adaptive thinking before Opus 4.8 (4.6, 4.7, Mythos preview);
Opus 4.8 and the Claude 5 family take adaptive thinking with a forced tool
(third-party reports: langchain-ai/langchain-aws#1141,
router-for-me/CLIProxyAPI#4797). :func:`forced_tool_conflict` tells which.
"""

import re
from typing import Any, Dict, FrozenSet, NamedTuple, Optional, Tuple, Union

from ...exceptions import ValidationError

__all__ = ["ModelTraits", "ReasoningPlan", "forced_tool_conflict", "model_traits", "output_limit", "plan_reasoning"]

#: Anthropic's effort levels, lowest first.
EFFORTS = ("low", "medium", "high", "xhigh", "max")
#: The smallest ``budget_tokens`` the API accepts.
MIN_BUDGET = 1024
#: Tokens kept for the answer when ``max_tokens`` is raised to fit a budget.
ANSWER_ROOM = 4096
#: Share of ``max_tokens`` given to thinking for an effort on ``enabled``-only models.
BUDGET_SHARE = {"low": 0.25, "medium": 0.5, "high": 0.75, "xhigh": 0.75, "max": 0.75}
#: Budget thresholds -> effort, for adaptive-only models (budget below the bound -> that effort).
BUDGET_EFFORT = ((4096, "low"), (16384, "medium"), (32768, "high"), (65536, "xhigh"))

_NEW_ID = re.compile(r"claude-(opus|sonnet|haiku|fable|mythos)-(\d+)(?:[-.](\d{1,2}))?(?!\d)")
_OLD_ID = re.compile(r"claude-(\d+)(?:[-.](\d))?-(opus|sonnet|haiku)")
_ALL: Tuple[str, ...] = EFFORTS
_NO_XHIGH = ("low", "medium", "high", "max")


class ModelTraits(NamedTuple):
    """What one model id takes (see the module table)."""

    sampling: bool
    thinking: FrozenSet[str]
    can_disable: bool
    efforts: Tuple[str, ...]
    system_messages: bool
    #: Whether adaptive thinking may go with a ``tool_choice`` that forces a tool.
    adaptive_forced_tools: bool


class ReasoningPlan(NamedTuple):
    """What the ``reasoning`` option becomes: the ``thinking`` object, the effort and ``max_tokens``."""

    thinking: Dict[str, Any]
    effort: Optional[str]
    max_tokens: int


_ENABLED = ModelTraits(True, frozenset({"enabled"}), True, (), False, False)
_BOTH = ModelTraits(True, frozenset({"adaptive", "enabled"}), True, _NO_XHIGH, False, False)
_PREVIEW = ModelTraits(False, frozenset({"adaptive", "enabled"}), False, _NO_XHIGH, False, False)
_OPUS_47 = ModelTraits(False, frozenset({"adaptive"}), True, _ALL, False, False)
_ADAPTIVE = ModelTraits(False, frozenset({"adaptive"}), True, _ALL, True, True)
_ALWAYS_ON = ModelTraits(False, frozenset({"adaptive"}), False, _ALL, True, True)
_UNKNOWN = ModelTraits(True, frozenset({"adaptive"}), True, _ALL, True, True)


def _parse(model: str) -> Optional[Tuple[str, int, int]]:
    """``(line, major, minor)`` read from a model id, or ``None`` for an id of no known shape."""
    lower = (model or "").lower()
    m = _NEW_ID.search(lower)
    if m is not None:
        return m.group(1), int(m.group(2)), int(m.group(3) or 0)
    m = _OLD_ID.search(lower)
    if m is None:
        return None
    return m.group(3), int(m.group(1)), int(m.group(2) or 0)


def model_traits(model: str) -> ModelTraits:
    """The traits of ``model`` (an id, possibly with a gateway prefix or a date suffix)."""
    if "claude-mythos-preview" in (model or "").lower():  # deprecated; end of life 2026-06-30 (WIRE.md §3.9)
        return _PREVIEW
    parsed = _parse(model)
    if parsed is None:
        return _UNKNOWN
    line, major, minor = parsed
    if line in ("fable", "mythos"):
        return _ALWAYS_ON
    version = (major, minor)
    if version >= (4, 8):
        return _ADAPTIVE
    if version >= (4, 7):
        return _OPUS_47
    if version >= (4, 6):
        return _BOTH
    return _ENABLED


def output_limit(model: str) -> Optional[int]:
    """The most output tokens an ``enabled``-thinking model (4.5 and older) allows; ``None`` when not known here.

    Anthropic's model pages: 64,000 for Haiku/Sonnet/Opus 4.5, Sonnet 4 and
    Sonnet 3.7; 32,000 for Opus 4 and 4.1. Newer models (128,000 and more)
    never get a budget-derived ``max_tokens``; older ones cannot think.
    """
    parsed = _parse(model)
    if parsed is None or model_traits(model) is not _ENABLED or parsed[1:] < (3, 7):
        return None
    line, major, minor = parsed
    if line == "opus" and (major, minor) < (4, 5):
        return 32000
    return 64000


def forced_tool_conflict(model: str, thinking_type: Optional[str]) -> bool:
    """Whether the API refuses ``thinking_type`` together with a ``tool_choice`` that forces a tool (module docstring)."""
    if thinking_type == "enabled":
        return True
    return thinking_type == "adaptive" and not model_traits(model).adaptive_forced_tools


def _round_down(effort: str, levels: Tuple[str, ...]) -> Optional[str]:
    for level in reversed(EFFORTS[: EFFORTS.index(effort) + 1]):
        if level in levels:
            return level
    return None


def _budget_effort(budget: int) -> str:
    for bound, effort in BUDGET_EFFORT:
        if budget < bound:
            return effort
    return "max"


def _adaptive(effort: Optional[str], traits: ModelTraits, max_tokens: int) -> ReasoningPlan:
    level = _round_down(effort, traits.efforts) if effort else None
    return ReasoningPlan({"type": "adaptive", "display": "summarized"}, level, max_tokens)


def plan_reasoning(model: str, reasoning: Union[str, int], max_tokens: Optional[int], default_max: int) -> ReasoningPlan:
    """The thinking settings for ``reasoning`` on ``model`` (see the module table).

    ``max_tokens`` is the caller's (``None`` when not given); ``default_max``
    is sent otherwise. Raises :class:`ValidationError` when a budget cannot
    fit below the caller's ``max_tokens``.
    """
    traits = model_traits(model)
    limit = max_tokens if max_tokens is not None else default_max
    if isinstance(reasoning, str):
        effort = "low" if reasoning == "minimal" else reasoning
        if effort == "none":
            if traits.can_disable:
                return ReasoningPlan({"type": "disabled"}, None, limit)
            return _adaptive("low", traits, limit)
        if "adaptive" in traits.thinking:
            return _adaptive(effort, traits, limit)
        budget = max(MIN_BUDGET, int(limit * BUDGET_SHARE[effort]))
        if budget >= limit:
            raise ValidationError(
                f"max_tokens={limit} leaves no room for thinking on {model} (the minimum budget is {MIN_BUDGET} tokens)",
                hint=f"raise max_tokens above {MIN_BUDGET}, or pass reasoning='none'",
            )
        return ReasoningPlan({"type": "enabled", "budget_tokens": budget}, None, limit)
    budget = max(MIN_BUDGET, int(reasoning))
    if "adaptive" in traits.thinking:
        return _adaptive(_budget_effort(budget), traits, limit)
    if max_tokens is None:
        limit = max(default_max, budget + ANSWER_ROOM)
        cap = output_limit(model)
        if cap is not None and limit > cap:
            if budget >= cap:
                raise ValidationError(
                    f"the reasoning budget ({budget} tokens) does not fit below the output limit of {model} ({cap} tokens)",
                    hint=f"pass a budget below {cap} (thinking counts towards max_tokens), or an effort such as reasoning='high'",
                )
            limit = cap
    elif budget >= max_tokens:
        raise ValidationError(
            f"the reasoning budget ({budget} tokens) must be below max_tokens ({max_tokens}) for Anthropic",
            hint="raise max_tokens above the budget (thinking counts towards it), or lower the budget",
        )
    return ReasoningPlan({"type": "enabled", "budget_tokens": budget}, None, limit)
