"""Adapters around the frameworks people train with (TRL, SpecForge, LLaMA-Factory, axolotl,
speculators, ms-swift, OpenRLHF, verl): each calls the
framework's own preprocessing, unchanged, behind the plug-in interface (`chat_template_harness.external`).

Every adapter is marked `external.real_clock`: the framework is imported and called under the real clock, as its
users run it, never the harness's frozen one; a date it writes that is not the served prompt's is D
(`contract/dates.py`), the same way for every adapter. Rows hold what the framework's users write
(`rows.py`: no reasoning for a model that never thinks, no date pins in the template keywords)."""
