"""``modelprov embed [-m MODEL] [--lines] [--json] [TEXT]``: embedding vectors.

The text is TEXT, or piped stdin when TEXT is not given (stdin is then not
read; a terminal is never waited on). One text by default; ``--lines``
embeds each non-blank line separately. Output: one JSON array per text, one
per line (JSON Lines), on a terminal and in a pipe alike; ``--json`` prints
one object with the model, provider, dimensions, usage and the vectors.
"""

import argparse
import json
from typing import Any, List

from .common import EXIT_OK, out, out_json, read_piped_stdin

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Add the ``embed`` command."""
    embed = sub.add_parser("embed", help="print the embedding vector of a text",
                           description="Embed TEXT (or piped stdin when no TEXT is given). Prints one JSON array per "
                           "text; --json prints model, dimensions, usage and vectors.")
    embed.add_argument("text", nargs="?", metavar="TEXT", help="the text (default: read from piped stdin)")
    embed.add_argument("-m", "--model", metavar="MODEL",
                       help="provider/model, e.g. openai/text-embedding-3-small or mock/echo (default: the default model)")
    embed.add_argument("--lines", action="store_true", help="embed each non-blank line as a separate text")
    embed.add_argument("--json", action="store_true", help="print one JSON object: model, provider, dimensions, usage, vectors")
    embed.set_defaults(run=run)


def _texts(args: argparse.Namespace) -> List[str]:
    from ..exceptions import ValidationError

    text = args.text if args.text is not None else read_piped_stdin()
    if text is None:
        raise ValidationError("no text to embed", hint='pass it (modelprov embed -m MODEL "some text") or pipe it on stdin')
    texts = [line.strip() for line in text.splitlines() if line.strip()] if args.lines else [text.strip()]
    if not texts or not all(texts):
        raise ValidationError("the text to embed is empty", hint="give a non-blank text")
    return texts


def run(args: argparse.Namespace) -> int:
    """Run ``embed``."""
    from ..client import Client

    texts = _texts(args)
    with Client() as client:
        resp = client.embed(args.model, texts)
    if args.json:
        usage = resp.usage
        out_json({"model": resp.model, "provider": resp.provider, "count": len(resp.embeddings),
                  "dimensions": len(resp.embeddings[0]) if resp.embeddings else 0,
                  "usage": {"input_tokens": usage.input_tokens, "total_tokens": usage.total_tokens},
                  "vectors": resp.embeddings})
        return EXIT_OK
    for vector in resp.embeddings:
        out(json.dumps(vector))
    return EXIT_OK
