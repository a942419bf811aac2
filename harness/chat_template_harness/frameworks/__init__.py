"""Adapters around the frameworks people train with (TRL, SpecForge, LLaMA-Factory, axolotl,
speculators, ms-swift, OpenRLHF, verl): each calls the
framework's own preprocessing, unchanged, behind the plug-in interface (`chat_template_harness.external`)."""
