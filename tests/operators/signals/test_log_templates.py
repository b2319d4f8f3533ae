"""LogTemplateMiner: masking, strict matching, evidence-based merging, and both failure modes
(one group per line, one group for all) on small constructed logs."""

from __future__ import annotations

import csv
import functools
import itertools
import pickle
import random
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from airis.evals.logs import grouping_accuracy, mine_templates, templates_csv
from airis.operators.signals import log_tokens
from airis.operators.signals.log_templates import PARAM, LogTemplateMiner, normalise


def _names(rng: random.Random, count: int, suffix: str = "") -> list[str]:
    """``count`` distinct lower-case words without digits (user, host, program names)."""
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) + suffix)
    return sorted(names)


def _ga(lines: list[tuple[str, str]], miner: LogTemplateMiner | None = None) -> float:
    predicted = mine_templates([line for line, _ in lines], miner)
    return grouping_accuracy([label for _, label in lines], predicted)


# --- masking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("from 10.0.0.5 up", "from <*> up"),  # IPv4
        ("from 10.0.0.5:8080 up", "from <*> <*> up"),  # IPv4 with port
        ("from fe80::1ff:fe23:4567:890a up", "from <*> up"),  # IPv6
        ("from [2001:db8::ff00:42:8329]:443 up", "from <*> <*> up"),  # IPv6 with port
        ("from ::ffff up", "from <*> up"),
        ("at 10:05:25 up", "at <*> up"),  # clock time
        ("vm 123e4567-e89b-12d3-a456-426614174000 up", "vm <*> up"),  # UUID
        ("at 0x7ffe12ab up", "at <*> up"),  # hex
        ("req deadbeefcafe up", "req <*> up"),  # long hex id without digits
        ("took 12 up", "took <*> up"),  # int
        ("took -3.25 up", "took <*> up"),  # float
        ("took 12ms up", "took <*> up"),  # unit glued
        ("took 3.5 s up", "took <*> up"),  # unit apart
        ("size 4 KB up", "size <*> up"),
        ("file /var/lib/nova/instances up", "file <*> up"),  # path
        ("file ./runtime_malloc up", "file <*> up"),  # relative path
        (r"file C:\Windows\System32\drivers up", "file <*> up"),  # Windows path
        (r"file \\srv01\data\x.txt up", "file <*> up"),  # UNC path
        ("get https://example.com/a?b=c up", "get <*> up"),  # URL
        ("mail alice@example.com up", "mail <*> up"),  # e-mail
        ("rhost=zummit.com user=root", "rhost <*> user <*>"),  # key=value values
        ("logname= uid=0", "logname <*> uid <*>"),  # an empty value is a value
        ("block blk_-6952295868487656571 up", "block <*> up"),  # block id
        ("at Sun Jul  3 10:05:25 2005 up", "at <*> up"),  # date with weekday
        ("at Jun 14 15:16:01 up", "at <*> up"),  # syslog date
        ("at Dec 4 09:16 up", "at <*> up"),  # ... of any month
        ("took 3µs up", "took <*> up"),  # a unit of any first letter
        ("at 2017-05-16 00:00:00.008 up", "at <*> <*> up"),  # ISO date and time
        ("mac FF:F2:9F:16:E2:23:00:0D up", "mac <*> up"),  # hex byte run
        ("mac aa-bb-cc-dd up", "mac <*> up"),  # ... of three separators, the fewest
        ("mac aa-bb-cc up", "mac aa-bb-cc up"),  # two are no run (and no digit: a word)
        ("from 1.2.3.4 () at", "from <*> <*> at"),  # empty brackets are a value
        ("from host [] at", "from host <*> at"),  # of every kind
        ("from host {} at", "from host <*> at"),
        ("hosts 10.0.0.1,10.0.0.2,10.0.0.3 up", "hosts <*> <*> <*> up"),  # one per item
        ("check......................0", "check <*>"),  # dot leader
        ("[instance: 96abccce] Claim successful", "instance <*> Claim successful"),
        ("r24=0x0ffea4c8 r25=0x00000003", "r24 <*> r25 <*>"),  # a key with a digit is a name
        ("set x = 5 now", "set x <*> now"),  # a lone "=" is punctuation
        ("torus z+ wire", "torus z wire"),  # "+" splits
        ("std::vector grew", "std vector grew"),  # "::" alone is no address
    ],
)
def test_masking(line: str, expected: str) -> None:
    assert normalise(line) == expected


