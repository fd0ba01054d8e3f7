"""Sub-commands of ``lsr``; each module exposes ``register(subparsers)``."""
