"""Targeted distillation (UniversalNER, sections 4-5 of the paper's recipe), one module per step.

``sample`` (raw text -> passages), ``annotate`` (passages -> teacher answers, resumable),
``build`` (answers -> UniNER conversations) and ``train`` (conversations -> student). The
typer commands live in :mod:`spacy_universalner.cli.distill`; ``project.yml`` chains them.
"""
