"""The orchestrator: period clock, clause-III strikes, state, notifications, the IEC's list.

- ``store``: the only module that knows SQL; every state change is one transaction.
- ``strikes``: the clause-III state machine (a period's verdict, strikes, disable, reinstate).
- ``outbox``: performs the actions a verdict decided, at least once, across crashes.
- ``schedule``: the period clock in the election's time zone, with a drill mode.
- ``notify``: e-mail and webhook messages in Spanish, deduplicated in the store.
- ``iec_list``: the IEC's public list of difusores (clause I.7), local and S3.
- ``suspension``: the signed suspension instruction a disabled difusor's host applies.
- ``settings``: the orchestrator's settings file (notifications, list targets, signing key).
- ``runner``: the loop ``prep-iac run`` runs; ``service``: its systemd unit.
- ``lock``: one orchestrator per state (an exclusive lock beside the database).
- ``canary``: the IEC's own SSH targets, probed once a period (IEC-side faults).

The drill that rehearses a night with this loop is the harness's (``prep_iac.drill``).
"""
