"""Services hold the rules: account scope, references, limits, usage. Every call takes ctx first."""
