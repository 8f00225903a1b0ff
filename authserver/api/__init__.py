"""The management API (ConductorOne ``PersonalClientService``-compatible wire shapes)."""
