"""Built-in providers. Each lives in its own module and is loaded on first use.

Nothing is imported here: the registry discovers providers through the
``modelprov.providers`` entry-point group (built-ins register exactly as
third-party plugins do), with a built-in fallback table for vendored copies
that have no installed metadata.
"""