_PIECES = [
    *"0123456789abcdefxyzABCDEFKMGTPBimsunhµ:-=.,;()[]{}/\\@<>|+'\" \t",
    "Jan", "Sep", "Mon, ", "Dec 24 ", "12:30:45", "::", "fe80::1", "::ffff", "5 KiB", "3µs",
    "12 ms", " secs", "min", "=", "=,", "uid=", "a=b", "http://x", "0x7ffe12ab", "()", "[]",
    "aa-bb-cc-dd", "123e4567-e89b-12d3-a456-426614174000", "/var/lib", "C:\\x", "bob@x.io",
    "./a", "../", ".../x", "==", "() ", " {}", "7", "42", "0012", "\u0663", "r24=", "a.24=",
    "x_1=", "1=", "v2", "3.5",
]  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join))
def test_the_cheap_tests_before_each_rule_only_save_time(line: str) -> None:
    """Every mask of `MASKS`, as written there, tried on every line, and units looked for
    after every digit, give the same tokens: a trigger or precheck that is too strict, or a
    mask's faster form (`_FAST_FORMS`) that matches otherwise, fails here."""
    everything = tuple(
        (None, functools.partial(re.compile(pattern).sub, log_tokens._MARK))
        for _, pattern in log_tokens.MASKS
    )
    unit_after_any_digit = re.compile(rf"(\d)\s*{log_tokens._UNITS}\b")

    class _Units:
        def sub(self, _replacement: str, text: str) -> str:
            return unit_after_any_digit.sub(r"\1 ", text)

    fast = log_tokens.tokenise(line)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(log_tokens, "_MASK_STEPS", everything)
        patch.setattr(log_tokens, "_UNIT_RE", _Units())
        patch.setattr(log_tokens, "_TOKENS", type(log_tokens._TOKENS)())
        assert log_tokens.tokenise(line) == fast


_LINES = st.lists(st.sampled_from([*_PIECES, "\n", "\r", "\x85", "5\n", "\nms"]), max_size=10)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_LINES.map("".join), max_size=8))
def test_lines_tokenised_together_are_tokenised_as_each_alone(lines: list[str]) -> None:
    """`tokenise_many` splits the lines joined by newlines: no step may reach across them (a
    unit after the previous line's number, a date over two lines), and a line that holds a
    newline itself still gets `tokenise`'s tokens."""
    assert log_tokens.tokenise_many(lines) == [log_tokens.tokenise(line) for line in lines]


_NUMBERS = ["0", "7", "42", "0012", "\u0663", "9\u0663", "3.5"]
_SHAPED = st.lists(st.sampled_from([*_PIECES, *(["{}"] * 6)]), max_size=12).map("".join)


@settings(max_examples=1000, deadline=None)
@given(
    shape=_SHAPED,
    numbers=st.lists(
        # as many as the shape may hold: its 12 pieces each a "{}" (or "{" and "}" apart)
        st.lists(st.sampled_from(_NUMBERS), min_size=12, max_size=12),
        min_size=2,
        max_size=4,
    ),
)
def test_lines_of_one_shape_get_the_tokens_each_gets_alone(shape, numbers) -> None:
    """`tokenise_many` looks the tokens up by the masked line's shape (its digit runs as
    "0"), worked out once per shape: lines that differ only in their numbers, wherever they
    stand (in a key too), must still get `tokenise`'s tokens, the shape known or not."""
    lines = [shape.replace("{}", "%s") % tuple(row[: shape.count("{}")]) for row in numbers]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(log_tokens, "_SHAPES", {})
        alone = [log_tokens.tokenise(line) for line in lines]
        assert log_tokens.tokenise_many(lines) == alone  # each shape new, then known
        assert log_tokens.tokenise_many(lines[::-1]) == alone[::-1]  # every shape known


