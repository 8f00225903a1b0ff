"""HTTP helpers every front door shares: request bodies, bearer tokens, the source address."""
