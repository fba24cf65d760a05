"""Perform the actions that decisions queued, at least once, across crashes.

A verdict and its actions commit together (``strikes``); this module does
them afterwards and marks each done. A crash after doing an action but before
marking it done repeats it on the next run, so handlers must tolerate a
repeat: notifications are deduplicated in the store, a suspension is a newer
signed instruction (the host applies it again harmlessly), the list is rendered
from current state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from prep_iac.orchestrate.store import Action, Store

Handler = Callable[[Action], None]

DONE_EVENT = {"notify": "notified", "suspend": "suspension-sent", "render-list": "list-rendered"}


@dataclass(frozen=True)
class Outcome:
    action: Action
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def perform_pending(
    store: Store, handlers: Mapping[str, Handler], clock: Callable[[], datetime],
    keep_going: Callable[[], bool] = lambda: True,
) -> list[Outcome]:  # fmt: skip
    """Run every pending action that has a handler; record each as done or failed.

    Actions without a handler stay pending for a runner that has one (the
    CLI can render the list but cannot upload a suspension). A failure is
    recorded and retried on the next call; it never stops the other actions.
    Before each action ``keep_going`` is asked; once it says no, the rest stay
    pending for the next call, in order.
    """
    outcomes = []
    for action in store.pending_actions():
        handler = handlers.get(action.kind)
        if handler is None:
            continue
        if not keep_going():
            break
        try:
            handler(action)
        except Exception as exc:  # any handler failure must not stop the others
            error = f"{type(exc).__name__}: {exc}"
            with store.transaction():
                store.fail_action(action.id, error)
                store.add_event(clock(), "action-failed", action.difusor,
                                action=action.kind, key=action.key, error=error)  # fmt: skip
            outcomes.append(Outcome(action, error))
            continue
        with store.transaction():
            store.finish_action(action.id, clock())
            store.add_event(clock(), DONE_EVENT.get(action.kind, "action-done"), action.difusor,
                            key=action.key, **action.payload)  # fmt: skip
        outcomes.append(Outcome(action))
    return outcomes
