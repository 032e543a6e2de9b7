"""Settings: defaults, validation and loading."""
