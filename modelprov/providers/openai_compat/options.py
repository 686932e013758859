"""What OpenAI's Chat Completions takes per model, and how ``reasoning`` maps to it.

Known before sending (only documented rules; everything else is learned from
the API's own 400, see :mod:`.errors`):

* **Responses-only models** are refused with :class:`UnsupportedFeatureError`:
  the ids the ``openai`` SDK 3.63 lists in ``ResponsesModel`` but not in
  ``ChatModel`` (``types/shared/responses_model.py``, ``chat_model.py``), plus
  their dated snapshots. o1-pro and o3-pro answering Chat Completions with
  "only supported in v1/responses" is confirmed by sigoden/aichat#1318.
* **stop** is refused for ``o3`` and ``o4-mini`` (and their snapshots): the
  SDK's docstring of ``stop`` says "Not supported with reasoning models o3 and
  o4-mini".
* **temperature / top_p** other than the default ``1`` are refused for the
  o-series (o1, o3, o3-mini, o4-mini ...) and for gpt-5, gpt-5-mini and
  gpt-5-nano; for gpt-5.x and gpt-6.x (not the ``-chat`` models) only when
  ``reasoning`` is set to something other than ``"none"`` (those models take
  sampling options only at effort ``none``; when ``reasoning`` is not given
  the model's own default applies, which is ``none`` for gpt-5.1 and later,
  so nothing is refused). Sources: WIRE.md §2.11 (400 ``unsupported_value``
  bodies in holoviz/lumen#1087, vercel/ai#10932, tmc/langchaingo#1497).

``reasoning`` -> ``reasoning_effort``: the seven effort strings pass through
(the SDK's ``ReasoningEffort`` literal set); a token budget maps to the
nearest effort with :func:`effort_for_budget`.
"""

import functools
import re
from typing import Dict, Optional, Tuple, Union

__all__ = ["BUDGET_EFFORTS", "RESPONSES_ONLY", "effort_for_budget", "effort_of", "model_rules", "openai_unsupported", "responses_only"]

#: (upper bound exclusive, effort): a budget below the bound maps to the effort.
BUDGET_EFFORTS = ((1024, "minimal"), (4096, "low"), (16384, "medium"), (32768, "high"), (65536, "xhigh"))

#: Model ids that answer only on /v1/responses (openai SDK 3.63: ResponsesModel minus ChatModel).
RESPONSES_ONLY = frozenset({
    "o1-pro", "o3-pro", "o3-deep-research", "o4-mini-deep-research", "computer-use-preview",
    "gpt-5-pro", "gpt-5.5-pro", "gpt-5-codex", "gpt-5.1-codex-max", "gpt-5.6-cyber", "gpt-6-cyber",
    "gpt-rosalind-research", "gpt-6-rosalind", "gpt-daybreak-blue-latest", "gpt-daybreak-red-latest",
    "gpt-6.2-astra-law", "gpt-6-astra-healthcare", "gpt-6.1-sol-healthcare", "gpt-6.2-astra-healthcare",
    "gpt-6.2-sol-healthcare",
})  # fmt: skip

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_O_SERIES = re.compile(r"^o\d+(?:-[a-z]+)*$")
_NO_STOP = frozenset({"o3", "o4-mini"})
_GPT5_ORIGINAL = frozenset({"gpt-5", "gpt-5-mini", "gpt-5-nano"})
_GPT5_LATER = re.compile(r"^gpt-(?:5\.\d+|6(?:\.\d+)?)(?:-[a-z]+)*$")


def _base(model: str) -> str:
    """The model id without a dated snapshot suffix (``o3-2025-04-16`` -> ``o3``)."""
    return _SNAPSHOT.sub("", model.strip().lower())


def effort_for_budget(budget: int) -> str:
    """The effort nearest to a reasoning token budget.

    Below 1,024 tokens ``minimal``; below 4,096 ``low``; below 16,384
    ``medium``; below 32,768 ``high``; below 65,536 ``xhigh``; else ``max``.
    """
    for bound, effort in BUDGET_EFFORTS:
        if budget < bound:
            return effort
    return "max"


def effort_of(reasoning: Union[str, int, None]) -> Optional[str]:
    """``reasoning`` as an effort string (``None`` stays ``None``)."""
    if reasoning is None or isinstance(reasoning, str):
        return reasoning
    return effort_for_budget(reasoning)


@functools.lru_cache(maxsize=512)
def model_rules(model: str) -> Tuple[bool, bool, int]:
    """``(responses_only, no_stop, sampling)`` for a model id (cached: it runs on every call).

    ``sampling``: 0 no rule, 1 temperature/top_p only at the default, 2 the
    same unless ``reasoning`` is ``"none"``.
    """
    base = _base(model)
    if _O_SERIES.match(base) or base in _GPT5_ORIGINAL:
        sampling = 1
    elif _GPT5_LATER.match(base) and "chat" not in base.split("-"):
        sampling = 2
    else:
        sampling = 0
    return base in RESPONSES_ONLY, base in _NO_STOP, sampling


def responses_only(model: str) -> bool:
    """Whether ``model`` is served only by ``/v1/responses``."""
    return model_rules(model)[0]


def openai_unsupported(model: str, temperature: Optional[float], top_p: Optional[float], stop: object,
                       reasoning: Union[str, int, None]) -> Dict[str, str]:  # fmt: skip
    """Options OpenAI is documented to refuse for ``model`` (option -> reason)."""
    if temperature is None and top_p is None and not stop:
        return {}
    _, no_stop, sampling = model_rules(model)
    out: Dict[str, str] = {}
    if no_stop and stop:
        out["stop"] = "o3 and o4-mini take no stop sequences"
    if sampling == 1:
        why = "this reasoning model takes only the default value 1"
    elif sampling == 2 and effort_of(reasoning) not in (None, "none"):
        why = "this model takes sampling options only with reasoning='none'"
    else:
        return out
    if temperature is not None and temperature != 1:
        out["temperature"] = why
    if top_p is not None and top_p != 1:
        out["top_p"] = why
    return out
