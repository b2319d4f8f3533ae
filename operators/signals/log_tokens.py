"""The token sequence a log line is matched on, by rules that know nothing about a particular
system.

1. whole values that punctuation would cut apart are masked first: dates, URLs, e-mail
   addresses, Unix and Windows paths, UUIDs, IPv6 addresses, MAC-style hex byte runs, long
   hex ids, the value of every ``key=value`` (also an empty one: ``logname= uid=0`` has two
   values), and an empty ``()``/``[]``/``{}`` (an absent value);
2. a unit after a number (``5.2 KB``, ``12 ms``) is dropped, so ``93.0 B`` and ``5.2 KB`` agree;
3. the line is split on ``= : , ; ( ) [ ] { } " ' < > | +`` and on dot leaders (``.....``);
4. every token that contains a digit or a masked span becomes ``<*>``; the key of a
   ``key=value`` stays a word even with a digit in it (``r24=0x1f``): it names a field. A
   line left with no word at all keeps the letters of its identifier-like tokens
   (``ext3_file_write+0x19/0x88`` → ``ext_file_write``), so such lines are not all one group.

Used by `airis.operators.signals.log_templates.LogTemplateMiner`; `normalise` shows the result.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

__all__ = ["MASKS", "PARAM", "normalise", "tokenise", "tokenise_many"]


#: The wildcard of a template; masked values become this token.
PARAM = "<*>"
# Marks a masked span until tokenisation; a NUL byte never appears in a text log line. No
# spaces around it: a token with a masked part ("blk_-<hex>") is a variable as a whole.
_MARK = "\x00"

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_UNIT_WORDS = (r"[KMGTP]i?B", "B", "bytes", "ms", "us", "µs", "ns", "s", "sec", "secs", "min", "h")
_UNITS = rf"(?:{'|'.join(_UNIT_WORDS)})"


def _starts(unit: str) -> str:
    """The characters a unit's pattern starts with: its leading class, or its first letter."""
    return unit[1 : unit.index("]")] if unit[0] == "[" else unit[0]


# What a unit starts with: a cheap test before its alternatives are tried.
_UNIT_STARTS = "".join(sorted({c for unit in _UNIT_WORDS for c in _starts(unit)}))
_VALUE_END = r"[\s,;)\]}&]"

#: (name, pattern) of the values masked whole, in order, before the line is split.
MASKS: tuple[tuple[str, str], ...] = (
    # Dates first: their times would otherwise look like IPv6 or hex byte runs.
    (
        "date",
        rf"\b(?:{_WEEKDAY},?\s+)?{_MONTH}\s+\d{{1,2}}(?:,?\s+\d{{4}})?\s+\d{{1,2}}:\d{{2}}"
        rf"(?::\d{{2}}(?:[.,]\d+)?)?(?:\s+[A-Z]{{3,4}})?(?:\s+\d{{4}})?",
    ),
    ("url", r"\b[A-Za-z][A-Za-z0-9+.-]*://\S+"),
    ("email", r"[\w.+-]+@[\w-]+\.[\w.-]+"),
    # An absolute or ./relative path with at least one segment; "HTTP/1.1" is not one
    # (preceded by a word character) and its digits mask it anyway.
    ("path", r"(?<![\w/.:])\.{0,2}/[\w.@%+~=&?#:-]+(?:/[\w.@%+~=&?#:-]*)*"),
    # A Windows path, drive-letter (C:\Windows\...) or UNC (\\host\share\...).
    ("winpath", r"(?<![\w\\])(?:[A-Za-z]:|\\\\[\w.$-]+)\\[^\s,;\"'<>|]*"),
    ("uuid", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    # IPv6 before the split on ":" would cut it into pieces (some without digits).
    # (Hex groups and at least two colons, with a digit somewhere: also a clock time.)
    (
        "ipv6",
        r"(?<![\w:.])(?=[0-9A-Fa-f:]*\d)(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"
        r"|(?<![\w:])::[0-9A-Fa-f]{1,4}\b",
    ),
    ("hexbytes", r"\b(?:[0-9A-Fa-f]{2}[:-]){3,}[0-9A-Fa-f]{2}\b"),
    ("hexid", r"\b(?:0[xX])?[0-9a-fA-F]{8,}\b"),
    # Any value of key=value, up to a separator: "rhost=zummit.com", "status=M" ...
    ("kv", r"(?<==)[^\s,;)\]}=&]+"),
    # ... and an empty one ("logname= uid=0"): absent this time, a value all the same.
    ("kv_empty", rf"(?<=\w=)(?={_VALUE_END}|$)"),
    # An empty bracket pair standing alone is an absent value, e.g. "from 1.2.3.4 () at".
    ("empty", r"(?:(?<=\s)|^)(?:\(\)|\[\]|\{\})(?=\s|$)"),
)
# Substrings without one of which a mask cannot match: its regex is skipped (for speed).
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "date": (":",),
    "url": ("://",),
    "email": ("@",),
    "path": ("/",),
    "winpath": ("\\",),
    "uuid": ("-",),
    "ipv6": (":",),
    "hexbytes": (":", "-"),
    "kv": ("=",),
    "kv_empty": ("=",),
    "empty": ("()", "[]", "{}"),
}
_HEX_PAIRS = re.compile(r"[0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-]").search
# Cheaper tests than the regex that a mask can match, past its trigger.
_PRECHECKS: dict[str, Callable[[str], object]] = {
    # A month's name; searched for alone, a regex finds its first letters fast.
    "date": re.compile(_MONTH).search,
    # Two colons with at most four hex digits between them: both forms of the mask have them.
    "ipv6": re.compile(r":[0-9A-Fa-f]{0,4}:").search,
    # At least three separators before the search for two pairs.
    "hexbytes": lambda line: line.count(":") + line.count("-") >= 3 and _HEX_PAIRS(line),
    "hexid": re.compile(r"[0-9a-fA-F]{8}").search,
    "kv_empty": re.compile(rf"=(?:{_VALUE_END}|$)").search,
}


