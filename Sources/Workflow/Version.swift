/// The tool's version: in lineage, `--version`, and the server's /health.
public enum Tool {
    public static let version = "0.3.0"
}
