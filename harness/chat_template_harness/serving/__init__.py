"""The served prompt of a real server: profiles (message normalisation, renderer per family) and where two
servers' prompts part, token by token (`cth servers`)."""