def test_a_full_shape_cache_starts_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_tokens, "_SHAPES", {})
    monkeypatch.setattr(log_tokens, "_SHAPE_CACHE", 3)
    first = ["took 1 ms", "opened by (uid=0)", "gc ran"]
    assert log_tokens.tokenise_many(first) == [log_tokens.tokenise(line) for line in first]
    later = ["took 5 ms", "cache miss on a", "cache miss on b"]  # one known, two new: full
    assert log_tokens.tokenise_many(later) == [log_tokens.tokenise(line) for line in later]
    assert len(log_tokens._SHAPES) == 2  # the new ones


def test_words_stay_constant() -> None:
    assert normalise("Kerberos authentication failed") == "Kerberos authentication failed"
    assert normalise("check pass; user unknown") == "check pass user unknown"


def test_a_line_without_words_keeps_its_identifiers() -> None:
    # Kernel stack frames: every token holds a digit, but the function names tell them apart.
    assert normalise("[<0a8ddb99>] ext3_file_write+0x19/0x88 [ext3]") == (
        f"{PARAM} ext_file_write {PARAM} ext"
    )
    assert normalise("0x7f|12") == f"{PARAM} {PARAM}"  # numbers stay numbers


# --- matching --------------------------------------------------------------------------------


def test_same_shape_one_template() -> None:
    miner = LogTemplateMiner()
    lines = [
        f"Receiving block blk_{n} src: /10.0.{n % 7}.{n % 250}:{50000 + n} dest: /10.0.0.1:50010"
        for n in range(-50, 50, 3)
    ]
    ids = {miner.add_one(line).template_id for line in lines}
    assert len(ids) == 1
    assert miner.templates() == [
        (ids.pop(), f"Receiving block {PARAM} src {PARAM} dest {PARAM}", len(lines))
    ]


def test_new_changed_and_merged_ids() -> None:
    miner = LogTemplateMiner(min_values=2)
    first = miner.add_one("session opened for user cyrus by (uid=0)")
    assert first.is_new and not first.changed
    again = miner.add_one("session opened for user cyrus by (uid=509)")
    assert again.template_id == first.template_id and not again.is_new and not again.changed
    second = miner.add_one("session opened for user news by (uid=0)")
    assert second.template_id == first.template_id and second.changed and not second.is_new
    assert second.template == f"session opened for user {PARAM} by uid {PARAM}"
    third = miner.add_one("session closed for user news")
    assert third.is_new and third.template_id != first.template_id
    assert miner.template(first.template_id) == second.template
    assert miner.template("T999") is None and miner.template("nonsense") is None


def test_a_masked_value_makes_its_position_a_variable() -> None:
    # "L2CAP" holds a digit: the position is a variable, so "Core" and "RFCOMM" are too.
    miner = LogTemplateMiner()
    lines = ("Bluetooth: Core ver 2.4", "Bluetooth: L2CAP ver 2.1", "Bluetooth: RFCOMM ver 1.2")
    ids = {miner.add_one(line).template_id for line in lines}
    assert len(ids) == 1
    assert miner.template(ids.pop()) == f"Bluetooth {PARAM} ver {PARAM}"


