"""The command line: one module per ``python -m porting.<command>``; ``porting.<command>`` are thin stubs.

The library never imports this package.
"""
