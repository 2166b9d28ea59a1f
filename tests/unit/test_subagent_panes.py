"""Sub-agent panes: the pure decide step, which pane shows which session, and the deferred
queue's limits (20 entries, 5 minutes, 3 read failures) with an injected clock."""

from __future__ import annotations

import pytest

from deck_tray.core.subagent_panes import (
    DEFER_MAX_ENTRIES,
    DEFER_MAX_READ_FAILURES,
    DEFER_TTL_S,
    AttachTarget,
    DeferredQueue,
    Layout,
    PaneBox,
    PaneProcs,
    Split,
    Verb,
    WindowFacts,
    anchor_session,
    attach_target,
    attached_panes,
    decide,
    tag_value,
    tagged_session,
)

URL = "http://127.0.0.1:4096"
LAYOUT = Layout(main_min_cols=100, agent_min_cols=60, agent_min_rows=8)


def window(main_w: int = 200, main_h: int = 50, agents: tuple[PaneBox, ...] = (), zoomed: bool = False) -> WindowFacts:
    width = main_w + sum(1 + a.width for a in agents[:1])
    return WindowFacts("@1", width, main_h, PaneBox("%0", main_w, main_h), agents, zoomed)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# -- the seed's numbers

def test_the_seed_limits() -> None:
    assert (DEFER_MAX_ENTRIES, DEFER_TTL_S, DEFER_MAX_READ_FAILURES) == (20, 300.0, 3)


# -- decide: spawning

def test_first_subagent_splits_the_main_pane_beside_it_keeping_its_minimum() -> None:
    [d] = decide(window(200, 50), LAYOUT, {}, spawn=["ses_a"])
    assert d.verb is Verb.SPAWN and d.split is Split.BESIDE_MAIN and d.target == "%0"
    assert d.size == 99 and 200 - 1 - d.size >= LAYOUT.main_min_cols  # as even as the minimum allows


def test_wide_pane_is_split_in_half() -> None:
    [d] = decide(window(301, 50), LAYOUT, {}, spawn=["ses_a"])
    assert d.size == 150


def test_narrowest_pane_that_fits_exactly() -> None:
    [d] = decide(window(161, 50), LAYOUT, {}, spawn=["ses_a"])
    assert d.verb is Verb.SPAWN and d.size == 60  # 100 + 1 border + 60
    [d] = decide(window(160, 50), LAYOUT, {}, spawn=["ses_a"])
    assert d.verb is Verb.DEFER and "needs 161" in d.reason


def test_too_low_and_zoomed_windows_defer() -> None:
    [d] = decide(window(200, 5), LAYOUT, {}, spawn=["ses_a"])
    assert d.verb is Verb.DEFER and "rows" in d.reason
    [d] = decide(window(200, 50, zoomed=True), LAYOUT, {}, spawn=["ses_a"])
    assert d.verb is Verb.DEFER and "zoomed" in d.reason


def test_next_subagents_stack_below_the_last_agent_pane() -> None:
    a = PaneBox("%1", 99, 50, 0, 101, "ses_a")
    [d] = decide(window(100, 50, (a,)), LAYOUT, {"ses_a": "%1"}, spawn=["ses_b"])
    assert d.verb is Verb.SPAWN and d.split is Split.BELOW_AGENT and d.target == "%1" and d.size == 0


def test_stacking_takes_the_tallest_pane_when_the_last_is_too_low() -> None:
    a = PaneBox("%1", 99, 30, 0, 101, "ses_a")
    b = PaneBox("%2", 99, 12, 31, 101, "ses_b")  # the last one: (12-1)//2 = 5 < 8
    [d] = decide(window(100, 43, (a, b)), LAYOUT, {}, spawn=["ses_c"])
    assert d.verb is Verb.SPAWN and d.target == "%1"


def test_full_column_defers() -> None:
    a = PaneBox("%1", 99, 16, 0, 101, "ses_a")
    b = PaneBox("%2", 99, 16, 17, 101, "ses_b")
    [d] = decide(window(100, 33, (a, b)), LAYOUT, {}, spawn=["ses_c"])
    assert d.verb is Verb.DEFER and "full" in d.reason


