/// Suneung's version: in lineage, `--version`, and the server's /health.
public let suneungVersion = "0.3.0"
