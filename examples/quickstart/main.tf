# The quickstart `make demo` applies: build ./app for linux/amd64 whatever the
# host, push one clean manifest, check it as Fargate will, then roll the ECS
# service onto the new digest and wait until its tasks run.
terraform {
  required_providers {
    stevedore = {
      source  = "stevedore/stevedore"
      version = "0.1.0"
    }
  }
}

variable "registry" {
  description = "host:port of the registry holding quickstart/web (make demo starts one on loopback)."
  type        = string
}

variable "ecs_endpoint" {
  description = "ECS endpoint override (make demo points it at moto); null means real AWS."
  type        = string
  default     = null
}

provider "stevedore" {
  aws {
    region = "us-east-1"
    endpoints {
      ecs = var.ecs_endpoint
    }
  }
}

# Builds for linux/amd64 even on an arm64 laptop, pushes with no attestation
# entries, and reads every tag back from the registry before apply returns.
resource "stevedore_image_build" "web" {
  context    = "${path.module}/app"
  repository = "${var.registry}/quickstart/web"
  tags       = ["latest"]
  platforms  = ["linux/amd64"]
}

# What the registry now serves, as a runtime will see it; fails if linux/amd64 is missing.
data "stevedore_image_manifest" "web" {
  image    = stevedore_image_build.web.image_uri
  platform = "linux/amd64"
}

# A new digest forces a new deployment; apply waits until the new tasks run.
resource "stevedore_ecs_redeploy" "web" {
  cluster = "quickstart"
  service = "web"
  digest  = stevedore_image_build.web.digest
}

output "image_uri" {
  value = stevedore_image_build.web.image_uri
}

output "platforms" {
  value = data.stevedore_image_manifest.web.platforms
}

output "deployment_id" {
  value = stevedore_ecs_redeploy.web.deployment_id
}

output "rollout_state" {
  value = stevedore_ecs_redeploy.web.rollout_state
}
