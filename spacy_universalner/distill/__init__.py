"""Targeted distillation (UniversalNER, sections 4-5 of the paper's recipe), one module per step.

``sample`` (raw text -> passages), ``annotate`` (passages -> teacher answers, resumable; the teachers are in
``teachers``), ``gold`` (labelled NER files -> conversations), ``build`` (answers -> UniNER conversations), then
``train`` (conversations -> a causal student) or ``span`` (``train-span``: conversations -> a span student), and
the tools ``student`` (``init-student``, ``export-student``) and ``gguf`` (``convert-gguf``); ``config`` reads and
checks the configs of ``train`` and ``train-span``.

These modules hold the logic and import no CLI. The commands, ``python -m spacy_universalner distill STEP``, are
defined in :mod:`spacy_universalner.cli.distill` (registered on the ``distill`` group of
:mod:`spacy_universalner.cli.app`); ``project.yml`` chains them.
"""