def _applies(name: str) -> Callable[[str], object] | None:
    """Whether mask ``name`` may match a line (None: always try it): its triggers, then its
    precheck, as one call (a mask is tried on every line)."""
    triggers, precheck = _TRIGGERS.get(name), _PRECHECKS.get(name)
    if triggers is None:
        return precheck
    found = _any_in(triggers)
    if precheck is None:
        return found
    return lambda line: found(line) and precheck(line)


def _any_in(triggers: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a line holds one of ``triggers`` (written out: a generator costs more than the
    searches themselves)."""
    if len(triggers) == 1:
        (a,) = triggers
        return lambda line: a in line
    if len(triggers) == 2:
        a, b = triggers
        return lambda line: a in line or b in line
    if len(triggers) == 3:
        a, b, c = triggers
        return lambda line: a in line or b in line or c in line
    return lambda line: any(t in line for t in triggers)


# How a mask runs where its pattern in MASKS starts with a look-behind: the same matches,
# with a literal or a class first, so that the regex engine skips ahead to where a match can
# start instead of trying the look-behind at every position (tests hold them to MASKS). A
# look-behind reaching one character further back checks, after the first one, the
# character before it; ``kv`` and ``kv_empty`` take their "=" and put it back.
_FAST_FORMS: dict[str, tuple[str, str]] = {
    "path": (
        r"(?:\.(?<![\w/.:]\.)\.?/|/(?<![\w/.:]/))[\w.@%+~=&?#:-]+(?:/[\w.@%+~=&?#:-]*)*",
        _MARK,
    ),
    "kv": (r"=[^\s,;)\]}=&]+", "=" + _MARK),
    "kv_empty": (rf"(?<=\w)=(?={_VALUE_END}|$)", "=" + _MARK),
    "empty": (r"(?:\(\)|\[\]|\{\})(?<!\S..)(?=\s|$)", _MARK),
}


def _mask(name: str, pattern: str) -> Callable[[str], str]:
    """Mask ``name`` (of ``pattern``) as a function of a line."""
    fast, replacement = _FAST_FORMS.get(name, (pattern, _MARK))
    return functools.partial(re.compile(fast).sub, replacement)


_MASK_STEPS = tuple((_applies(name), _mask(name, pattern)) for name, pattern in MASKS)
# After a digit (behind: the regex is tried where a unit may start, not at every digit).
_UNIT_RE = re.compile(rf"(?<=\d)\s*(?=[{_UNIT_STARTS}]){_UNITS}\b")
# The same over lines joined by newlines (`tokenise_many`): blanks other than a newline.
_UNIT_IN_LINES_RE = re.compile(rf"(?<=\d)[^\S\n]*(?=[{_UNIT_STARTS}]){_UNITS}\b")
# "=" is not split on here: it stays on its key ("uid=") until the token loop (see _token).
_SPLIT = str.maketrans(dict.fromkeys(":,;()[]{}\"'<>|+", " "))
_DOTS_RE = re.compile(r"\.{2,}")
# A token holding a digit or a masked span is a parameter.
_VARIABLE = re.compile(rf"[\d{_MARK}]").search
# An identifier with a digit (``ext3_file_write``, ``eth0``) as opposed to a number, a hex
# value or a masked span: two letters in a row that are no hex digits.
_IDENTIFIER = re.compile(r"[G-Zg-z]{2}").search
_DIGITS = re.compile(r"\d+")


def _token(token: str) -> str:
    """``token`` as matched: a key (``r24=``) is a word without its ``=``, even with a digit
    (it names a field), anything else with a digit or a masked span is ``<*>``."""
    if token[-1] == "=":
        key = token.rstrip("=")
        if key[:1].isalpha() or key[:1] == "_":
            return key
        token = key
    return PARAM if _VARIABLE(token) else token


def _fallback(token: str) -> str:
    """A variable token of a line without words: its letters if it is an identifier."""
    if _MARK in token or not _IDENTIFIER(token):
        return PARAM
    return _DIGITS.sub("", token).rstrip("=") or PARAM


class _Tokens(dict[str, str]):
    """`_token` of each token seen, remembered (words recur; the cache is cleared when full)."""

    def __missing__(self, token: str) -> str:
        if len(self) >= _TOKEN_CACHE:
            self.clear()
        value = self[token] = _token(token)
        return value


_TOKEN_CACHE = 100_000
_TOKENS = _Tokens()


def tokenise(line: str) -> tuple[str, ...]:
    """The token sequence a line is matched on (see the module docstring)."""
    return _tokens(_split(_masked(line), _UNIT_RE.sub))


def tokenise_many(lines: Sequence[str]) -> list[tuple[str, ...]]:
    """`tokenise` of each line. The masks go line by line (each is tried only where its
    trigger is); the rest is looked up by the masked line's shape (`_SHAPES`), and worked
    out for the shapes not seen yet once over them joined by newlines, which costs less
    than a call of each per line. A batch holding a line of several lines (a stack trace)
    goes line by line.

    >>> tokenise_many(["took 12 ms", "opened by (uid=0)", "took 7 ms", ""])
    [('took', '<*>'), ('opened', 'by', 'uid', '<*>'), ('took', '<*>'), ()]
    """
    masked = [_masked(line) for line in lines]
    if not masked or any("\n" in line for line in masked):
        return [_tokens(_split(line, _UNIT_RE.sub)) for line in masked]
    shapes = _NUMBERS.sub("0", "\n".join(masked)).split("\n")
    known = _SHAPES  # shared by the process's workers: read once, never read back
    tokens = list(map(known.get, shapes))
    if None in tokens:
        new = list(dict.fromkeys(s for s, t in zip(shapes, tokens, strict=True) if t is None))
        joined = _split("\n".join(new), _UNIT_IN_LINES_RE.sub)
        made = dict(zip(new, map(_tokens, joined.split("\n")), strict=True))
        if len(known) + len(made) > _SHAPE_CACHE:  # full: start afresh
            known.clear()
        known.update(made)
        tokens = [made[s] if t is None else t for s, t in zip(shapes, tokens, strict=True)]
    return tokens


# A masked line's shape: every run of digits as "0", except in what "=" ends (a key names a
# field: "r24=" stays "r24"). Lines of one shape have the same tokens (a digit run stays a
# digit for every rule after the masks, and a token with one is a parameter either way), and
# a service logs a few hundred shapes: the tokens are worked out once per shape.
_NUMBERS = re.compile(r"\d+(?![^\s=:,;()\[\]{}\"'<>|+]*=)")
_SHAPE_CACHE = 100_000
_SHAPES: dict[str, tuple[str, ...]] = {}


def _masked(line: str) -> str:
    """``line`` with the values of `MASKS` replaced by a mark."""
    for applies, mask in _MASK_STEPS:
        if applies is None or applies(line):
            line = mask(line)
    return line


def _split(text: str, drop_units: Callable[[str, str], str]) -> str:
    """Masked ``text`` with units dropped and the separators made blanks."""
    text = drop_units(" ", text).replace("=", "= ").translate(_SPLIT)
    if ".." in text:
        text = _DOTS_RE.sub(" ", text)
    return text


def _tokens(text: str) -> tuple[str, ...]:
    """The tokens of one split line: words as they are, variables as `PARAM`."""
    raw = text.split()
    out = [t for t in map(_TOKENS.__getitem__, raw) if t]
    if out and all(t == PARAM for t in out):
        out = [_fallback(t) for t in raw if _TOKENS[t]]
    return tuple(out)


def normalise(line: str) -> str:
    """The tokens of ``line`` as text: masked, split, variables as ``<*>``.

    >>> normalise("session opened for user news by (uid=0)")
    'session opened for user news by uid <*>'
    >>> normalise('10.11.21.122,10.11.10.1 "GET /latest/meta-data/ HTTP/1.1" status: 200')
    '<*> <*> GET <*> <*> status <*>'
    """
    return " ".join(tokenise(line))