def test_a_variable_of_one_or_two_tokens_is_one_template() -> None:
    # "(httpd)" is a word, "(ld-linux.so.2)" a parameter; "() at" and "(host) at" likewise.
    lines = [
        ("Out of Memory: Killed process 28473 (httpd).", "oom"),
        ("Out of Memory: Killed process 27154 (ld-linux.so.2).", "oom"),
        ("Out of Memory: Killed process 6980 (python).", "oom"),
        ("connection from 209.184.7.130 () at Sat Jun 11 03:28:22 2005", "conn"),
        ("connection from 61.218.67.60 (mail.net-star.com.tw) at Mon Jun 13 02:01:27 2005", "conn"),
        ("hosts 10.0.0.1 up", "hosts"),
        ("hosts 10.0.0.1,10.0.0.2 up", "hosts"),
    ]  # fmt: skip
    assert _ga(lines) == 1.0
    miner = LogTemplateMiner()
    ids = [miner.add_one(line).template_id for line, _ in lines]
    assert len(set(ids[:3])) == len(set(ids[3:5])) == len(set(ids[5:])) == 1  # one id each


def test_an_empty_key_value_is_the_same_message() -> None:
    lines = [
        "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=a.example.net",
        "authentication failure; logname=test uid=509 euid=0 tty= ruser= rhost=",
        "authentication failure; logname=LOGIN uid=0 euid=0 tty=tty2 ruser= rhost=",
    ]
    assert len(set(mine_templates(lines))) == 1


def test_a_template_without_constants_takes_no_words() -> None:
    miner = LogTemplateMiner()
    numbers = miner.add_one("1514044800223|3786|0|0")
    assert numbers.template == PARAM
    assert miner.add_one("sendSyncFailedBroadcast").is_new
    assert miner.add_one("closeNotification...").is_new
    assert miner.add_one("0x7f|12|5|9").template_id == numbers.template_id


def test_many_parameters_still_match() -> None:
    miner = LogTemplateMiner()
    line = '10.11.10.1 "GET /v2/x/servers/detail HTTP/1.1" status: 200 len: 1893 time: 0.24'
    assert {miner.add_one(line).template_id for _ in range(3)} == {"T1"}


# --- over-merging: distinct message types that differ in a word stay apart ------------------


def test_message_types_differing_in_one_word_stay_apart() -> None:
    # A similarity threshold merges these (9 of 10 words equal); they are distinct messages.
    rng = random.Random(42)
    lines = []
    for _ in range(300):
        uuid = f"{rng.getrandbits(32):08x}-fe1a"
        kind = rng.choice(("Started", "Stopped", "Paused"))
        lines.append((f"[instance: {uuid}] VM {kind} (Lifecycle Event)", kind))
        verb = rng.choice(("spawn", "destroy"))
        lines.append(
            (
                f"[instance: {uuid}] Took {rng.random() * 20:.2f} seconds to {verb} the instance",
                verb,
            )
        )
        size = rng.choice(("bytes", "values"))
        lines.append((f"Block rdd_{rng.randint(1, 99)} stored as {size} in memory", size))
    assert _ga(lines) == 1.0


def test_one_word_templates_never_become_all_parameters() -> None:
    # Method name + number: the method is the message type, however many there are.
    rng = random.Random(42)
    methods = _names(rng, 12)
    lines = [(f"{m} {rng.randint(0, 9999)}", m) for m in rng.choices(methods, k=600)]
    assert _ga(lines) == 1.0


def test_state_transitions_stay_apart() -> None:
    # A chain of states: both words change together, so these are message types, not names.
    states = ["NEW", "UNASSIGNED", "ASSIGNED", "RUNNING", "COMMIT_PENDING", "SUCCESS_CLEANUP",
              "SUCCEEDED", "KILL_CLEANUP", "KILLED"]  # fmt: skip
    lines = []
    for attempt in range(20):
        for a, b in itertools.pairwise(states):
            lines.append((f"attempt_{attempt}_0 TaskAttempt Transitioned from {a} to {b}", a + b))
    assert _ga(lines) == 1.0


# --- splitting: names that masking cannot see do not make a template per line ---------------


