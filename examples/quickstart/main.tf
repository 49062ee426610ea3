# The quickstart `make demo` applies: check the image in the registry for the
# platform Fargate needs, then roll the ECS service onto its digest.
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

# Fails the plan if the image cannot run on linux/amd64 (the Apple-Silicon push).
data "stevedore_image_manifest" "web" {
  image    = "${var.registry}/quickstart/web:latest"
  platform = "linux/amd64"
}

# A new digest forces a new deployment; apply waits until the new tasks run.
resource "stevedore_ecs_redeploy" "web" {
  cluster = "quickstart"
  service = "web"
  digest  = data.stevedore_image_manifest.web.platform_digest
}

output "image_uri" {
  value = data.stevedore_image_manifest.web.image_uri
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
