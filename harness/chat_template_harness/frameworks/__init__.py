"""Adapters around the frameworks people train with (TRL, SpecForge, LLaMA-Factory, axolotl): each calls the
framework's own preprocessing, unchanged, behind the plug-in interface (`chat_template_harness.external`)."""
