import CodeDomain
import Foundation

/// Renders the hardened manifests of a deployment: a Compose service and a Kubernetes Deployment and
/// Service, with the same security settings as this project's own containers.
///
/// The manifests follow the convention of images built from this template: the service listens on
/// port 8080, answers `/health/live` and `/health/ready`, runs as uid 1001, and its binary at
/// `/app/service` accepts `--health-check` (images have no shell, so health checks cannot be curl).
public struct ManifestRenderer: Sendable {
    public static let containerPort = 8080
    public static let userID = 1001

    public init() {}

    public struct Rendered: Sendable, Equatable {
        public let compose: String
        public let kubernetes: String
    }

    public func render(_ deployment: Deployment) throws -> Rendered {
        // Keys are sorted: the output is the same for the same deployment, whatever the dictionary order.
        let encoder = ManifestYAMLEncoder()
        let compose = try encoder.encode(composeFile(deployment))
        let kubernetes =
            try encoder.encode(kubernetesDeployment(deployment)) + "---\n" + (try encoder.encode(kubernetesService(deployment)))
        return Rendered(compose: compose, kubernetes: kubernetes)
    }

    // MARK: Resources by environment

    struct Resources {
        let cpuLimit: String
        let memoryLimit: String
        let cpuRequest: String
        let memoryRequest: String
        /// Kubernetes quantities of the same values.
        let memoryLimitK8s: String
        let memoryRequestK8s: String
    }

    /// Production gets the strategy document's figures; smaller environments a fraction of them.
    static func resources(for environment: DeploymentEnvironment) -> Resources {
        switch environment {
        case .development:
            Resources(
                cpuLimit: "0.5", memoryLimit: "256M", cpuRequest: "0.1", memoryRequest: "64M", memoryLimitK8s: "256Mi",
                memoryRequestK8s: "64Mi")
        case .staging:
            Resources(
                cpuLimit: "1.0", memoryLimit: "1G", cpuRequest: "0.25", memoryRequest: "256M", memoryLimitK8s: "1Gi",
                memoryRequestK8s: "256Mi")
        case .production:
            Resources(
                cpuLimit: "2.0", memoryLimit: "2G", cpuRequest: "0.5", memoryRequest: "512M", memoryLimitK8s: "2Gi",
                memoryRequestK8s: "512Mi")
        }
    }

    static func labels(_ deployment: Deployment) -> [String: String] {
        deployment.labels.merging([
            "app.kubernetes.io/name": deployment.service,
            "app.kubernetes.io/managed-by": "code-services",
            "code-services/deployment-id": deployment.id,
            "code-services/environment": deployment.environment.rawValue,
        ]) { _, ours in ours }
    }

    // MARK: Compose

    struct ComposeFile: Encodable {
        let services: [String: ComposeService]
    }

    struct ComposeService: Encodable {
        let image: String
        let user: String
        let readOnly: Bool
        let capDrop: [String]
        let securityOpt: [String]
        let tmpfs: [String]
        let healthcheck: Healthcheck
        let deploy: Deploy
        let logging: Logging
        let labels: [String: String]

        enum CodingKeys: String, CodingKey {
            case image, user, tmpfs, healthcheck, deploy, logging, labels
            case readOnly = "read_only"
            case capDrop = "cap_drop"
            case securityOpt = "security_opt"
        }

        struct Healthcheck: Encodable {
            let test: [String]
            let interval: String
            let timeout: String
            let retries: Int
            let startPeriod: String

            enum CodingKeys: String, CodingKey {
                case test, interval, timeout, retries
                case startPeriod = "start_period"
            }
        }

        struct Deploy: Encodable {
            let replicas: Int
            let updateConfig: UpdateConfig
            let resources: Resources
            let restartPolicy: RestartPolicy

            enum CodingKeys: String, CodingKey {
                case replicas, resources
                case updateConfig = "update_config"
                case restartPolicy = "restart_policy"
            }

            struct UpdateConfig: Encodable {
                let parallelism: Int
                let order: String
                let failureAction: String
                let delay: String

                enum CodingKeys: String, CodingKey {
                    case parallelism, order, delay
                    case failureAction = "failure_action"
                }
            }

            struct Resources: Encodable {
                let limits: Amounts
                let reservations: Amounts
            }

            struct Amounts: Encodable {
                let cpus: String
                let memory: String
            }

            struct RestartPolicy: Encodable {
                let condition: String
            }
        }

        struct Logging: Encodable {
            let driver: String
            let options: [String: String]
        }
    }

