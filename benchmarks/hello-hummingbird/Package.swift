// swift-tools-version:6.1
// The framework's ceiling for code-api's GET /health/live: a bare Hummingbird application that answers
// {"status":"ok"} and does nothing else (no middleware, no logging, no metrics). Built with the same
// flags as code-api's release build: `swift build -c release --static-swift-stdlib`.
import PackageDescription

let package = Package(
    name: "hello-hummingbird",
    platforms: [.macOS(.v15)],
    products: [.executable(name: "hello-hummingbird", targets: ["hello"])],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1")
    ],
    targets: [
        .executableTarget(
            name: "hello",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