def test_a_batch_uses_the_room_the_previous_spawns_left() -> None:
    ds = decide(window(200, 50), LAYOUT, {}, spawn=["ses_a", "ses_b", "ses_c", "ses_d", "ses_e"])
    assert [d.verb for d in ds] == [Verb.SPAWN, Verb.SPAWN, Verb.SPAWN, Verb.SPAWN, Verb.DEFER]
    assert ds[0].split is Split.BESIDE_MAIN
    assert all(d.split is Split.BELOW_AGENT for d in ds[1:4])
    # 50 rows: 50 → 25+24 → 24 → 12+11 ... until halves would drop below 8 rows
    assert ds[1].target == "(new 0)"


def test_already_open_is_nothing_to_do_and_tmux_wins_over_the_cache() -> None:
    a = PaneBox("%7", 99, 50, 0, 101, "ses_a")
    [d] = decide(window(100, 50, (a,)), LAYOUT, {"ses_a": "%3"}, spawn=["ses_a"])
    assert d.verb is Verb.NONE and d.target == "%7"  # tmux's pane, not the stale cached %3
    # The cache says ses_b has %3, but tmux lists no such pane: spawn it.
    [d] = decide(window(100, 50, (a,)), LAYOUT, {"ses_b": "%3"}, spawn=["ses_b"])
    assert d.verb is Verb.SPAWN


def test_no_parent_pane_spawns_nothing() -> None:
    [d] = decide(None, LAYOUT, {}, spawn=["ses_a"])
    assert d.verb is Verb.NONE and "not open in a tmux pane" in d.reason


# -- decide: closing

def test_close_kills_the_pane_tmux_lists_and_makes_room() -> None:
    a = PaneBox("%1", 99, 16, 0, 101, "ses_a")
    b = PaneBox("%2", 99, 16, 17, 101, "ses_b")
    close, spawn = decide(window(100, 33, (a, b)), LAYOUT, {"ses_a": "%1"}, spawn=["ses_c"], close=["ses_b"])
    assert close.verb is Verb.CLOSE and close.target == "%2"
    assert spawn.verb is Verb.SPAWN and spawn.target == "%1"  # the closed pane's room is not counted


def test_close_of_a_pane_tmux_no_longer_has_is_nothing() -> None:
    [d] = decide(window(), LAYOUT, {"ses_a": "%4"}, close=["ses_a"])
    assert d.verb is Verb.NONE and "%4 is gone" in d.reason


# -- tags and command lines

def test_tags() -> None:
    assert tag_value("ses_1") == "subagent:ses_1"
    assert tagged_session("subagent:ses_1") == "ses_1"
    assert tagged_session("new:claude-code") is None and tagged_session("subagent:") is None
    assert tagged_session("") is None


@pytest.mark.parametrize("argv", [
    ["opencode", "attach", "http://localhost:4096/", "--session", "ses_1"],
    ["/x/node_modules/opencode-ai/bin/opencode.exe", "attach", "http://127.0.0.1:4096", "-s", "ses_1"],
    ["node", "/x/.bin/opencode", "attach", "--session=ses_1", "127.0.0.1:4096"],
    ["opencode", "attach", "http://127.0.0.1:4096", "--dir", "/p", "--session", "ses_1"],
    ["/usr/bin/python3", "-m", "deck_tray", "opencode-attach", "http://127.0.0.1:4096", "ses_1",
     "--opencode-bin", "/o/opencode"],
    ["/home/u/.local/bin/deck-tray", "opencode-attach", "--opencode-bin", "/o/opencode", "http://127.0.0.1:4096",
     "ses_1"],
])
def test_attach_command_lines(argv: list[str]) -> None:
    assert attach_target(argv) == AttachTarget(URL, "ses_1")


@pytest.mark.parametrize("argv", [
    ["opencode"],
    ["opencode", "-s", "ses_1"],  # a TUI: not tied to the followed server
    ["opencode", "attach", "http://127.0.0.1:4096"],  # no session
    ["opencode", "serve", "--port", "4096"],
    ["vim", "opencode-attach", "http://127.0.0.1:4096", "ses_1"],  # not deck-tray
    ["bash"],
    [],
])
def test_not_attach_command_lines(argv: list[str]) -> None:
    assert attach_target(argv) is None


