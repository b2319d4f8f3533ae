"""Online log template mining: drain3 behind generic masking and token pre-processing.

drain3 as shipped groups Loghub-2k lines well when variables are numbers in their own
whitespace-separated tokens (HDFS, BGL) and badly when they are not: ``uid=0``, ``(uid=0)``,
``10.0.0.1:50010``, ``Sun Jul  3 10:05:25 2005`` or ``5.2 KB`` give token sequences of
differing shape or content for one message type, and drain's fixed-depth prefix tree and
similarity then split or mis-merge them. `LogTemplateMiner` therefore normalises each line
before drain sees it, with rules that know nothing about a particular system:

1. whole values that punctuation would cut apart are masked first: URLs, e-mail addresses,
   file paths, IPv6 addresses, MAC-style hex byte runs, UUIDs, long hex ids, weekday/month
   dates, the value of every ``key=value``, and an empty ``()``/``[]``/``{}`` (an absent
   value, e.g. a host without a reverse DNS name);
2. a unit after a number (``5.2 KB``, ``12 ms``) is dropped, so ``93.0 B`` and ``5.2 KB`` agree;
3. the line is split on ``= : , ; ( ) [ ] { } " ' < > |`` and on dot leaders (``.....``), and
   the punctuation is dropped: keys, values and words become separate tokens and punctuation
   no longer inflates the similarity of unrelated messages that share a prefix;
4. every token that contains a digit (IPv4, numbers, ``0x1f``, ``blk_-123``, ``12ms``,
   dates, times) or a mask from step 1 becomes ``<*>``, and a run of ``<*>`` collapses to one,
   so variable-length lists (``10.0.0.1,10.0.0.2``) keep the message's token count; the key
   of a ``key=value`` stays a word even with a digit in it (``r24=0x1f``): it names a field.

Drain itself is changed in three ways, all because masking has already made most variables
``<*>`` (see `_ConstantShareDrain`):

* drain3 scores a line against a template as the share of *all* template positions that are
  equal constants, so a template with many parameters never reaches the threshold, not even
  for an identical line (``<*> GET <*> status <*> len <*> time <*>`` scores 4/9 against
  itself). Here the share is taken over the template's constant positions only; a template
  with no constant takes only lines with none;
* of equally similar templates, the one with more equal constants wins (drain3 prefers the
  one with more parameters, so a catch-all ``<*>`` beat an exact template);
* the prefix tree keys on the leading *words*, parameters skipped: drain3 spends a tree
  level on a leading ``<*>`` (``[instance: <*>] VM Started``), which says nothing about the
  message type, and the word that does (``Started`` vs ``Stopped``) fell below the tree,
  where one differing word in five is still "similar".

Everything else — cluster creation, template generalisation — is drain3's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

from drain3 import TemplateMiner
from drain3.drain import Drain, LogCluster, Node
from drain3.masking import AbstractMaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

__all__ = ["PARAM", "LogTemplateMiner", "TemplateMatch", "normalise"]

#: drain3's wildcard; masked values use the same string so drain treats them as parameters.
PARAM = "<*>"
# Marks a masked span until tokenisation; a NUL byte never appears in a text log line. No
# spaces around it: a token with a masked part ("blk_-<hex>") is a variable as a whole.
_MARK = "\x00"

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_UNITS = r"(?:[KMGTP]i?B|B|bytes|ms|us|µs|ns|s|sec|secs|min|h)"
_HEX4 = r"[0-9A-Fa-f]{1,4}"

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
    ("uuid", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    # IPv6 before the split on ":" would cut it into pieces (some without digits).
    ("ipv6", rf"(?<![\w:])(?:{_HEX4}:){{2,7}}(?::|{_HEX4})(?![\w:])|(?<![\w:])::{_HEX4}\b"),
    ("hexbytes", r"\b(?:[0-9A-Fa-f]{2}[:-]){3,}[0-9A-Fa-f]{2}\b"),
    ("hexid", r"\b(?:0[xX])?[0-9a-fA-F]{8,}\b"),
    # Any value of key=value, up to a separator: "rhost=zummit.com", "status=M".
    ("kv", r"(?<==)[^\s,;)\]}=&]+"),
    # An empty bracket pair standing alone is an absent value, e.g. "from 1.2.3.4 () at".
    ("empty", r"(?:(?<=\s)|^)(?:\(\)|\[\]|\{\})(?=\s|$)"),
)
_UNIT_RE = re.compile(rf"(\d)\s*{_UNITS}\b")
# "=" is not split on here: it stays on its key ("uid=") until the token loop (see _token).
_SPLIT_RE = re.compile(r"""[:,;()\[\]{}"'<>|]|\.{2,}""")
# A token holding a digit or a masked span is a parameter.
_VARIABLE = re.compile(rf"[\d{_MARK}]").search


