# Build the app from ./app for both Fargate architectures, push it to ECR, and run
# the exact digest that was pushed: the task definition uses `image_uri`
# (repository@digest), so each rebuild registers a new revision and ECS rolls onto it.

variable "provenance_key_file" {
  type        = string
  description = "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem"
}

variable "release" {
  type    = string
  default = "2024.06.1"
}

resource "aws_ecr_repository" "web" {
  name = "web"
}

resource "stevedore_image_build" "web" {
  context    = "${path.module}/app"
  dockerfile = "Dockerfile"                          # relative to context; must stay inside it
  repository = aws_ecr_repository.web.repository_url # no tag here
  tags       = ["latest", var.release]

  # One manifest per platform, listed in an index; no attestation entries.
  platforms = ["linux/amd64", "linux/arm64"]

  build_args = {
    NODE_ENV = "production"
    VERSION  = var.release
  }
  target = "runtime"
  labels = { team = "web" }

  # BuildKit secret mounts (RUN --mount=type=secret,id=npm ...). Their values never
  # enter Terraform: read at apply from the provider's environment or a file.
  secret_env   = { npm = "NPM_TOKEN" }
  secret_files = { pip = "${path.module}/pip.conf" }

  # Build cache from the registry: CI runners start with an empty daemon.
  cache_from   = ["${aws_ecr_repository.web.repository_url}:latest"]
  cache_inline = true # the pushed image carries the cache for the next build

  # Supply-chain evidence beside the image, never inside its index: SLSA v1 provenance
  # per platform, signed (DSSE) with a PKCS#8 key the state never holds, and an SBOM
  # made earlier in CI, both as OCI 1.1 referrers.
  provenance       = true
  signing_key_file = var.provenance_key_file
  attach {
    artifact_type = "application/spdx+json"
    file          = "${path.module}/sbom.spdx.json" # e.g. `syft dir:app -o spdx-json`
  }

  manifest_format = "docker" # widest runtime support; "oci" for OCI media types
  keep_remotely   = true     # destroy leaves the image in ECR

  # Anything else that should force a rebuild when it changes.
  triggers = {
    release = var.release
  }
}

resource "aws_ecs_task_definition" "web" {
  family                   = "web"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64" # served by the linux/arm64 entry of the index
  }

  container_definitions = jsonencode([{
    name         = "web"
    image        = stevedore_image_build.web.image_uri # immutable: repository@digest
    essential    = true
    portMappings = [{ containerPort = 8080 }]
  }])
}

# For a service whose task definition is managed elsewhere and refers to a tag:
# force a new deployment whenever the pushed digest changes.
resource "stevedore_ecs_redeploy" "web" {
  cluster = "prod"
  service = "web"
  digest  = stevedore_image_build.web.digest
}

output "image_uri" {
  value = stevedore_image_build.web.image_uri
}

output "arm64_digest" {
  value = stevedore_image_build.web.platform_digests["linux/arm64"]
}
