"""Testbed hosts (``inventories/testbed.py``): small nspawn containers on one machine.

They have a 2 GiB disk and the machine's memory, far below clause II.c; the
deploy goes on with a warning in its output instead of refusing them.
"""

force_below_minimums = True
