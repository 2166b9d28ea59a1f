"""Pure-Python domain: models, agent file formats, detection rules and decisions (no Qt)."""
