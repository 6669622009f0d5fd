"""The packaged models' files, one folder each (package data, no code): ``uniner-span``, the default student.

:func:`spacy_universalner.pretrained.resolve_model_name` turns the name ``"uniner-span"`` into its folder here.
"""
