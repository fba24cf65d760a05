"""The election-night drill: the harness that rehearses a whole night on real test hosts.

It sits on top of everything it exercises (orchestrate, deploy, publish, the
testbed) and nothing in the product imports it:

- ``night``    the scenario (difusores on testbed hosts, faults by period, the
               PREP's pause and close, the IEC's own outage), the run and its checks
- ``mail``     the drill's checks of the notices the SMTP server received
- ``mailbox``  that SMTP server (aiosmtpd on 127.0.0.1), also used by tests
- ``templates/drill.yaml``  the default scenario (``prep-iac drill``)
"""
