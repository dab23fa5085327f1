"""Auth: organisations' keys and scopes, access and user tokens, rate limits, the limits on
failed credential attempts, and the one tenancy check."""
