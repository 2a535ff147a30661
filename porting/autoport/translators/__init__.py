"""Translators from TF op types to MXNet symbols, one module per op family (see ``porting.autoport.registry``).
"""
