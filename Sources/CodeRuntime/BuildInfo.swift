/// Version and revision of this build.
///
/// The values below are the fallback of a plain `swift build`. Release builds stamp them:
/// `scripts/stamp-build-info.sh VERSION REVISION` rewrites the two string literals before compiling
/// (the Dockerfile does this with its `VERSION` and `REVISION` build arguments). Keeping them as
/// literals in one file means only this module recompiles when the version changes.
public enum BuildInfo {
    public static let version = "0.0.0-dev"
    public static let revision = "unknown"

    /// `code-api 1.2.3 (abc1234)`
    public static func describe(_ executable: String) -> String {
        "\(executable) \(version) (\(revision))"
    }
}
