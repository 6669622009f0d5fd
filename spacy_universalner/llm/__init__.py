"""spacy-llm integration: UniNER as a spacy-llm task, our backends as spacy-llm models.

Loaded through entry points (``spacy_llm_tasks``, ``spacy_llm_models``) when a config names
``spacy_universalner.UniNER.v1`` or ``spacy_universalner.UniNERModel.v1``; ``import
spacy_universalner`` never imports this package, so spacy-llm stays out of plain pipelines.
"""