    func composeFile(_ deployment: Deployment) -> ComposeFile {
        let resources = Self.resources(for: deployment.environment)
        let update: ComposeService.Deploy.UpdateConfig
        switch deployment.strategy {
        case .rolling:
            update = .init(parallelism: 1, order: "start-first", failureAction: "rollback", delay: "5s")
        case .recreate:
            update = .init(parallelism: deployment.replicas, order: "stop-first", failureAction: "rollback", delay: "0s")
        case .blueGreen:
            update = .init(parallelism: deployment.replicas, order: "start-first", failureAction: "rollback", delay: "0s")
        case .canary:
            update = .init(parallelism: 1, order: "start-first", failureAction: "pause", delay: "60s")
        }
        let service = ComposeService(
            image: deployment.image,
            user: "\(Self.userID):\(Self.userID)",
            readOnly: true,
            capDrop: ["ALL"],
            securityOpt: ["no-new-privileges:true"],
            tmpfs: ["/tmp:noexec,nosuid,size=100m"],
            healthcheck: .init(
                test: ["CMD", "/app/service", "--health-check"], interval: "30s", timeout: "3s", retries: 3, startPeriod: "20s"),
            deploy: .init(
                replicas: deployment.replicas,
                updateConfig: update,
                resources: .init(
                    limits: .init(cpus: resources.cpuLimit, memory: resources.memoryLimit),
                    reservations: .init(cpus: resources.cpuRequest, memory: resources.memoryRequest)
                ),
                restartPolicy: .init(condition: "any")
            ),
            logging: .init(driver: "json-file", options: ["max-size": "100m", "max-file": "5"]),
            labels: Self.labels(deployment)
        )
        return ComposeFile(services: [deployment.service: service])
    }

    // MARK: Kubernetes

    struct Metadata: Encodable {
        let name: String
        let labels: [String: String]
        var annotations: [String: String]?
    }

    struct KubernetesDeployment: Encodable {
        let apiVersion = "apps/v1"
        let kind = "Deployment"
        let metadata: Metadata
        let spec: Spec

        struct Spec: Encodable {
            let replicas: Int
            let revisionHistoryLimit: Int
            let selector: Selector
            let strategy: Strategy
            let template: Template
        }

        struct Selector: Encodable {
            let matchLabels: [String: String]
        }

        struct Strategy: Encodable {
            let type: String
            var rollingUpdate: RollingUpdate?

            struct RollingUpdate: Encodable {
                let maxSurge: IntOrPercent
                let maxUnavailable: IntOrPercent
            }
        }

        struct Template: Encodable {
            let metadata: TemplateMetadata
            let spec: PodSpec
        }

        struct TemplateMetadata: Encodable {
            let labels: [String: String]
        }

        struct PodSpec: Encodable {
            let automountServiceAccountToken: Bool
            let securityContext: PodSecurityContext
            let containers: [Container]
            let volumes: [Volume]
        }

        struct PodSecurityContext: Encodable {
            let runAsNonRoot: Bool
            let runAsUser: Int
            let runAsGroup: Int
            let fsGroup: Int
            let seccompProfile: SeccompProfile
        }

        struct SeccompProfile: Encodable {
            let type: String
        }

        struct Container: Encodable {
            let name: String
            let image: String
            let imagePullPolicy: String
            let ports: [Port]
            let securityContext: ContainerSecurityContext
            let livenessProbe: Probe
            let readinessProbe: Probe
            let resources: ResourceRequirements
            let volumeMounts: [VolumeMount]
        }

        struct Port: Encodable {
            let name: String
            let containerPort: Int
            let `protocol`: String
        }

        struct ContainerSecurityContext: Encodable {
            let runAsNonRoot: Bool
            let runAsUser: Int
            let runAsGroup: Int
            let readOnlyRootFilesystem: Bool
            let allowPrivilegeEscalation: Bool
            let privileged: Bool
            let capabilities: Capabilities
            let seccompProfile: SeccompProfile
        }

        struct Capabilities: Encodable {
            let drop: [String]
        }

        struct Probe: Encodable {
            let httpGet: HTTPGet
            let initialDelaySeconds: Int
            let periodSeconds: Int
            let timeoutSeconds: Int
            let failureThreshold: Int

            struct HTTPGet: Encodable {
                let path: String
                let port: String
            }
        }

        struct ResourceRequirements: Encodable {
            let requests: [String: String]
            let limits: [String: String]
        }

        struct VolumeMount: Encodable {
            let name: String
            let mountPath: String
        }

        struct Volume: Encodable {
            let name: String
            let emptyDir: EmptyDir

