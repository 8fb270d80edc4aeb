"""Reports rendered from CallResults (HTML/CSV)."""