class _Mask(AbstractMaskingInstruction):
    """drain3 masking instruction replacing a match by a marker (typed masks would split
    one message type whose parameter is sometimes a number, sometimes a hex id)."""

    def __init__(self, name: str, pattern: str):
        super().__init__(name)
        self.regex = re.compile(pattern)

    def mask(self, content: str, mask_prefix: str, mask_suffix: str) -> str:
        return self.regex.sub(_MARK, content)


class _Tokenise(AbstractMaskingInstruction):
    """Last masking step: drop units, split on punctuation, mask tokens with digits."""

    def __init__(self) -> None:
        super().__init__("tokens")

    def mask(self, content: str, mask_prefix: str, mask_suffix: str) -> str:
        content = _SPLIT_RE.sub(" ", _UNIT_RE.sub(r"\1 ", content).replace("=", "= "))
        out: list[str] = []
        for token in content.split():
            token = _token(token)
            # A run of parameters is one parameter: list lengths vary between lines.
            if token and not (token == PARAM and out and out[-1] == PARAM):
                out.append(token)
        return " ".join(out)


def _token(token: str) -> str:
    """``token`` as drain sees it: a key (``r24=``) is a word without its ``=``, even with a
    digit (it names a field), anything else with a digit or a masked span is ``<*>``."""
    if token[-1] == "=":
        key = token.rstrip("=")
        if key[:1].isalpha() or key[:1] == "_":
            return key
        token = key
    return PARAM if _VARIABLE(token) else token


def _instructions() -> list[AbstractMaskingInstruction]:
    return [*(_Mask(name, pattern) for name, pattern in MASKS), _Tokenise()]


_NORMALISER = _instructions()


def normalise(line: str) -> str:
    """The token sequence drain sees for ``line``: masked, split and with ``<*>`` parameters.

    >>> normalise("session opened for user news by (uid=0)")
    'session opened for user news by uid <*>'
    >>> normalise('10.11.21.122,10.11.10.1 "GET /latest/meta-data/ HTTP/1.1" status: 200')
    '<*> GET <*> status <*>'
    """
    for instruction in _NORMALISER:
        line = instruction.mask(line, "<", ">")
    return line


class _ConstantShareDrain(Drain):
    """drain3's `Drain` with three changes for lines whose variables are already ``<*>``.

    * Similarity is the share of the template's *constant* positions the line equals (drain3
      divides by all positions, so parameter-rich templates never match); a template with no
      constant at all only takes lines with none either, as it has no word to vouch for them.
    * Of equally similar templates the one with more equal constants wins (drain3 prefers
      more parameters), so a line goes to the template that spells it out, not to a catch-all.
    * The prefix tree keys on the first words *other than parameters*: drain3 spends a level
      on every leading token, and a leading ``<*>`` (``[instance: <*>] VM Started``) holds no
      information, so the words that tell message types apart fell below the tree.
    """

    def get_seq_distance(self, seq1, seq2, include_params: bool):  # type: ignore[override]
        constants = equal = 0
        for template_token, token in zip(seq1, seq2, strict=True):
            if template_token != self.param_str:
                constants += 1
                equal += template_token == token
        if not constants:
            return float(all(token == self.param_str for token in seq2)), 0
        # drain3's fast_match breaks ties by the larger second value.
        return equal / constants, equal

    def _prefix(self, tokens: Sequence[str]) -> list[str]:
        """The words keying ``tokens`` in the tree: up to ``depth - 3`` of them, not the last
        token (drain3's convention: it is often a variable) and no parameter."""
        words = (token for token in tokens[:-1] if token != self.param_str)
        return list(islice(words, self.max_node_depth - 1))

    def tree_search(self, root_node: Node, tokens, sim_th, include_params):  # type: ignore[override]
        node = root_node.key_to_child_node.get(str(len(tokens)))
        for token in self._prefix(tokens):
            if node is None:
                return None
            children = node.key_to_child_node
            node = children.get(token) or children.get(self.param_str)
        if node is None:
            return None
        return self.fast_match(node.cluster_ids, tokens, sim_th, include_params)

    def add_seq_to_prefix_tree(self, root_node: Node, cluster: LogCluster) -> None:
        tokens = cluster.log_template_tokens
        node = root_node.key_to_child_node.setdefault(str(len(tokens)), Node())
        for token in self._prefix(tokens):
            children = node.key_to_child_node
            # As drain3: the last free child slot is the wildcard branch for all further words.
            if token not in children and len(children) + 1 >= self.max_children:
                token = self.param_str
            node = children.setdefault(token, Node())
        # Drop evicted clusters (max_clusters) while here, as drain3 does.
        live = [i for i in node.cluster_ids if i in self.id_to_cluster]
        node.cluster_ids = [*live, cluster.cluster_id]