            struct EmptyDir: Encodable {
                let medium: String
                let sizeLimit: String
            }
        }
    }

    /// Kubernetes' IntOrString for rollout settings: a count (`1`) or a percentage (`"25%"`).
    enum IntOrPercent: Encodable {
        case count(Int)
        case percent(Int)

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .count(let count): try container.encode(count)
            case .percent(let percent): try container.encode("\(percent)%")
            }
        }
    }

    func kubernetesDeployment(_ deployment: Deployment) -> KubernetesDeployment {
        let labels = Self.labels(deployment)
        let selector = ["app.kubernetes.io/name": deployment.service]
        let resources = Self.resources(for: deployment.environment)
        let strategy: KubernetesDeployment.Strategy
        var annotations = ["code-services/strategy": deployment.strategy.rawValue]
        switch deployment.strategy {
        case .rolling:
            strategy = .init(type: "RollingUpdate", rollingUpdate: .init(maxSurge: .percent(25), maxUnavailable: .count(0)))
        case .recreate:
            strategy = .init(type: "Recreate", rollingUpdate: nil)
        case .blueGreen:
            // A full second set of pods comes up before any old pod goes.
            strategy = .init(type: "RollingUpdate", rollingUpdate: .init(maxSurge: .percent(100), maxUnavailable: .count(0)))
        case .canary:
            // One new pod at a time; a progressive-delivery controller can pause on the annotation.
            strategy = .init(type: "RollingUpdate", rollingUpdate: .init(maxSurge: .count(1), maxUnavailable: .count(0)))
            annotations["code-services/canary-step"] = "1"
        }
        let securityProfile = KubernetesDeployment.SeccompProfile(type: "RuntimeDefault")
        let container = KubernetesDeployment.Container(
            name: deployment.service,
            image: deployment.image,
            imagePullPolicy: deployment.imageRef.isDigestPinned ? "IfNotPresent" : "Always",
            ports: [.init(name: "http", containerPort: Self.containerPort, protocol: "TCP")],
            securityContext: .init(
                runAsNonRoot: true, runAsUser: Self.userID, runAsGroup: Self.userID, readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false, privileged: false, capabilities: .init(drop: ["ALL"]), seccompProfile: securityProfile
            ),
            livenessProbe: .init(
                httpGet: .init(path: "/health/live", port: "http"), initialDelaySeconds: 5, periodSeconds: 10, timeoutSeconds: 3,
                failureThreshold: 3),
            readinessProbe: .init(
                httpGet: .init(path: "/health/ready", port: "http"), initialDelaySeconds: 2, periodSeconds: 5, timeoutSeconds: 3,
                failureThreshold: 3),
            resources: .init(
                requests: ["cpu": resources.cpuRequest, "memory": resources.memoryRequestK8s],
                limits: ["cpu": resources.cpuLimit, "memory": resources.memoryLimitK8s]
            ),
            volumeMounts: [.init(name: "tmp", mountPath: "/tmp")]
        )
        return KubernetesDeployment(
            metadata: .init(name: deployment.service, labels: labels, annotations: annotations),
            spec: .init(
                replicas: deployment.replicas,
                revisionHistoryLimit: 10,
                selector: .init(matchLabels: selector),
                strategy: strategy,
                template: .init(
                    metadata: .init(labels: labels),
                    spec: .init(
                        automountServiceAccountToken: false,
                        securityContext: .init(
                            runAsNonRoot: true, runAsUser: Self.userID, runAsGroup: Self.userID, fsGroup: Self.userID,
                            seccompProfile: securityProfile),
                        containers: [container],
                        volumes: [.init(name: "tmp", emptyDir: .init(medium: "Memory", sizeLimit: "100Mi"))]
                    )
                )
            )
        )
    }

    struct KubernetesService: Encodable {
        let apiVersion = "v1"
        let kind = "Service"
        let metadata: Metadata
        let spec: Spec

        struct Spec: Encodable {
            let type: String
            let selector: [String: String]
            let ports: [Port]
        }

        struct Port: Encodable {
            let name: String
            let port: Int
            let targetPort: String
            let `protocol`: String
        }
    }

    func kubernetesService(_ deployment: Deployment) -> KubernetesService {
        KubernetesService(
            metadata: .init(name: deployment.service, labels: Self.labels(deployment), annotations: nil),
            spec: .init(
                type: "ClusterIP",
                selector: ["app.kubernetes.io/name": deployment.service],
                ports: [.init(name: "http", port: 80, targetPort: "http", protocol: "TCP")]
            )
        )
    }
}