def test_attached_panes_counts_a_pane_once_and_puts_the_users_pane_first() -> None:
    helper = ("python3", "-m", "deck_tray", "opencode-attach", URL, "ses_p")
    native = ("opencode", "attach", URL, "--session", "ses_p")
    ours = PaneProcs("/s", "%1", "subagent:ses_p", (native,), focused=True)
    user = PaneProcs("/s", "%5", "", (("bash",), helper, native), focused=False)
    other = PaneProcs("/s", "%6", "", (("bash",),))
    got = attached_panes([ours, user, other])
    assert list(got) == [AttachTarget(URL, "ses_p")]
    assert [p.pane_id for p in got[AttachTarget(URL, "ses_p")]] == ["%5", "%1"]


def test_anchor_is_the_nearest_ancestor_in_a_pane() -> None:
    parents = {"ses_c": "ses_p", "ses_g": "ses_c", "ses_x": "ses_y"}
    assert anchor_session("ses_c", parents, {"ses_p"}) == "ses_p"
    assert anchor_session("ses_g", parents, {"ses_p"}) == "ses_p"  # a grandchild joins the same column
    assert anchor_session("ses_x", parents, {"ses_p"}) is None
    assert anchor_session("ses_p", parents, {"ses_p"}) is None  # a root is no sub-agent
    assert anchor_session("ses_a", {"ses_a": "ses_b", "ses_b": "ses_a"}, set()) is None  # a loop ends


# -- the deferred queue

def test_queue_keeps_at_most_twenty_dropping_the_oldest() -> None:
    clock = Clock()
    q: DeferredQueue[str] = DeferredQueue(clock)
    dropped: list[str] = []
    for i in range(25):
        clock.t += 1
        dropped += q.add(f"s{i}", "no room")
    assert len(q) == 20 and dropped == ["s0", "s1", "s2", "s3", "s4"]
    assert q.keys()[0] == "s5" and q.keys()[-1] == "s24"


def test_entries_expire_after_five_minutes_from_the_first_deferral() -> None:
    clock = Clock()
    q: DeferredQueue[str] = DeferredQueue(clock)
    q.add("a", "no room")
    clock.t += 100
    q.add("b", "no room")
    clock.t += 199
    q.add("a", "still no room")  # deferring again keeps its age
    assert [d.key for d in q.due()] == ["a", "b"]
    assert q.due()[0].reason == "still no room"
    clock.t += 1  # a: 300 s
    assert [d.key for d in q.due()] == ["b"]
    clock.t += 99.9
    assert q.expire() == []
    clock.t += 0.1
    assert q.expire() == ["b"] and len(q) == 0


def test_retries_stop_after_three_consecutive_read_failures() -> None:
    q: DeferredQueue[str] = DeferredQueue(Clock())
    q.add("a", "no room")
    assert not q.read_failed() and not q.read_failed()
    q.read_ok()  # not consecutive any more
    assert not q.read_failed() and not q.read_failed()
    assert q.read_failed() and q.stopped
    q.resume()
    assert not q.stopped and q.failures == 0


def test_remove_and_clear() -> None:
    q: DeferredQueue[tuple[str, str]] = DeferredQueue(Clock())
    q.add((URL, "ses_1"), "no room")
    assert (URL, "ses_1") in q
    assert q.remove((URL, "ses_1")) and not q.remove((URL, "ses_1"))
    q.add((URL, "ses_2"), "x")
    q.clear()
    assert len(q) == 0


def test_closing_the_only_agent_pane_gives_the_columns_back_to_the_main_pane() -> None:
    a = PaneBox("%1", 60, 50, 0, 101, "ses_a")
    close, spawn = decide(window(100, 50, (a,)), LAYOUT, {}, spawn=["ses_b"], close=["ses_a"])
    assert close.verb is Verb.CLOSE
    assert spawn.verb is Verb.SPAWN and spawn.split is Split.BESIDE_MAIN and spawn.size == 60
