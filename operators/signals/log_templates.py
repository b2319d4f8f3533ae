"""Online log template mining: generic masking, strict matching, evidence-based merging.

A log line is reduced to a token sequence by `airis.operators.signals.log_tokens` (generic
masking of values, then splitting; see there).

Lines are then grouped online, in one pass (`LogTemplateMiner`). The rules are chosen so that
neither failure mode of a fixed similarity threshold can take over a whole system — every line
in its own group (variables that masking cannot see, such as user or host names, split each
message type into many) or everything in a few groups (one differing word in ten is "similar",
so ``spawn``/``destroy`` or ``Started``/``Stopped`` merge):

* a line joins a cluster only if it equals every *constant* of the cluster's template; a
  ``<*>`` of the line where the template has a word counts as equal and makes that position a
  parameter (the value was masked once, so it is a variable), as long as at least ``keep``
  of the cluster's words stay constant;
* a line whose words differ from a template's at some positions is a different message type
  *until* ``min_values`` distinct words per position have been seen there, among lines that
  agree with the template everywhere else (Brain's observation: a constant has few values, a
  variable many). Several positions at once (a program and a host name) must also vary
  independently — the words of a pair of enumerations vary together (``from NEW to
  UNASSIGNED``, ``from ASSIGNED to RUNNING``) and are message types. Then the positions
  become ``<*>`` and every cluster the generalised template now covers is merged into it;
  never below ``keep`` of the words, never down to a template without constants;
* clusters whose templates read the same once runs of ``<*>`` are collapsed (``process <*>
  <*> .`` and ``process <*> .``: a variable that is one token or two, a list of one IP or
  three) are one template.

State is a few dicts of clusters, bounded evidence per cluster and a bounded cache of exact
token sequences; beyond ``max_clusters`` the least recently used templates are forgotten.
Everything pickles. Speed: about 65k lines/s on Loghub (one core), most of it in the masks.

References
----------
He, P. et al. (2017). "Drain: An Online Log Parsing Approach with Fixed Depth Tree". ICWS.
Yu, S. et al. (2023). "Brain: Log Parsing with Bidirectional Parallel Tree". IEEE TSC.
Khan, Z. A. et al. (2022). "Guidelines for Assessing the Accuracy of Log Message Template
Identification Techniques". ICSE.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from airis.operators.signals.log_tokens import MASKS, PARAM, normalise, tokenise, tokenise_many

__all__ = ["MASKS", "PARAM", "LogTemplateMiner", "TemplateMatch", "normalise"]


# Sets of differing positions a cluster keeps evidence for (bounds its state), and clusters
# a new line is noted as evidence for (the closest, then the oldest).
_MAX_EVIDENCE = 32
_MAX_NOTES = 8


def _collapse(template: Sequence[str]) -> tuple[str, ...]:
    """``template`` with each run of ``<*>`` as one: the text a template is known by."""
    out: list[str] = []
    for token in template:
        if not (token == PARAM and out and out[-1] == PARAM):
            out.append(token)
    return tuple(out)


class _Cluster:
    """Lines of one token count sharing a template. ``words`` is the number of words of the
    lines it was made from. ``near`` holds the evidence that some positions are variables:
    for each set of constant positions at which other lines differed from the template (and
    agreed with it elsewhere), the distinct words they had there."""

    __slots__ = ("cid", "constants", "near", "template", "words")

    def __init__(self, cid: int, template: Sequence[str]) -> None:
        self.cid = cid
        self.template = list(template)
        self.words = self.constants = sum(token != PARAM for token in template)
        self.near: dict[tuple[int, ...], set[tuple[str, ...]]] = {}

    def __getstate__(self) -> tuple:
        return self.cid, self.template, self.words, self.constants, self.near

    def __setstate__(self, state: tuple) -> None:
        self.cid, self.template, self.words, self.constants, self.near = state

    def project(self, records: dict[tuple[int, ...], set[tuple[str, ...]]]) -> None:
        """Add evidence ``records`` (of this template or a more specific one) to ``near``,
        dropping the positions that are parameters by now."""
        for where, seen in records.items():
            keep = [i for i, p in enumerate(where) if self.template[p] != PARAM]
            if keep:
                key = tuple(where[i] for i in keep)
                self.near.setdefault(key, set()).update(tuple(v[i] for i in keep) for v in seen)


@dataclass(frozen=True, slots=True)
class TemplateMatch:
    """What `LogTemplateMiner.add_one` made of one line.

    ``template_id`` names the template (``"T17"``); it stays valid for the miner's life, also
    after the template was merged into an older one (then `LogTemplateMiner.template` answers
    with the merged text, and later lines get the older id). ``template`` is the template
    *now* — it generalises (a constant becomes ``<*>``) as later lines show a position to be
    variable, which ``changed`` reports; ``is_new`` says the line started a new template.
    """

    template_id: str
    template: str
    is_new: bool
    changed: bool


class LogTemplateMiner:
    """Mine log templates online, one line at a time, in memory.

    Each line is assigned a template when it arrives (see the module docstring for the
    rules); a template only ever generalises, and templates only ever merge, so the final
    template of a line's id describes every line given that id.

    Parameters
    ----------
    min_values
        Distinct words seen at one position, among lines equal everywhere else, that make the
        position a variable. Below it they are distinct message types (``Started``,
        ``Stopped``, ``Paused``); at it, names (users, hosts, programs).
    keep
        Share of a template's words that must stay constants when a position becomes a
        variable, and that a line must equal to count as evidence: a template never
        generalises into a sequence of parameters.
    max_clusters
        Keep at most about this many clusters; the least recently used templates are
        forgotten (their ids then answer ``None``). ``None``: no bound.
    cache_size
        Exact token sequences remembered for the fast path (cleared when full).

    Examples
    --------
    >>> miner = LogTemplateMiner()
    >>> miner.add_one("Accepted password for alice from 10.0.0.5 port 52211 ssh2")
    TemplateMatch(template_id='T1', template='Accepted password for alice from <*> port <*>',
                  is_new=True, changed=False)
    >>> miner.add_one("Connection closed by 10.0.0.5:22 [preauth]").template_id
    'T2'

    User names are words, so each user is a message type of its own until ``min_values`` of
    them have been seen in the same message; then they are one template:

    >>> import random
    >>> rng = random.Random(42)
    >>> for user in ("bob", "carol", "dave"):
    ...     ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
    ...     port = rng.randint(1024, 65535)
    ...     match = miner.add_one(f"Accepted password for {user} from {ip} port {port} ssh2")
    >>> match
    TemplateMatch(template_id='T1', template='Accepted password for <*> from <*> port <*>',
                  is_new=False, changed=True)
    >>> miner.templates()
    [('T1', 'Accepted password for <*> from <*> port <*>', 4),
     ('T2', 'Connection closed by <*> preauth', 1)]
    >>> miner.template("T3")  # bob's line had a template of its own, merged into T1 since
    'Accepted password for <*> from <*> port <*>'
    """

    def __init__(
        self,
        min_values: int = 4,
        keep: float = 0.5,
        max_clusters: int | None = 10_000,
        cache_size: int = 100_000,
    ) -> None:
        if min_values < 2:
            raise ValueError(f"min_values must be at least 2, got {min_values}")
        if not 0.0 <= keep <= 1.0:
            raise ValueError(f"keep must be in [0, 1], got {keep}")
        if max_clusters is not None and max_clusters < 1:
            raise ValueError(f"max_clusters must be positive or None, got {max_clusters}")
        self.min_values = min_values
        self.keep = keep
        self.max_clusters = max_clusters
        self.cache_size = cache_size
        self._next_id = 1
        # Clusters lines are matched against, by id, and by (token count, position, constant);
        # per token count, the cluster whose template has no constant.
        self._live: dict[int, _Cluster] = {}
        self._index: dict[int, list[dict[str, set[int]]]] = {}
        self._blank: dict[int, int] = {}
        # Union-find over cluster ids: a template merged into another points to it.
        self._parent: dict[int, int] = {}
        # Per root id: lines, member cluster ids, the text it was last reported with; root
        # ids, least recently used first (for max_clusters).
        self._lines: dict[int, int] = {}
        self._members: dict[int, list[int]] = {}
        self._text: dict[int, str] = {}
        self._recent: OrderedDict[int, None] = OrderedDict()
        # Collapsed template → a cluster id with it; exact token sequence → cluster id.
        self._canonical: dict[tuple[str, ...], int] = {}
        self._cache: dict[tuple[str, ...], int] = {}
        # Per root id: its template as its last line found it, and the match of a line of it
        # while that stays so (most lines: `add_tokens` makes no text and no match for them).
        # Derived from the rest: not in snapshots.
        self._shown: dict[int, tuple[list[str], TemplateMatch]] = {}

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_shown"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._shown = {}

    # --- the public API ---------------------------------------------------------------

    def add_one(self, line: str) -> TemplateMatch:
        """Assign ``line`` to a template (creating, generalising or merging some) and say which."""
        return self.add_tokens(tokenise(line))

    def add_many(self, lines: Sequence[str]) -> list[TemplateMatch]:
        """`add_one` of each line in order (tokenised together: `tokenise_many`)."""
        return [self.add_tokens(seq) for seq in tokenise_many(lines)]

    def add_tokens(self, seq: tuple[str, ...]) -> TemplateMatch:
        """`add_one` of a line already tokenised (`tokenise`, `tokenise_many`)."""
        cid = self._cache.get(seq)
        is_new = False
        if cid is None or cid not in self._parent:
            cid, is_new = self._match(seq)
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[seq] = cid
        root = self._find(cid)
        self._lines[root] += 1
        template = self._live[root].template
        shown = self._shown.get(root)
        if shown is not None and shown[0] is template and not is_new:
            match = shown[1]  # the template has not changed since its last line: the same match
        else:
            match = self._shown_match(root, template, is_new and root == cid)
        if self.max_clusters is not None:
            self._recent[root] = None
            self._recent.move_to_end(root)
            self._evict()
        return match

    def _shown_match(self, root: int, template: list[str], is_new: bool) -> TemplateMatch:
        """The match of a line of ``root`` whose template may have changed since its last
        line; the match of its next lines, until the template changes, is kept (`_shown`)."""
        text = " ".join(_collapse(template))
        changed = not is_new and self._text.get(root, text) != text
        self._text[root] = text
        match = TemplateMatch(f"T{root}", text, is_new, changed)
        same = match if not (is_new or changed) else TemplateMatch(f"T{root}", text, False, False)
        self._shown[root] = (template, same)  # a template is replaced, never changed in place
        return match

    def template(self, template_id: str) -> str | None:
        """The current template of an id, or ``None`` if unknown (or forgotten)."""
        try:
            cid = int(template_id.removeprefix("T"))
        except ValueError:
            return None
        if cid not in self._parent:
            return None
        return self._template_text(self._find(cid))

    def templates(self) -> list[tuple[str, str, int]]:
        """``(template_id, template, lines)`` of every template, in order of creation."""
        roots = sorted(cid for cid, parent in self._parent.items() if cid == parent)
        return [(f"T{r}", self._template_text(r), self._lines[r]) for r in roots]

    # --- matching ---------------------------------------------------------------------

    def _match(self, seq: tuple[str, ...]) -> tuple[int, bool]:
        """The cluster for a token sequence not in the cache, and whether it is new."""
        n = len(seq)
        index = self._index.setdefault(n, [{} for _ in range(n)])
        params = [i for i, token in enumerate(seq) if token == PARAM]
        if len(params) == n and n in self._blank:
            return self._blank[n], False  # no word: only the template without constants
        # Equal constants per cluster that has any.
        hits: dict[int, int] = {}
        for position, token in enumerate(seq):
            if token != PARAM:
                for cid in index[position].get(token, ()):
                    hits[cid] = hits.get(cid, 0) + 1
        best: _Cluster | None = None
        best_key = (0, 0, 0)
        near: list[tuple[_Cluster, tuple[int, ...]]] = []
        for cid, equal in hits.items():
            cluster = self._live[cid]
            if equal == cluster.constants:
                if (equal, 0, -cid) > best_key:
                    best, best_key = cluster, (equal, 0, -cid)
                continue
            if equal < self.keep * cluster.words:
                continue
            soft = 0
            where = []
            for i, (t, x) in enumerate(zip(cluster.template, seq, strict=True)):
                if t != PARAM and t != x:
                    if x == PARAM:
                        soft += 1
                    else:
                        where.append(i)
            if where:
                near.append((cluster, tuple(where)))
            elif (equal, -soft, -cid) > best_key:
                best, best_key = cluster, (equal, -soft, -cid)
        if best is not None:
            if best_key[1]:
                merged = [
                    PARAM if x == PARAM else t for t, x in zip(best.template, seq, strict=True)
                ]
                best = self._generalise(best, merged)
            return best.cid, False
        cluster = self._new_cluster(seq)
        near.sort(key=lambda item: (len(item[1]), item[0].cid))
        for other, where in near[:_MAX_NOTES]:
            if other.cid in self._live and all(other.template[i] != PARAM for i in where):
                self._note(other, where, tuple(seq[i] for i in where))
        return cluster.cid, True

    def _new_cluster(self, seq: tuple[str, ...]) -> _Cluster:
        cluster = _Cluster(self._next_id, seq)
        self._next_id += 1
        cid = cluster.cid
        self._live[cid] = cluster
        self._parent[cid] = cid
        self._lines[cid] = 0
        self._members[cid] = [cid]
        index = self._index[len(seq)]
        for position, token in enumerate(seq):
            if token != PARAM:
                index[position].setdefault(token, set()).add(cid)
        if not cluster.constants:
            self._blank[len(seq)] = cid
        self._register(cluster)
        return cluster

    def _note(self, cluster: _Cluster, where: tuple[int, ...], values: tuple[str, ...]) -> None:
        """A new cluster differs from ``cluster`` at the positions ``where`` only, with
        ``values``. Positions become parameters once ``min_values`` distinct words per
        position have been seen there (``cluster``'s own included), counting the lines that
        differed at fewer of them too."""
        records = cluster.near
        if where not in records and len(records) >= _MAX_EVIDENCE:
            return
        seen = records.setdefault(where, set())
        if len(seen) >= self.min_values * len(where):
            return  # enough already, but generalising would drop too many constants
        seen.add(values)
        spot = set(where)
        for key in [k for k in records if spot <= set(k)]:
            needed = self.min_values * len(key)
            constants = cluster.constants - len(key)
            if constants < 1 or constants < self.keep * cluster.words:
                continue
            positions = set(key)
            if 1 + sum(len(v) for k, v in records.items() if set(k) <= positions) < needed:
                continue  # too little evidence even before duplicates are removed
            family = _family(cluster, key)
            if len(family) >= needed and _independent(family, len(key)):
                template = [PARAM if i in positions else t for i, t in enumerate(cluster.template)]
                self._generalise(cluster, template)
                return

    def _generalise(self, cluster: _Cluster, template: list[str]) -> _Cluster:
        """Give ``cluster`` a more general ``template``; merge the clusters it now covers."""
        self._set_template(cluster, template)
        index = self._index[len(template)]
        constant = [i for i, token in enumerate(template) if token != PARAM]
        sets = sorted((index[i].get(template[i], set()) for i in constant), key=len)
        covered = set.intersection(*sets) if sets else set()
        for cid in sorted(covered - {cluster.cid}):
            cluster = self._absorb(cluster, self._live[cid])
        self._register(cluster)
        return cluster

    def _set_template(self, cluster: _Cluster, template: list[str]) -> None:
        """Replace a template by a more general one (same length), keeping the index."""
        index = self._index[len(template)]
        for position, (old, new) in enumerate(zip(cluster.template, template, strict=True)):
            if old != new:
                index[position][old].discard(cluster.cid)
        cluster.template = template
        cluster.constants = sum(token != PARAM for token in template)
        records, cluster.near = cluster.near, {}
        cluster.project(records)

    def _absorb(self, cluster: _Cluster, other: _Cluster) -> _Cluster:
        """Merge ``other`` (same length, covered by ``cluster``'s template) into ``cluster``;
        the older of the two goes on matching, with ``cluster``'s template."""
        keep, drop = (cluster, other) if cluster.cid < other.cid else (other, cluster)
        self._drop(drop)
        if keep is other:
            self._set_template(keep, list(cluster.template))
        keep.words = max(keep.words, drop.words)
        keep.project(drop.near)
        self._union(keep.cid, drop.cid)
        return keep

    def _drop(self, cluster: _Cluster) -> None:
        """Stop matching lines against ``cluster`` (its id stays known unless evicted)."""
        del self._live[cluster.cid]
        index = self._index[len(cluster.template)]
        for position, token in enumerate(cluster.template):
            if token != PARAM:
                index[position][token].discard(cluster.cid)
        if self._blank.get(len(cluster.template)) == cluster.cid:
            del self._blank[len(cluster.template)]

    def _register(self, cluster: _Cluster) -> None:
        """Index ``cluster`` by its collapsed template; one collapsed template, one group."""
        key = _collapse(cluster.template)
        other = self._canonical.get(key)
        if other is None or other not in self._parent:
            self._canonical[key] = cluster.cid
        else:
            self._union(other, cluster.cid)

    # --- groups -----------------------------------------------------------------------

    def _find(self, cid: int) -> int:
        parent = self._parent
        root = cid
        while parent[root] != root:
            root = parent[root]
        while parent[cid] != root:
            parent[cid], cid = root, parent[cid]
        return root

    def _union(self, a: int, b: int) -> int:
        root, other = sorted((self._find(a), self._find(b)))
        if root != other:
            self._parent[other] = root
            self._lines[root] += self._lines.pop(other)
            self._members[root].extend(self._members.pop(other))
            self._text.pop(other, None)
            self._shown.pop(other, None)
            self._recent.pop(other, None)
        return root

    def _template_text(self, root: int) -> str:
        """A group's template: that of its oldest cluster (a root is never merged away)."""
        return " ".join(_collapse(self._live[root].template))

    def _evict(self) -> None:
        """Forget least recently used templates until at most ``max_clusters`` clusters live."""
        assert self.max_clusters is not None
        while len(self._live) > self.max_clusters and len(self._recent) > 1:
            root, _ = self._recent.popitem(last=False)
            for member in self._members.pop(root):
                if member in self._live:
                    self._drop(self._live[member])
                del self._parent[member]
            del self._lines[root]
            self._text.pop(root, None)
            self._shown.pop(root, None)
        if len(self._canonical) > 4 * self.max_clusters:
            self._canonical = {k: v for k, v in self._canonical.items() if v in self._parent}


def _family(cluster: _Cluster, key: tuple[int, ...]) -> set[tuple[str, ...]]:
    """The words at ``key`` of ``cluster`` and of the lines that differed from it there (at
    all or some of these positions, and nowhere else)."""
    own = tuple(cluster.template[p] for p in key)
    family = {own}
    for where, seen in cluster.near.items():
        if set(where) <= set(key):
            slots = [key.index(p) for p in where]
            for values in seen:
                words = list(own)
                for slot, value in zip(slots, values, strict=True):
                    words[slot] = value
                family.add(tuple(words))
    return family


def _independent(family: set[tuple[str, ...]], width: int) -> bool:
    """Whether each position varies on its own: two members differ there and agree at
    another position.

    Several variables in one message (a program and a host name) vary independently; the
    words of a pair of enumerations (``from NEW to UNASSIGNED``, ``from ASSIGNED to
    RUNNING``: state transitions) vary together, and are distinct message types.

    >>> _independent({("a", "x"), ("b", "x"), ("a", "y")}, 2)
    True
    >>> _independent({("NEW", "UNASSIGNED"), ("UNASSIGNED", "ASSIGNED"), ("ASSIGNED", "RUN")}, 2)
    False
    """
    if width < 2:
        return True
    members = list(family)
    for position in range(width):
        if not any(
            a[position] != b[position] and any(a[q] == b[q] for q in range(width) if q != position)
            for i, a in enumerate(members)
            for b in members[i + 1 :]
        ):
            return False
    return True
