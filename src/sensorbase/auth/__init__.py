"""Auth: organisations' keys and scopes, access tokens, rate limits, and the one tenancy check."""