def test_a_name_in_the_first_position_is_a_variable() -> None:
    # The daemon name varies, the verb is the message type: the template keeps at least
    # ``keep`` of its words, so the verb never becomes a variable as well.
    rng = random.Random(42)
    daemons = _names(rng, 30, "d")
    verbs = ("startup", "shutdown", "reload", "restart", "status")
    pairs = zip(rng.choices(daemons, k=500), rng.choices(verbs, k=500), strict=True)
    lines = [(f"{d} {v} succeeded", v) for d, v in pairs]
    miner = LogTemplateMiner()
    assert _ga(lines, miner) == 1.0
    assert sorted(t for _, t, _ in miner.templates()) == [
        f"{PARAM} {v} succeeded" for v in sorted(verbs)
    ]


def test_names_in_several_positions_are_variables() -> None:
    # Program and host names vary independently (no two lines alike): one template per
    # message type, not one per line. Every name is new at first, so a few lines per type
    # open templates of their own before the evidence merges them.
    rng = random.Random(42)
    programs = _names(rng, 400, ".exe")
    hosts = [f"{a}.{b}.com" for a, b in zip(_names(rng, 400), _names(rng, 400), strict=True)]
    lines = []
    for _ in range(1000):
        program, host = rng.choice(programs), rng.choice(hosts)
        if rng.random() < 0.5:
            lines.append(
                (f"{program} - {host}:443 open through proxy proxy.example.net:5070 HTTPS", "o")
            )
        else:
            lines.append((f"{program} - {host}:80 close, {rng.randint(0, 9999)} bytes sent", "c"))
    miner = LogTemplateMiner()
    assert _ga(lines, miner) == 1.0
    assert len(miner.templates()) == 2


def test_user_names_become_a_variable_after_min_values() -> None:
    lines = [f"Failed password for {user} from 10.0.0.{i} port 22 ssh2"
             for i, user in enumerate(("root", "admin", "guest", "oracle", "test"))]  # fmt: skip
    assert len(set(mine_templates(lines, LogTemplateMiner(min_values=4)))) == 1
    assert len(set(mine_templates(lines[:3], LogTemplateMiner(min_values=4)))) == 3
    assert len(set(mine_templates(lines, LogTemplateMiner(min_values=6)))) == 5


# --- state -----------------------------------------------------------------------------------


def test_pickle_round_trip_continues_the_same() -> None:
    rng = random.Random(42)
    users = _names(rng, 20)
    lines = [f"Accepted password for {rng.choice(users)} from 10.0.0.{i % 250} port {i}"
             for i in range(200)]  # fmt: skip
    miner = LogTemplateMiner()
    for line in lines[:100]:
        miner.add_one(line)
    copy = pickle.loads(pickle.dumps(miner))
    assert [miner.add_one(line) for line in lines[100:]] == [copy.add_one(x) for x in lines[100:]]
    assert miner.templates() == copy.templates()


class _NothingKept(dict):
    """A `_shown` that keeps nothing: every line takes the way that makes its match anew."""

    def __setitem__(self, key: object, value: object) -> None:
        pass


_WORDS = ["start", "stop", "job", "user", "alice", "bob", "carol", "dave", "on", "7", "x=1"]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.lists(st.sampled_from(_WORDS), min_size=1, max_size=5).map(" ".join), max_size=60
    ),
    max_clusters=st.sampled_from([None, 1, 2, 4]),
    cut=st.integers(0, 60),
)
@example(  # a third user makes the position a variable: three templates merge into one
    lines=["job alice start", "job bob start", "job carol start", "job dave start"],
    max_clusters=None,
    cut=0,
)
@example(lines=["job start", "user stop on", "job start"], max_clusters=1, cut=0)  # forgotten
def test_a_line_of_an_unchanged_template_gets_the_match_made_anew(lines, max_clusters, cut):
    """`add_tokens` hands a line whose template has not changed since its last line that
    line's match: every line's match, and the templates, are those of making each anew, also
    as templates generalise, merge and are forgotten, and after a snapshot (which leaves the
    kept matches out)."""
    miner, anew = (
        LogTemplateMiner(max_clusters=max_clusters),
        LogTemplateMiner(max_clusters=max_clusters),
    )
    anew._shown = _NothingKept()
    got = [miner.add_one(line) for line in lines[:cut]]
    assert got == [anew.add_one(line) for line in lines[:cut]]
    miner = pickle.loads(pickle.dumps(miner))
    assert miner._shown == {}  # derived: not in the snapshot
    assert [miner.add_one(line) for line in lines[cut:]] == [anew.add_one(x) for x in lines[cut:]]
    assert miner.templates() == anew.templates()
    assert miner._shown.keys() <= miner._lines.keys()  # none kept for a root merged or forgotten


