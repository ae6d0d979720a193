"""The card API protocol, pure: request body and headers, signing, the HTTP client and its
SSRF guard, batching, the response schema and one outcome per card (SPEC §3-§5, §8).
Uses nothing of ours outside this package: no models, no database."""