@dataclass(frozen=True, slots=True)
class TemplateMatch:
    """What `LogTemplateMiner.add_one` made of one line.

    ``template_id`` names the drain cluster (``"T17"``) and is stable for the miner's life;
    ``template`` is the cluster's template *now* — it generalises (a constant becomes ``<*>``)
    as later lines join, which ``changed`` reports; ``is_new`` says the line opened the cluster.
    """

    template_id: str
    template: str
    is_new: bool
    changed: bool


class LogTemplateMiner:
    """Mine log templates online, one line at a time, with drain3 (in memory).

    Parameters
    ----------
    sim_th
        Share of a template's constant tokens a line must equal to join its cluster. High,
        because masking already turned most variables into ``<*>``; what is left to merge are
        word variables (user names), and a low threshold merges distinct verbs instead.
    depth
        drain's tree depth: the first ``depth - 3`` words (parameters skipped, the last token
        excepted) must be equal for two lines to be compared at all, so 6 keys on three words.
        The leading words of a message name its type (drain's premise); a deeper tree also
        splits word variables there (4 words split ``chdir(pwd)`` from ``chdir(<path>)`` on
        BGL), a shallower one merges types that differ in their third word (``[instance:
        <*>] VM Started``/``VM Stopped``, ``<*> vcpu limit``/``<*> disk limit``).
    max_children
        Children per tree node before further distinct tokens share a wildcard branch.
    max_clusters
        Keep at most this many clusters (least recently used are dropped); ``None``: no bound.

    Example
    -------
    >>> miner = LogTemplateMiner()
    >>> miner.add_one("Accepted password for alice from 10.0.0.5 port 52211 ssh2")
    TemplateMatch(template_id='T1', template='Accepted password for alice from <*> port <*>',
                  is_new=True, changed=False)
    >>> miner.add_one("Accepted password for bob from 10.0.0.9 port 40100 ssh2").template
    'Accepted password for <*> from <*> port <*>'
    >>> miner.add_one("Connection closed by 10.0.0.5:22 [preauth]").template_id
    'T2'
    >>> miner.templates()
    [('T1', 'Accepted password for <*> from <*> port <*>', 2),
     ('T2', 'Connection closed by <*> preauth', 1)]
    """

    def __init__(
        self,
        sim_th: float = 0.8,
        depth: int = 6,
        max_children: int = 100,
        max_clusters: int | None = None,
    ) -> None:
        config = TemplateMinerConfig()  # built in code: no drain3.ini is read
        config.drain_sim_th = sim_th
        config.drain_depth = depth
        config.drain_max_children = max_children
        config.drain_max_clusters = max_clusters
        config.parametrize_numeric_tokens = True
        config.masking_instructions = _instructions()
        config.mask_prefix, config.mask_suffix = "<", ">"
        self._miner = TemplateMiner(persistence_handler=None, config=config)
        self._miner.drain = _ConstantShareDrain(
            sim_th=sim_th,
            depth=depth,
            max_children=max_children,
            max_clusters=max_clusters,
            param_str=PARAM,
            parametrize_numeric_tokens=True,
        )

    def add_one(self, line: str) -> TemplateMatch:
        """Assign ``line`` to a cluster (creating or generalising one) and say which."""
        result = self._miner.add_log_message(line)
        change = result["change_type"]
        return TemplateMatch(
            template_id=f"T{result['cluster_id']}",
            template=result["template_mined"],
            is_new=change == "cluster_created",
            changed=change == "cluster_template_changed",
        )

    def template(self, template_id: str) -> str | None:
        """The current template of a cluster, or ``None`` if unknown (or evicted)."""
        cluster = self._miner.drain.id_to_cluster.get(int(template_id.removeprefix("T")))
        return None if cluster is None else cluster.get_template()

    def templates(self) -> list[tuple[str, str, int]]:
        """``(template_id, template, lines)`` of every cluster, in order of creation."""
        clusters = sorted(self._miner.drain.clusters, key=lambda c: c.cluster_id)
        return [(f"T{c.cluster_id}", c.get_template(), c.size) for c in clusters]