def test_max_clusters_forgets_the_least_recently_used() -> None:
    miner = LogTemplateMiner(max_clusters=3)
    first = miner.add_one("alpha started").template_id
    for word in ("beta", "gamma", "delta", "epsilon"):
        miner.add_one(f"{word} stopped here now")
        miner.add_one("alpha started")  # keeps alpha recent
    assert len(miner.templates()) <= 3
    assert miner.template(first) == "alpha started"
    assert miner.template("T2") is None  # beta's template was forgotten
    assert miner.add_one("beta stopped here now").is_new


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="min_values"):
        LogTemplateMiner(min_values=1)
    with pytest.raises(ValueError, match="keep"):
        LogTemplateMiner(keep=1.5)
    with pytest.raises(ValueError, match="max_clusters"):
        LogTemplateMiner(max_clusters=0)


# --- CSV and GA ------------------------------------------------------------------------------


def test_templates_csv(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    contents = [
        "PacketResponder 1 for block blk_38865049064139660 terminating",
        "Verification succeeded for blk_-4980916519894289629",
        'quoted, "with" comma',
        "PacketResponder 0 for block blk_-6952295868487656571 terminating",
    ]
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["LineId", "Level", "Content"])
        writer.writerows((i, "INFO", c) for i, c in enumerate(contents, start=1))
    assert templates_csv(source, target) == len(contents)
    with target.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["LineId", "EventTemplate"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    assert rows[1][1] == rows[4][1] == "PacketResponder <*> for block <*> terminating"
    assert rows[2][1] == "Verification succeeded for <*>"
    assert rows[3][1] == "quoted with comma"


def test_templates_csv_needs_columns(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("LineId,Message\n1,hello\n")
    with pytest.raises(ValueError, match="Content"):
        templates_csv(source, tmp_path / "out.csv")


def test_grouping_accuracy() -> None:
    truth = ["a", "a", "b", "b", "c", "d", "d"]
    assert grouping_accuracy(truth, ["x", "x", "y", "y", "z", "w", "w"]) == 1.0
    # labels need not match, only the partition
    assert grouping_accuracy(truth, list("1122344")) == 1.0
    # over-merge: b and c share a predicted group, so their 3 lines are wrong
    assert grouping_accuracy(truth, ["x", "x", "y", "y", "y", "w", "w"]) == pytest.approx(4 / 7)
    # split: d is cut in two, so its 2 lines are wrong
    assert grouping_accuracy(truth, ["x", "x", "y", "y", "z", "w", "v"]) == pytest.approx(5 / 7)
    # both at once
    assert grouping_accuracy(truth, ["x", "q", "y", "y", "y", "w", "w"]) == pytest.approx(2 / 7)
    assert grouping_accuracy([], []) == 1.0
    with pytest.raises(ValueError):
        grouping_accuracy(["a"], [])


def test_mining_in_chunks_gives_each_line_the_template_of_mining_line_by_line() -> None:
    """`mine_templates` tokenises 10,000 lines at a time; a generator works as a list."""
    rng = random.Random(5)
    words = ["open", "close", "read", "write", "sync"]
    lines = [
        f"{rng.choice(words)} {rng.choice(words)} block {rng.randrange(10**6)} {rng.randrange(9)}"
        for _ in range(25_000)
    ]
    one_by_one = LogTemplateMiner()
    ids = [one_by_one.add_one(line).template_id for line in lines]
    expected = [one_by_one.template(i) for i in ids]
    assert mine_templates(iter(lines)) == expected
    assert len(set(expected)) > 5
