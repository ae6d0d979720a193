"""Loading cards: claim, fetch, store, purge (SPEC §6, §7); the only writer of card
instances, and the store bell it rings on every store. Uses `cards.protocol` and the models."""
